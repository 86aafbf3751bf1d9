"""Mutants that cannot change what the answer computes, kept by hand.

Keyed by (exercise, the original line, the mutated line), both stripped, as the mutation run
prints them; the value says in one line why no test could tell the mutant apart. They leave the
kill rate's denominator and are reported on their own.
"""
from __future__ import annotations

EQUIVALENT: dict[tuple[str, str, str], str] = {
    # dlogistic_mixture_log_prob
    ('dlogistic_mixture_log_prob',
     'xk = x.to(means.dtype).unsqueeze(-1)                 # [N, 1] against [M]',
     'xk = x.to(means.dtype).unsqueeze(1)                 # [N, 1] against [M]'):
        'same axis: x is [N] by the contract, so unsqueeze(1) is unsqueeze(-1)',
    ('dlogistic_mixture_log_prob',
     'return torch.logsumexp(F.log_softmax(logits, dim=-1) + log_mass, dim=-1)',
     'return torch.logsumexp(F.log_softmax(logits, dim=-1) + log_mass, dim=1)'):
        'same axis: the summed tensor is [N, M]',
    ('dlogistic_mixture_log_prob',
     'return torch.logsumexp(F.log_softmax(logits, dim=-1) + log_mass, dim=-1)',
     'return torch.logsumexp(F.log_softmax(logits, dim=-0) + log_mass, dim=-1)'):
        'same axis: logits is [M]',
    # TwoVariableModel
    ('TwoVariableModel',
     'x1, x2 = x[:, 0].long(), x[:, 1].long()',
     'x1, x2 = x[:, 0].long(), x[:, -1].long()'):
        'same column: x is [N, 2]',
    ('TwoVariableModel',
     'lp1 = F.log_softmax(self.x1_logits, dim=0)[x1]',
     'lp1 = F.log_softmax(self.x1_logits, dim=0)[-x1]'):
        "relabels x1's free logits (all zero at first): the same family of p(x1)",
    ('TwoVariableModel',
     'lp1 = F.log_softmax(self.x1_logits, dim=0)[x1]',
     'lp1 = F.log_softmax(self.x1_logits, dim=-1)[x1]'):
        'same axis: the logits vector is 1-D',
    ('TwoVariableModel',
     'lp2 = F.log_softmax(logits2, dim=1).gather(1, x2[:, None]).squeeze(1)',
     'lp2 = F.log_softmax(logits2, dim=1).gather(1, x2[:, None]).squeeze(-1)'):
        'same axis: the gathered tensor is [N, 1]',
    ('TwoVariableModel',
     'lp2 = F.log_softmax(logits2, dim=1).gather(1, x2[:, None]).squeeze(1)',
     'lp2 = F.log_softmax(logits2, dim=1).gather(-1, x2[:, None]).squeeze(1)'):
        'same axis: log-probabilities are [N, d]',
    ('TwoVariableModel',
     'lp2 = F.log_softmax(logits2, dim=1).gather(1, x2[:, None]).squeeze(1)',
     'lp2 = F.log_softmax(-logits2, dim=1).gather(1, x2[:, None]).squeeze(1)'):
        "the sign is absorbed by the MLP's last Linear (free weights, symmetric initialisation)",
    ('TwoVariableModel',
     'lp2 = F.log_softmax(logits2, dim=1).gather(1, x2[:, None]).squeeze(1)',
     'lp2 = F.log_softmax(logits2, dim=-1).gather(1, x2[:, None]).squeeze(1)'):
        'same axis: logits2 is [N, d]',
    # CoordinateRNN
    ('CoordinateRNN',
     'inputs = torch.cat([seq.new_zeros(n, 1), seq[:, :-1]], dim=1).unsqueeze(-1)',
     'inputs = torch.cat([seq.new_zeros(n, 1), seq[:, :-1]], dim=-1).unsqueeze(-1)'):
        'same axis: the sequences are [N, HW]',
    ('CoordinateRNN',
     "coords = torch.stack([rows, cols], dim=1)                # pixel t's, [HW, 2]",
     "coords = torch.stack([rows, cols], dim=-1)                # pixel t's, [HW, 2]"):
        'same result: rows and cols are 1-D, so stacking on dim 1 or -1 gives [HW, 2]',
    ('CoordinateRNN',
     'return self.out(h).reshape(x.shape)',
     'return self.out(-h).reshape(x.shape)'):
        "the sign is absorbed by the output Linear's free weights",
    ('CoordinateRNN',
     'return -nll.flatten(1).sum(1)',
     'return -nll.flatten(1).sum(-1)'):
        'same axis: the flattened NLL is [N, HW]',
    # train_two_variable
    ('train_two_variable',
     'torch.manual_seed(0)',
     'torch.manual_seed(-1)'):
        'another seed: any seed trains a correct model (graded by a threshold)',
    ('train_two_variable',
     'torch.manual_seed(0)',
     'torch.manual_seed(1)'):
        'another seed: any seed trains a correct model (graded by a threshold)',
    # MaskedLinear
    ('MaskedLinear',
     'super().__init__(in_features, out_features, bias)',
     'super().__init__(in_features, out_features, -bias)'):
        'same truth value: -True is -1 (a bias), -False is 0 (none)',
    # MADE
    ('MADE',
     'return self.net(x.to(self.layers[0].weight.dtype))',
     'return self.net(x.to(self.layers[-1].weight.dtype))'):
        'same dtype: every layer of the model has one dtype',
    ('MADE',
     'x = x.to(self.layers[0].weight.dtype)',
     'x = x.to(self.layers[-1].weight.dtype)'):
        'same dtype: every layer of the model has one dtype',
    ('MADE',
     'x = x.to(self.layers[0].weight.dtype)',
     'x = x.to(self.layers[1].weight.dtype)'):
        'same dtype: every layer of the model has one dtype',
    ('MADE',
     'per_mask.append(-nll.sum(dim=1))',
     'per_mask.append(-nll.sum(dim=-1))'):
        'same axis: the NLL is [N, d]',
    # fast_generate
    ('fast_generate',
     'probs = torch.softmax(model.head(skip)[:, :, 0], dim=1)',
     'probs = torch.softmax(model.head(skip)[:, :, 0], dim=-1)'):
        'same axis: the probabilities are [n, K]',
    ('fast_generate',
     'probs = torch.softmax(model.head(skip)[:, :, 0], dim=1)',
     'probs = torch.softmax(model.head(skip)[:, :, -1], dim=1)'):
        'same position: one new position per step, so index -1 is index 0',
    ('fast_generate',
     'x[:, t] = torch.multinomial(probs, 1, generator=generator)[:, 0]',
     'x[:, t] = torch.multinomial(probs, 2, generator=generator)[:, 0]'):
        'torch races all categories whatever the count: first of two draws = the one draw',
    ('fast_generate',
     'x[:, t] = torch.multinomial(probs, 1, generator=generator)[:, 0]',
     'x[:, t] = torch.multinomial(probs, 1, generator=generator)[:, -1]'):
        'same sample: one draw, so index -1 is index 0',
    # pixelcnn_mask
    ('pixelcnn_mask',
     'c = kernel_size // 2',
     'c = -kernel_size // 2'):
        'same taps: -k // 2 = -ceil(k/2) indexes floor(k/2) on an axis of k',
    ('pixelcnn_mask',
     'c = kernel_size // 2',
     'c = kernel_size // -2'):
        'same taps: k // -2 = -ceil(k/2) indexes floor(k/2) on an axis of k',
    ('pixelcnn_mask',
     'mask[:, :, c, :c] = 1.0        # left of the centre in the centre row',
     'mask[:, :, c, :-c] = 1.0        # left of the centre in the centre row'):
        'same mask: :-c adds only the centre tap (or nothing), which the next lines overwrite',
    # receptive_field_map
    ('receptive_field_map',
     'g = torch.Generator().manual_seed(0)',
     'g = torch.Generator().manual_seed(-1)'):
        'another seed: any random inputs find the same structural dependence',
    ('receptive_field_map',
     'g = torch.Generator().manual_seed(0)',
     'g = torch.Generator().manual_seed(1)'):
        'another seed: any random inputs find the same structural dependence',
    ('receptive_field_map',
     'for _ in range(3):',
     'for _ in range(2):'):
        'several random inputs: a structural dependence shows on almost every input',
    ('receptive_field_map',
     'for _ in range(3):',
     'for _ in range(4):'):
        'several random inputs: a structural dependence shows on almost every input',
    ('receptive_field_map',
     '(grad,) = torch.autograd.grad((at * weights).sum(), x)',
     '(grad,) = torch.autograd.grad((at / weights).sum(), x)'):
        "random weights are non-zero: dividing keeps every gradient's zero pattern",
    ('receptive_field_map',
     '(grad,) = torch.autograd.grad((at * weights).sum(), x)',
     '(grad,) = torch.autograd.grad((-at * weights).sum(), x)'):
        "a sign flip keeps every gradient's zero pattern",
    ('receptive_field_map',
     '(grad,) = torch.autograd.grad((at * weights).sum(), x)',
     '(grad,) = torch.autograd.grad((at * -weights).sum(), x)'):
        "a sign flip keeps every gradient's zero pattern",
    ('receptive_field_map',
     'seen |= (grad[0] != 0).any(0)',
     'seen |= (grad[-1] != 0).any(0)'):
        'same image: the batch holds one image',
    # GatedPixelCNNLayer
    ('GatedPixelCNNLayer',
     'self.register_buffer("tap_mask", tap_mask)',
     'self.register_buffer("tap_mask", -tap_mask)'):
        "the sign is absorbed by the horizontal convolution's free weights",
    ('GatedPixelCNNLayer',
     'r, height = self.r, v.shape[2]',
     'r, height = self.r, v.shape[-2]'):
        'same axis: v is [N, C, H, W]',
    ('GatedPixelCNNLayer',
     'v_pre = self.vertical(F.pad(v, (r, r, r, 0)))              # rows i-r..i',
     'v_pre = self.vertical(F.pad(-v, (r, r, r, 0)))              # rows i-r..i'):
        "the sign is absorbed by the vertical convolution's free weights",
    ('GatedPixelCNNLayer',
     'v_down = F.pad(v_pre, (0, 0, 1, 0))[:, :, :height]         # row i gets row i-1',
     'v_down = F.pad(-v_pre, (0, 0, 1, 0))[:, :, :height]         # row i gets row i-1'):
        "the sign is absorbed by v_to_h's free weights",
    ('GatedPixelCNNLayer',
     'v_down = F.pad(v_pre, (0, 0, 1, 0))[:, :, :height]         # row i gets row i-1',
     'v_down = F.pad(v_pre, (0, 0, 1, -1))[:, :, :height]         # row i gets row i-1'):
        'same rows: one row padded on top, and the crop to height drops the bottom anyway',
    ('GatedPixelCNNLayer',
     'v_down = F.pad(v_pre, (0, 0, 1, 0))[:, :, :height]         # row i gets row i-1',
     'v_down = F.pad(v_pre, (0, 0, 1, 1))[:, :, :height]         # row i gets row i-1'):
        'same rows: one row padded on top, and the crop to height drops the bottom anyway',
    ('GatedPixelCNNLayer',
     'h_pre = F.conv2d(F.pad(h, (r, 0, 0, 0)), self.horizontal.weight * self.tap_mask,',
     'F.conv2d(F.pad(h, (r, 0, 0, 0)), self.horizontal.weight * self.tap_mask,'
     ' self.horizontal.bias) - self.v_to_h(v_down)'):
        "the sign is absorbed by v_to_h's free weights and bias",
    ('GatedPixelCNNLayer',
     'h_pre = F.conv2d(F.pad(h, (r, 0, 0, 0)), self.horizontal.weight * self.tap_mask,',
     'h_pre = F.conv2d(F.pad(-h, (r, 0, 0, 0)), self.horizontal.weight * self.tap_mask,'):
        "the sign is absorbed by the horizontal convolution's free weights",
    ('GatedPixelCNNLayer',
     'self.horizontal.bias) + self.v_to_h(v_down)',
     'self.horizontal.bias) + self.v_to_h(-v_down)'):
        "the sign is absorbed by v_to_h's free weights",
    ('GatedPixelCNNLayer',
     'v_new = torch.tanh(a) * torch.sigmoid(b)',
     'v_new = torch.tanh(-a) * torch.sigmoid(b)'):
        'the sign is absorbed by the convolution that makes a (free weights and bias)',
    ('GatedPixelCNNLayer',
     'v_new = torch.tanh(a) * torch.sigmoid(b)',
     'v_new = torch.tanh(a) * torch.sigmoid(-b)'):
        'the sign is absorbed by the convolution that makes b (free weights and bias)',
    ('GatedPixelCNNLayer',
     'h_new = self.h_out(torch.tanh(a) * torch.sigmoid(b))',
     'h_new = self.h_out(torch.tanh(-a) * torch.sigmoid(b))'):
        'the sign is absorbed by the convolution that makes a (free weights and bias)',
    ('GatedPixelCNNLayer',
     'h_new = self.h_out(torch.tanh(a) * torch.sigmoid(b))',
     'h_new = self.h_out(torch.tanh(a) * torch.sigmoid(-b))'):
        'the sign is absorbed by the convolution that makes b (free weights and bias)',
    ('GatedPixelCNNLayer',
     'return v_new, h_new if self.first else h + h_new',
     'return v_new, h_new if self.first else h - h_new'):
        "the sign is absorbed by h_out's free weights and bias",
    ('GatedPixelCNNLayer',
     'return v_new, h_new if self.first else h + h_new',
     'return v_new, h_new if self.first else h + -h_new'):
        "the sign is absorbed by h_out's free weights and bias",
    # CausalSelfAttention
    ('CausalSelfAttention',
     'if dim % heads != 0:',
     'if -dim % heads != 0:'):
        'same test: -dim % heads is 0 exactly when dim % heads is',
    ('CausalSelfAttention',
     'if dim % heads != 0:',
     'if dim % -heads != 0:'):
        'same test: dim % -heads is 0 exactly when dim % heads is',
    ('CausalSelfAttention',
     'q, k, v = (t.view(n, length, self.heads, d).transpose(1, 2)',
     'q, k, v = (t.view(n, length, self.heads, d).transpose(1, -2)'):
        'same axis: the view is 4-D, so -2 is 2',
    ('CausalSelfAttention',
     'scores = q @ k.transpose(-1, -2) / math.sqrt(d)',
     'scores = q @ k.transpose(-1, 2) / math.sqrt(d)'):
        'same axis: k is 4-D, so 2 is -2',
    ('CausalSelfAttention',
     'empty = ~allowed.any(-1, keepdim=True)                        # rows with no key',
     'empty = ~allowed.any(1, keepdim=True)                        # rows with no key'):
        'same axis: the mask is [L, L]',
    ('CausalSelfAttention',
     'out = (weights @ v).transpose(1, 2).reshape(n, length, dim)',
     'out = (weights @ v).transpose(1, -2).reshape(n, length, dim)'):
        'same axis: the product is 4-D, so -2 is 2',
    # train_pixelcnn
    ('train_pixelcnn',
     'def __init__(self, channels: int = 16):',
     'def __init__(self, channels: int = 15):'):
        'another width: the architecture is free (graded by causality and a threshold)',
    ('train_pixelcnn',
     'def __init__(self, channels: int = 16):',
     'def __init__(self, channels: int = 17):'):
        'another width: the architecture is free (graded by causality and a threshold)',
    ('train_pixelcnn',
     'return self.net(2.0 * x.to(self.net[0].weight.dtype) - 1.0)',
     'return self.net(2.0 * x.to(self.net[-1].weight.dtype) - 1.0)'):
        'same dtype: every layer of the model has one dtype',
    ('train_pixelcnn',
     'return self.net(2.0 * x.to(self.net[0].weight.dtype) - 1.0)',
     'return self.net(2.0 * x.to(self.net[0].weight.dtype) + 1.0)'):
        'another input scaling: a free design choice (graded by causality and a threshold)',
    ('train_pixelcnn',
     'return self.net(2.0 * x.to(self.net[0].weight.dtype) - 1.0)',
     'return self.net(2.0 * x.to(self.net[0].weight.dtype) - -1.0)'):
        'another input scaling: a free design choice (graded by causality and a threshold)',
    ('train_pixelcnn',
     'return self.net(2.0 * x.to(self.net[0].weight.dtype) - 1.0)',
     'return self.net(-2.0 * x.to(self.net[0].weight.dtype) - 1.0)'):
        'another input scaling: a free design choice (graded by causality and a threshold)',
    ('train_pixelcnn',
     'torch.manual_seed(0)',
     'torch.manual_seed(-1)'):
        'another seed: any seed trains a correct model (graded by a threshold)',
    ('train_pixelcnn',
     'torch.manual_seed(0)',
     'torch.manual_seed(1)'):
        'another seed: any seed trains a correct model (graded by a threshold)',
    ('train_pixelcnn',
     'g = torch.Generator().manual_seed(0)',
     'g = torch.Generator().manual_seed(-1)'):
        'another seed: any seed trains a correct model (graded by a threshold)',
    ('train_pixelcnn',
     'g = torch.Generator().manual_seed(0)',
     'g = torch.Generator().manual_seed(1)'):
        'another seed: any seed trains a correct model (graded by a threshold)',
    ('train_pixelcnn',
     'for step in range(by_budget(100, 1000, 3000)):',
     'for step in range(by_budget(100, -1000, 3000)):'):
        "the run uses ARLAB_BUDGET=smoke (100 steps); the cpu budget's count is not read",
    ('train_pixelcnn',
     'for step in range(by_budget(100, 1000, 3000)):',
     'for step in range(by_budget(100, 1000, -3000)):'):
        "the run uses ARLAB_BUDGET=smoke (100 steps); the gpu budget's count is not read",
    ('train_pixelcnn',
     'batch = x[torch.randint(0, len(x), (32,), generator=g)]',
     'batch = x[torch.randint(-1, len(x), (32,), generator=g)]'):
        'another batch sampler (the last image twice as likely): still a correct training',
    ('train_pixelcnn',
     'batch = x[torch.randint(0, len(x), (32,), generator=g)]',
     'batch = x[torch.randint(1, len(x), (32,), generator=g)]'):
        'another batch sampler (the first image never drawn): still a correct training',
    ('train_pixelcnn',
     'batch = x[torch.randint(0, len(x), (32,), generator=g)]',
     'batch = x[torch.randint(0, len(-x), (32,), generator=g)]'):
        'same length: len(-x) is len(x)',
}
