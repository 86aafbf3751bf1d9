"""The references of every exercise, in the homework's signatures: ``REFERENCES`` maps each
exercise name to the object a correct answer behaves like.

Most are the library's own (``histogram_probs``, ``MaskedConv2d``, ...); the rest are thin
homework-face versions defined here: ``TwoVariableModel`` and ``CoordinateRNN`` (hw1), ``MADE``
and ``fast_generate`` (hw2), ``receptive_field_map`` and ``train_pixelcnn`` (hw3). The twins
of the notebooks' given code (``TinyWaveNet``, ``naive_generate``, ``GatedStack``) live here
too, so a judge can rebuild what the student's code ran on.

This module imports models only, never the graded parts: :mod:`arlab.grading.parts` reads it
to swap references in (``swapped``) and to refuse them (``refusing_reference``), and the
assignments' tables in :mod:`arlab.grading.homework` read it to judge.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from arlab.compute import by_budget
from arlab.models.gated_pixelcnn import GatedPixelCNNLayer
from arlab.models.histogram import histogram_probs, inverse_cdf_sample
from arlab.models.logistic import dlogistic_mixture_log_prob
from arlab.models.made import MaskedLinear, made_degrees, made_masks
from arlab.models.pixelcnn import MaskedConv2d, pixelcnn_mask
from arlab.models.pixelsnail import CausalSelfAttention, causal_attention_mask
from arlab.models.rnn import PixelRNN
from arlab.models.two_variable import TwoVariable
from arlab.models.wavenet import CausalConv1d, GatedResidualBlock, wavenet_receptive_field
from arlab.receptive import dependence
from arlab.units import bits_per_dim

# --- hw1_foundations



class TwoVariableModel(TwoVariable):
    """The homework's two-variable model: ``p(x1)`` from a logits vector, ``p(x2 | x1)`` from
    an MLP (one hidden layer of ``hidden`` units) on the one-hot of ``x1``; ``log_prob(x)``
    for pairs ``x [N, 2]`` of levels 0..d-1 gives nats ``[N]``."""

    def __init__(self, d: int, hidden: int):
        super().__init__((2,), levels=d, hidden=hidden)


class CoordinateRNN(nn.Module):
    """The homework's raster-scan LSTM on binary images ``[N, 1, H, W]``: step t is fed the
    previous pixel (a start value before the first) and, with ``append_coords``, the
    (row/(H-1), column/(W-1)) of the pixel it predicts. ``forward(x)`` gives the Bernoulli
    logit of every pixel ``[N, 1, H, W]``; ``log_prob(x)`` nats per image ``[N]``."""

    def __init__(self, hidden: int, append_coords: bool, height: int, width: int):
        super().__init__()
        self.rnn = PixelRNN((1, height, width), 2, hidden=hidden, append_coords=append_coords)

    def forward(self, x: Tensor) -> Tensor:
        two = self.rnn(x)                                  # [N, 2, 1, H, W]: levels 0 and 1
        return two[:, 1] - two[:, 0]                       # logit of p(x = 1 | earlier pixels)

    def log_prob(self, x: Tensor) -> Tensor:
        return self.rnn.log_prob(x)


def train_two_variable(train: Tensor, test: Tensor, d: int) -> TwoVariableModel:
    """Fit a :class:`TwoVariableModel` (hidden 32) to the pairs ``train [N, 2]`` by full-batch
    Adam on the NLL (100 steps, about a second on a CPU). ``test`` is not used for fitting.
    Returns the model in eval mode."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = TwoVariableModel(d, 32)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(100):
        loss = -model.log_prob(train).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


# --- hw2_masked_models



class MADE(nn.Module):
    """The homework's MADE: one Bernoulli logit per dimension of binary data ``[N, d]``.

    Layout (the notebook's given ``MADEBase``): ``net = Sequential(MaskedLinear(d, h_1), ReLU,
    ..., MaskedLinear(h_last, d))``. Input degrees are the ordering's ranks (None: 0..d-1);
    hidden degrees follow :func:`arlab.models.made.made_degrees` with ``seed``. ``forward``
    uses mask ``mask_index``; ``log_prob`` is the uniform mixture over the masks.
    """

    def __init__(self, d: int, hidden_sizes: Sequence[int], ordering: Tensor | None = None,
                 num_masks: int = 1, seed: int = 0):
        super().__init__()
        sizes = [d, *hidden_sizes, d]
        modules: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            modules += [MaskedLinear(a, b), nn.ReLU()]
        self.net = nn.Sequential(*modules[:-1])
        ranks = torch.arange(d) if ordering is None else torch.as_tensor(ordering).long()
        inputs, hidden = made_degrees(ranks, list(hidden_sizes), num_masks, seed)
        self.masks = [made_masks(inputs[m], [h[m] for h in hidden]) for m in range(num_masks)]
        self.num_masks = num_masks
        self.mask_index = 0

    @property
    def layers(self) -> list[nn.Module]:
        return list(self.net)[0::2]

    def forward(self, x: Tensor) -> Tensor:
        """``x [N, d]`` (0/1, long or float) -> logits ``[N, d]`` under mask ``mask_index``."""
        for layer, mask in zip(self.layers, self.masks[self.mask_index]):
            layer.set_mask(mask)
        return self.net(x.to(self.layers[0].weight.dtype))

    def log_prob(self, x: Tensor) -> Tensor:
        """log of the mean over masks of p_mask(x), nats per example ``[N]``."""
        x = x.to(self.layers[0].weight.dtype)
        current, per_mask = self.mask_index, []
        for m in range(self.num_masks):
            self.mask_index = m
            per_mask.append(bernoulli_log_prob(self(x), x))
        self.mask_index = current
        return torch.logsumexp(torch.stack(per_mask), 0) - math.log(self.num_masks)


def bernoulli_log_prob(logits: Tensor, x: Tensor) -> Tensor:
    """Sum over dimensions of log Bernoulli(x | sigmoid(logits)): ``[N, d]`` -> ``[N]``."""
    return -F.binary_cross_entropy_with_logits(logits, x.to(logits.dtype),
                                               reduction="none").sum(1)


class TinyWaveNet(nn.Module):
    """Twin of the notebook's given TinyWaveNet: binary sequences ``[N, L]`` -> logits
    ``[N, 2, L]``, built from ``conv`` and ``block`` classes (the library's by default)."""

    def __init__(self, channels: int = 8, dilations: Sequence[int] = (1, 2, 4),
                 conv: type = CausalConv1d, block: type = GatedResidualBlock):
        super().__init__()
        self.channels = channels
        self.dilations = tuple(dilations)
        self.input_conv = conv(1, channels, 2, include_current=False)
        self.blocks = nn.ModuleList(block(channels, d) for d in self.dilations)
        self.out_hidden = nn.Conv1d(channels, channels, 1)
        self.out_logits = nn.Conv1d(channels, 2, 1)

    def scale(self, x: Tensor) -> Tensor:
        """Levels 0/1 ``[N, L]`` -> values -1/+1 ``[N, 1, L]`` in the parameters' dtype."""
        return (2.0 * x.to(self.out_logits.weight.dtype) - 1.0).unsqueeze(1)

    def head(self, skip: Tensor) -> Tensor:
        """Sum of the skips ``[N, C, L]`` -> logits ``[N, 2, L]``."""
        return self.out_logits(torch.relu(self.out_hidden(torch.relu(skip))))

    def forward(self, x: Tensor) -> Tensor:
        h = self.input_conv(self.scale(x))
        skip = 0
        for block in self.blocks:
            h, s = block(h)
            skip = skip + s
        return self.head(skip)


@torch.no_grad()
def naive_generate(model: nn.Module, n: int, length: int,
                   generator: torch.Generator) -> Tensor:
    """Twin of the notebook's given generator: a full forward pass per position."""
    x = torch.zeros(n, length, dtype=torch.long)
    for t in range(length):
        probs = torch.softmax(model(x)[:, :, t], dim=1)
        x[:, t] = torch.multinomial(probs, 1, generator=generator)[:, 0]
    return x


@torch.no_grad()
def fast_generate(model: nn.Module, n: int, length: int,
                  generator: torch.Generator) -> Tensor:
    """Cached generation for a TinyWaveNet whose layers take ``past`` (the library's do):
    one queue per layer, each layer run on one new position per step. ``LongTensor[n, length]``,
    equal to :func:`naive_generate` for the same generator state."""
    weight = model.out_logits.weight
    inputs = weight.new_zeros(n, 1, 2)          # the last two scaled values, zeros before t=0
    queues = [weight.new_zeros(n, model.channels, d) for d in model.dilations]
    unread = weight.new_zeros(n, 1, 1)          # the input conv never reads position t
    x = torch.zeros(n, length, dtype=torch.long)
    for t in range(length):
        h = model.input_conv(unread, past=inputs)
        skip = 0
        for i, block in enumerate(model.blocks):
            pushed = torch.cat([queues[i], h], dim=-1)[..., 1:]
            h, s = block(h, past=queues[i])
            queues[i] = pushed
            skip = skip + s
        probs = torch.softmax(model.head(skip)[..., 0], dim=1)
        x[:, t] = torch.multinomial(probs, 1, generator=generator)[:, 0]
        inputs = torch.cat([inputs, model.scale(x[:, t:t + 1])], dim=-1)[..., 1:]
    return x


# --- hw3_pixel_models




def receptive_field_map(model: nn.Module, image_shape: tuple[int, int, int],
                        pixel: tuple[int, int], num_inputs: int = 3, seed: int = 0) -> Tensor:
    """Input pixels (any channel) on which ``model``'s outputs at ``pixel`` depend.

    ``model`` maps ``[1, C, H, W]`` to a tensor whose last two dims are ``H, W``. In float64,
    for ``num_inputs`` random inputs, a random projection of every output at ``pixel`` is
    back-propagated; a pixel is seen when some channel's gradient is non-zero for some input
    (compared with 0 exactly, as :mod:`arlab.receptive` does). Returns ``BoolTensor[H, W]``.
    """
    c, h, w = (int(s) for s in image_shape)
    i, j = (int(p) for p in pixel)
    g = torch.Generator().manual_seed(seed)
    inputs = torch.rand((num_inputs, c, h, w), generator=g, dtype=torch.float64)
    found = dependence(model, inputs, in_axes=(1, 2), out_axes=(-2, -1), rows=[i * w + j],
                       perturb=False, seed=seed)
    return found.seen[i * w + j].view(h, w)


class TinyPixelCNN(nn.Module):
    """The reference model of ``train_pixelcnn``: binary images ``[N, 1, H, W]`` (0/1) ->
    one Bernoulli logit per pixel ``[N, 1, H, W]``. A type-A 5x5 masked convolution, two
    type-B 3x3 ones, a 1x1 output; ReLU between."""

    def __init__(self, channels: int = 16):
        super().__init__()
        self.net = nn.Sequential(
            MaskedConv2d(1, channels, 5, "A"), nn.ReLU(),
            MaskedConv2d(channels, channels, 3, "B"), nn.ReLU(),
            MaskedConv2d(channels, channels, 3, "B"), nn.ReLU(),
            MaskedConv2d(channels, 1, 1, "B"))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(2.0 * x.to(self.net[0].weight.dtype) - 1.0)  # float64 too, for the judge


def train_pixelcnn(train: Tensor, test: Tensor) -> nn.Module:
    """Fit :class:`TinyPixelCNN` to binary images ``train [N, 1, H, W]`` by Adam on the
    Bernoulli NLL; ``by_budget`` steps (smoke: seconds on a CPU). ``test`` is not used for
    fitting. Returns the model in eval mode."""
    gen = torch.Generator().manual_seed(0)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = TinyPixelCNN()
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    x = train.float()
    for _ in range(by_budget(100, 1000, 3000)):
        batch = x[torch.randint(0, x.shape[0], (32,), generator=gen)]
        loss = F.binary_cross_entropy_with_logits(model(batch), batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


class GatedStack(nn.Module):
    """Twin of the notebook's given stack: ``v = h = `` a 1x1 embedding of the image, then
    ``layers`` layers of ``layer_cls(channels, kernel_size, first)`` (only the first with
    ``first=True``), then a 1x1 convolution of ``h`` to one output per pixel.
    ``[N, in_channels, H, W] -> [N, 1, H, W]``."""

    def __init__(self, layer_cls: type, in_channels: int, channels: int, kernel_size: int,
                 layers: int):
        super().__init__()
        self.embed = nn.Conv2d(in_channels, channels, 1)
        self.layers = nn.ModuleList(layer_cls(channels, kernel_size, k == 0)
                                    for k in range(layers))
        self.out = nn.Conv2d(channels, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        v = h = self.embed(x)
        for layer in self.layers:
            v, h = layer(v, h)
        return self.out(h)


REFERENCES = {
    # hw1_foundations
    "histogram_probs": histogram_probs,
    "inverse_cdf_sample": inverse_cdf_sample,
    "dlogistic_mixture_log_prob": dlogistic_mixture_log_prob,
    "bits_per_dim": bits_per_dim,
    "TwoVariableModel": TwoVariableModel,
    "CoordinateRNN": CoordinateRNN,
    "train_two_variable": train_two_variable,
    # hw2_masked_models
    "made_masks": made_masks,
    "MaskedLinear": MaskedLinear,
    "MADE": MADE,
    "CausalConv1d": CausalConv1d,
    "wavenet_receptive_field": wavenet_receptive_field,
    "GatedResidualBlock": GatedResidualBlock,
    "fast_generate": fast_generate,
    # hw3_pixel_models
    "pixelcnn_mask": pixelcnn_mask,
    "MaskedConv2d": MaskedConv2d,
    "receptive_field_map": receptive_field_map,
    "GatedPixelCNNLayer": GatedPixelCNNLayer,
    "causal_attention_mask": causal_attention_mask,
    "CausalSelfAttention": CausalSelfAttention,
    "train_pixelcnn": train_pixelcnn,
}
