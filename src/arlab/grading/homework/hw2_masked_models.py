"""hw2_masked_models (walkthrough 05–06): the graded parts of MADE and WaveNet, and the
assignment's ``TABLE`` (exercise, points, parts). The references (``MADE``, ``fast_generate``)
and the twins of the notebook's given code (``TinyWaveNet``, ``naive_generate``) are in
:mod:`arlab.grading.references`.

Every part draws its inputs and weights from fixed seeds; ``probe`` runs the student's code
and returns arrays, ``judge`` recomputes the reference from the same seeds.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from arlab.grading.checks import GradingError, check_close, check_shape, fail
from arlab.grading.parts import Assignment, Check, Exercise, student
from arlab.grading.probes import (attr, draw, from_np, gen, judge_masked_grad,
                                  judge_weight_kept, set_param)
from arlab.grading.references import (MADE, TinyWaveNet, bernoulli_log_prob, fast_generate,
                                       naive_generate)
from arlab.models.made import MaskedLinear, made_degrees, made_masks
from arlab.models.wavenet import CausalConv1d, GatedResidualBlock, wavenet_receptive_field
from arlab.receptive import Dependence, dependence

# =============================================================================================
# Helpers shared by the parts
# =============================================================================================


def _as_list(value, what: str) -> list:
    if not isinstance(value, (list, tuple)):
        fail(f"{what} should return a list of masks, got {type(value).__name__}.")
    return list(value)


# =============================================================================================
# made_masks (4 points): hidden masks (2), output mask (2)
# =============================================================================================

def _made_masks_cases() -> list[tuple[Tensor, list[Tensor]]]:
    """(input_degrees, hidden_degrees) from fixed seeds: ties between layers on purpose."""
    cases = []
    for d, sizes, seed in [(5, [7, 6], 1), (6, [9, 8, 5], 2), (4, [], 3), (3, [4], 4)]:
        ranks = torch.randperm(d, generator=gen(seed))
        inputs, hidden = made_degrees(ranks, sizes, 1, seed)
        cases.append((inputs[0], [h[0] for h in hidden]))
    # degrees that do not follow the draw rule: made_masks must not assume it
    cases.append((torch.tensor([3, 0, 2, 1]), [torch.tensor([2, 2, 0, 1, 1]),
                                               torch.tensor([0, 2, 1])]))
    return cases


def _judge_mask(actual: Tensor, expected: Tensor, out_deg: Tensor, in_deg: Tensor,
                what: str, out_name: str, in_name: str, rule: str) -> None:
    check_shape(actual, tuple(expected.shape), what)
    if not actual.is_floating_point():
        fail(f"{what} has dtype {actual.dtype}; return a float mask (1.0 = connected, "
             f"0.0 = not), e.g. with `.float()`.")
    wrong = (actual.double() != expected.double()).nonzero()
    if len(wrong):
        i, j = wrong[0].tolist()
        should = "must see" if expected[i, j] == 1 else "must not see"
        fail(f"{what}: mask[{i}, {j}] is {actual[i, j].item():g} but {out_name} {i} (degree "
             f"{int(out_deg[i])}) {should} {in_name.format(j=j)} (degree {int(in_deg[j])}): "
             f"{rule} ({len(wrong)} wrong entries in all).")


def _probe_made_masks(ns, output: bool) -> dict[str, Tensor]:
    """Every mask of every case (both parts probe alike; ``output`` is the judge's)."""
    made = student(ns, "made_masks")
    out = {}
    for c, (inputs, hidden) in enumerate(_made_masks_cases()):
        masks = _as_list(made(inputs.clone(), [h.clone() for h in hidden]),
                         "made_masks(input_degrees, hidden_degrees)")
        out[f"count_{c}"] = torch.tensor(len(masks))
        for l, mask in enumerate(masks):
            if not isinstance(mask, Tensor):
                fail(f"made_masks(...)[{l}] should be a Tensor, got {type(mask).__name__}.")
            out[f"mask_{c}_{l}"] = mask
    return out


def _judge_made_masks(out, output: bool) -> None:
    """The hidden layers' masks, or (``output``) the output layer's."""
    for c, (inputs, hidden) in enumerate(_made_masks_cases()):
        got = int(out[f"count_{c}"])
        if got != len(hidden) + 1:
            fail(f"made_masks returned {got} masks for {len(hidden)} hidden layer(s); expected "
                 f"{len(hidden) + 1}: one per hidden layer, then the output layer.")
        ref, degrees = made_masks(inputs, hidden), [inputs, *hidden]
        if output:
            below = "unit {j} of the last hidden layer" if hidden else "input {j}"
            _judge_mask(from_np(out[f"mask_{c}_{len(hidden)}"]), ref[-1], inputs, degrees[-1],
                        f"made_masks(...)[-1] (the output layer, case {c})", "output", below,
                        "output d sees what is below it only when the input degree of d "
                        "is strictly greater than the degree below")
            continue
        for l in range(len(hidden)):
            below = "input {j}" if l == 0 else f"unit {{j}} of hidden layer {l - 1}"
            _judge_mask(from_np(out[f"mask_{c}_{l}"]), ref[l], degrees[l + 1], degrees[l],
                        f"made_masks(...)[{l}] (hidden layer {l}, case {c})", "unit",
                        below, "a hidden unit sees what is below it when its degree is "
                        ">= the degree below")


# =============================================================================================
# MaskedLinear (2 points): masked forward and gradients (1), weight left alone (1)
# =============================================================================================

def _linear_case(seed: int, n_in: int = 5, n_out: int = 4):
    g = gen(seed)
    weight, bias = draw((n_out, n_in), g, 0.5), draw((n_out,), g, 0.5)
    masks = [(torch.rand(n_out, n_in, generator=g) < 0.5).float() for _ in range(2)]
    x, gout = draw((3, n_in), g, 1.0), draw((3, n_out), g, 1.0)
    return weight, bias, masks, x, gout


def _new_masked_linear(ns, n_in: int, n_out: int):
    cls = student(ns, "MaskedLinear")
    layer = cls(n_in, n_out)
    if not isinstance(layer, nn.Linear):
        fail("MaskedLinear must subclass nn.Linear (class MaskedLinear(nn.Linear)), so that it "
             "keeps nn.Linear's `weight` [out, in] and `bias` [out].")
    return layer


def _probe_masked_linear_forward(ns) -> dict[str, Tensor]:
    weight, bias, masks, x, gout = _linear_case(21)
    layer = _new_masked_linear(ns, 5, 4)
    set_param(layer.weight, weight, "MaskedLinear.weight")
    set_param(layer.bias, bias, "MaskedLinear.bias")
    layer.set_mask(masks[0].clone())
    x = x.clone().requires_grad_(True)
    y = layer(x)
    check_shape(y, (3, 4), "MaskedLinear(5, 4)(x) for x of shape (3, 5)")
    (y * gout).sum().backward()
    if layer.weight.grad is None:
        fail("MaskedLinear: no gradient reached `weight`; compute the output from "
             "self.weight (times the mask) so that training can update it.")
    return {"y": y, "grad_weight": layer.weight.grad, "grad_x": x.grad}


def _judge_masked_linear_forward(out) -> None:
    weight, bias, masks, x, gout = _linear_case(21)
    ref = MaskedLinear(5, 4)
    with torch.no_grad():
        ref.weight.copy_(weight)
        ref.bias.copy_(bias)
    ref.set_mask(masks[0])
    x = x.clone().requires_grad_(True)
    y = ref(x)
    (y * gout).sum().backward()
    check_close(from_np(out["y"]), y, "MaskedLinear's output",
                hint="The output is x @ (weight * mask).T + bias.")
    got = from_np(out["grad_weight"])
    judge_masked_grad(got, masks[0], "MaskedLinear",
                      "F.linear(x, self.weight * self.mask, self.bias)")
    check_close(got, ref.weight.grad, "MaskedLinear: weight.grad",
                hint="The gradient of an unmasked weight is that of nn.Linear.")
    check_close(from_np(out["grad_x"]), x.grad, "MaskedLinear: the gradient with respect to x",
                hint="Masked weights must not carry gradient to the input either.")


def _probe_masked_linear_keeps_weight(ns) -> dict[str, Tensor]:
    weight, bias, masks, x, _ = _linear_case(22)
    layer = _new_masked_linear(ns, 5, 4)
    set_param(layer.weight, weight, "MaskedLinear.weight")
    set_param(layer.bias, bias, "MaskedLinear.bias")
    with torch.no_grad():
        layer.set_mask(masks[0].clone())
        y0 = layer(x)
        after_first = layer.weight.detach().clone()
        layer.set_mask(masks[1].clone())
        y1 = layer(x)
    return {"y0": y0, "y1": y1, "weight_after": after_first,
            "weight_end": layer.weight.detach().clone()}


def _judge_masked_linear_keeps_weight(out) -> None:
    weight, bias, masks, x, _ = _linear_case(22)
    for key in ("weight_after", "weight_end"):
        got = from_np(out[key])
        judge_weight_kept(got, weight, "MaskedLinear", "set_mask and a forward pass",
                          "(self.weight * self.mask), so that a new mask can use every "
                          "weight again.")
        check_close(got, weight, f"MaskedLinear's weight ({key})")
    for k, key in enumerate(("y0", "y1")):
        want = F.linear(x, weight * masks[k], bias)
        check_close(from_np(out[key]), want, f"MaskedLinear's output after set_mask #{k + 1}",
                    hint="set_mask replaces the previous mask; the output must use the "
                         "new mask with the original weights.")


# =============================================================================================
# MADE (4 points): logits per mask with grader weights (2), causality (1), log_prob (1)
# =============================================================================================

_MADE_EXACT = [  # d, hidden sizes, ordering, num_masks, seed, weight seed
    (5, [16, 12], [2, 0, 4, 1, 3], 3, 7, 101),
    (6, [10, 10, 8], None, 2, 3, 102),
    (4, [], None, 1, 0, 103),
    (4, [9], [3, 1, 0, 2], 2, 11, 104),
    (6, [2, 3, 2], [5, 3, 1, 0, 2, 4], 3, 13, 108),  # narrow layers: low > 0 happens
    (5, [8, 6], None, 2, 0, 109),                    # every default but num_masks
]
_MADE_CAUSAL = (6, [32, 32], [4, 1, 5, 0, 3, 2], 2, 5, 105)
_MADE_LOGPROB = [(5, [16, 12], [2, 0, 4, 1, 3], 3, 7, 106), (4, [8], None, 1, 2, 107)]


def _made_inputs(d: int, seed: int, n: int = 6) -> Tensor:
    return torch.randint(0, 2, (n, d), generator=gen(seed + 1000)).float()


def _made_layer_weights(d: int, hidden: Sequence[int], seed: int) -> list[tuple[Tensor, Tensor]]:
    g, sizes = gen(seed), [d, *hidden, d]
    return [(draw((b, a), g, 0.7), draw((b,), g, 0.3)) for a, b in zip(sizes[:-1], sizes[1:])]


def _build_made(cls, d, hidden, ordering, num_masks, seed, wseed, what: str):
    """A MADE (the student's or the reference) with the grader's weights in its layers."""
    # defaults as the visible tests use them: an argument at its default is not passed
    extra = {k: v for k, v, default in (("ordering", ordering, None), ("num_masks", num_masks, 1),
                                         ("seed", seed, 0)) if v != default}
    if "ordering" in extra:
        extra["ordering"] = torch.tensor(ordering)
    model = cls(d, list(hidden), **extra)
    net = attr(model, "net", what, "build your MADE on the given MADEBase "
                "(class MADE(MADEBase), calling super().__init__(d, hidden_sizes)).")
    layers = list(net)[0::2]
    if len(layers) != len(hidden) + 1:
        fail(f"{what}.net has {len(layers)} linear layers; the given MADEBase makes "
             f"{len(hidden) + 1}. Do not change self.net.")
    for l, (layer, (w, b)) in enumerate(zip(layers, _made_layer_weights(d, hidden, wseed))):
        set_param(attr(layer, "weight", f"{what}.net[{2 * l}]", "it should be a MaskedLinear."), w,
             f"{what}.net[{2 * l}].weight")
        set_param(layer.bias, b, f"{what}.net[{2 * l}].bias")
    return model


def _masked_logits(model, x: Tensor, m: int) -> Tensor:
    """Logits under mask ``m``, with gradients (for the dependence engine)."""
    model.mask_index = m
    logits = model(x)
    check_shape(logits, tuple(x.shape), f"MADE(x) for x of shape {tuple(x.shape)}")
    return logits


def _made_logits(model, x: Tensor, m: int, what: str) -> Tensor:
    model.mask_index = m
    with torch.no_grad():
        logits = model(x)
    check_shape(logits, tuple(x.shape), f"{what}(x) for x of shape {tuple(x.shape)}")
    return logits


def _probe_made_logits(ns) -> dict[str, Tensor]:
    cls, out = student(ns, "MADE"), {}
    for c, (d, hidden, order, masks, seed, wseed) in enumerate(_MADE_EXACT):
        model = _build_made(cls, d, hidden, order, masks, seed, wseed, "MADE")
        x = _made_inputs(d, wseed)
        with torch.no_grad():  # a new MADE starts with mask 0
            out[f"initial_{c}"] = model(x)
        for m in range(masks):
            out[f"logits_{c}_{m}"] = _made_logits(model, x, m, "MADE")
    return out


def _judge_made_logits(out) -> None:
    for c, (d, hidden, order, masks, seed, wseed) in enumerate(_MADE_EXACT):
        ref = _build_made(MADE, d, hidden, order, masks, seed, wseed, "the reference")
        x = _made_inputs(d, wseed)
        want = [_made_logits(ref, x, m, "MADE") for m in range(masks)]
        setup = (f"MADE({d}, {hidden}, ordering={order}, num_masks={masks}, seed={seed}) "
                 f"with the grader's weights")
        check_close(from_np(out[f"initial_{c}"]), want[0], f"{setup}: logits of a new MADE",
                    atol=1e-5, hint="A new MADE starts with mask_index = 0.")
        for m in range(masks):
            got = from_np(out[f"logits_{c}_{m}"])
            check_shape(got, (x.shape[0], d), f"{setup}: logits")
            if m > 0 and torch.allclose(got.double(), want[0].double(), atol=1e-5) and \
                    not torch.allclose(want[m], want[0], atol=1e-5):
                fail(f"{setup}: the logits under mask_index = {m} equal those under mask 0; "
                     "forward must use the masks of self.mask_index (the grader sets "
                     "model.mask_index = m before calling it).")
            check_close(got, want[m], f"{setup}: logits under mask_index = {m}", atol=1e-5,
                        hint="Check the degrees: input degrees are the ordering's ranks "
                             "(0..d-1 when None); hidden degrees come from ONE generator "
                             "torch.Generator().manual_seed(seed), masks in order, layer by "
                             "layer torch.randint(low, d - 1, (h,), generator=g) with low "
                             "the smallest degree of the layer below; masks from "
                             "made_masks.")


def _probe_made_causal(ns) -> dict[str, Tensor]:
    d, hidden, order, masks, seed, wseed = _MADE_CAUSAL
    model = _build_made(student(ns, "MADE"), d, hidden, order, masks, seed, wseed, "MADE")
    inputs, out = torch.randint(0, 2, (3, d), generator=gen(wseed)).double(), {}
    for m in range(masks):
        found = dependence(model, inputs, call=lambda mod, v, m=m: _masked_logits(mod, v, m),
                           levels=2)
        out[f"depends_{m}"], out[f"how_{m}"] = found.seen, found.how()
    return out


def _judge_made_causal(out) -> None:
    d, hidden, order, masks, seed, _ = _MADE_CAUSAL
    ranks = torch.tensor(order)
    setup = f"MADE({d}, {hidden}, ordering={order}, num_masks={masks}, seed={seed})"
    for m in range(masks):
        seen = from_np(out[f"depends_{m}"]).bool()
        check_shape(seen, (d, d), "the dependence table")
        how = f" (Decided by {Dependence.described(out[f'how_{m}'])}.)"
        leak = seen & (ranks[None, :] >= ranks[:, None])
        if leak.any():
            p, q = leak.nonzero()[0].tolist()
            fail(f"{setup}, mask {m}: logit {p} (rank {int(ranks[p])}) depends on input {q} "
                 f"(rank {int(ranks[q])}), which comes {'at the same step' if p == q else 'later'}"
                 " in the ordering. Input degrees must be the ordering's ranks, and forward "
                 "must apply the masks of self.mask_index." + how)
        for p in range(d):
            if ranks[p] > 0 and not seen[p].any():
                fail(f"{setup}, mask {m}: logit {p} (rank {int(ranks[p])}) depends on no "
                     "input at all; it should see the inputs that come before it." + how)


def _probe_made_log_prob(ns) -> dict[str, Tensor]:
    cls, out = student(ns, "MADE"), {}
    for c, (d, hidden, order, masks, seed, wseed) in enumerate(_MADE_LOGPROB):
        model = _build_made(cls, d, hidden, order, masks, seed, wseed, "MADE")
        x = _all_binary(d)
        out[f"logits_{c}"] = torch.stack([_made_logits(model, x, m, "MADE")
                                          for m in range(masks)])
        model.mask_index = masks - 1  # log_prob must not depend on the current mask
        with torch.no_grad():
            out[f"log_prob_{c}"] = model.log_prob(x)
    return out


def _judge_made_log_prob(out) -> None:
    for c, (d, hidden, order, masks, seed, _) in enumerate(_MADE_LOGPROB):
        x = _all_binary(d).double()
        logits = from_np(out[f"logits_{c}"]).double()
        check_shape(logits, (masks, x.shape[0], d), "the logits of every mask")
        per_mask = torch.stack([bernoulli_log_prob(logits[m], x) for m in range(masks)])
        want = torch.logsumexp(per_mask, 0) - math.log(masks)
        setup = f"MADE({d}, {hidden}, ordering={order}, num_masks={masks}, seed={seed})"
        got = from_np(out[f"log_prob_{c}"])
        check_shape(got, (x.shape[0],), f"{setup}.log_prob(x) for {x.shape[0]} inputs")
        check_close(got, want, f"{setup}.log_prob(x) on all {x.shape[0]} binary inputs",
                    atol=1e-4, rtol=1e-5,
                    hint="log_prob is log of the MEAN over masks of each mask's joint "
                         "probability, sum_j log Bernoulli(x_j | sigmoid(logit_j)) under "
                         "that mask: logsumexp over masks minus log(num_masks). Never "
                         "average the logits.")


def _all_binary(d: int) -> Tensor:
    return torch.tensor([[(i >> (d - 1 - j)) & 1 for j in range(d)] for i in range(2 ** d)],
                        dtype=torch.float32)


# =============================================================================================
# CausalConv1d (3 points): include_current=True (2), include_current=False (1)
# =============================================================================================

_CONV_CASES = {  # include_current -> [(in, out, kernel, dilation, length)]
    True: [(2, 3, 2, 1, 7), (2, 3, 3, 2, 9), (1, 2, 2, 4, 3), (3, 2, 1, 1, 4)],
    False: [(2, 3, 2, 1, 7), (2, 3, 3, 2, 9), (1, 2, 2, 4, 3), (3, 2, 1, 1, 4)],
}


def _conv_case(c: int, include: bool, case):
    cin, cout, k, dil, length = case
    g = gen(300 + 10 * c + include)
    return (draw((cout, cin, k), g, 0.5), draw((cout,), g, 0.5),
            draw((2, cin, length), g, 1.0))


def _probe_conv(ns, include: bool) -> dict[str, Tensor]:
    cls, out = student(ns, "CausalConv1d"), {}
    for c, case in enumerate(_CONV_CASES[include]):
        cin, cout, k, dil, length = case
        weight, bias, x = _conv_case(c, include, case)
        # the default dilation as the visible tests use it: not passed at all
        extra = ({} if dil == 1 else {"dilation": dil}) | \
            ({} if include else {"include_current": False})
        conv = cls(cin, cout, k, **extra)
        what = f"CausalConv1d({cin}, {cout}, {k}, dilation={dil}, include_current={include})"
        hint = ("hold the parameters as self.weight [out_ch, in_ch, kernel_size] and self.bias "
                "[out_ch], as nn.Conv1d does.")
        set_param(attr(conv, "weight", what, hint), weight, f"{what}.weight")
        set_param(attr(conv, "bias", what, hint), bias, f"{what}.bias")
        with torch.no_grad():
            y = conv(x)
        check_shape(y, (2, cout, length), f"{what}(x) for x of shape {tuple(x.shape)}")
        out[f"y_{c}"] = y
        reach = _reach(k, dil, include)
        if 0 < reach and 2 * reach <= length:  # the caching path: the rest, given its past
            with torch.no_grad():
                tail = conv(x[..., reach:], past=x[..., :reach])
            check_shape(tail, (2, cout, length - reach),
                        f"{what}(x[..., {reach}:], past=x[..., :{reach}])")
            out[f"past_{c}"] = tail
    return out


def _reach(k: int, dilation: int, include: bool) -> int:
    """How many inputs before x an output of CausalConv1d can use: its history."""
    return (k - 1) * dilation + (0 if include else 1)


def _judge_conv(out, include: bool) -> None:
    for c, case in enumerate(_CONV_CASES[include]):
        cin, cout, k, dil, length = case
        weight, bias, x = _conv_case(c, include, case)
        ref = CausalConv1d(cin, cout, k, dil, include)
        with torch.no_grad():
            ref.weight.copy_(weight)
            ref.bias.copy_(bias)
            want = ref(x)
        shift = 0 if include else 1
        taps = ", ".join(f"t-{(k - 1 - j) * dil + shift}" if (k - 1 - j) * dil + shift else "t"
                         for j in range(k))
        check_close(from_np(out[f"y_{c}"]), want,
                    f"CausalConv1d({cin}, {cout}, {k}, dilation={dil}, include_current="
                    f"{include}) on a sequence of length {length}", atol=1e-5,
                    hint=f"Output t must combine the inputs at {taps} (weight[:, :, 0] the "
                         "oldest), with zeros before the start; the output keeps length L.")
        reach = _reach(k, dil, include)
        if 0 < reach and 2 * reach <= length:
            check_close(from_np(out[f"past_{c}"]), want[..., reach:],
                        f"CausalConv1d({cin}, {cout}, {k}, dilation={dil}, include_current="
                        f"{include})(x[..., {reach}:], past=x[..., :{reach}])", atol=1e-5,
                        hint=f"with past (the {reach} inputs just before x), the output must "
                             "equal that of the whole sequence: use past where the zero "
                             "padding was (the cached generation relies on it).")


# =============================================================================================
# wavenet_receptive_field (2 points), on stacks whose taps leave no gaps
# =============================================================================================

_FIELD_CASES = [(2, [1]), (2, [1, 2, 4]), (2, [1, 2, 4, 8, 1, 2, 4, 8]), (3, [1, 3, 9]),
                (3, [1, 2, 4]), (4, [1]), (2, [4, 2, 1]), (1, [1, 1]), (5, [1, 1, 2])]


def _probe_receptive_field(ns) -> dict[str, Tensor]:
    fn = student(ns, "wavenet_receptive_field")
    values = []
    for k, dilations in _FIELD_CASES:
        value = fn(k, list(dilations))
        if isinstance(value, Tensor):
            value = value.item()
        if not isinstance(value, (int, float, np.integer, np.floating)):
            fail(f"wavenet_receptive_field({k}, {dilations}) should return an int, got "
                 f"{type(value).__name__}.")
        values.append(float(value))
    return {"values": torch.tensor(values, dtype=torch.float64)}


def _judge_receptive_field(out) -> None:
    got = from_np(out["values"])
    check_shape(got, (len(_FIELD_CASES),), "the receptive fields")
    for value, (k, dilations) in zip(got.tolist(), _FIELD_CASES):
        want = wavenet_receptive_field(k, dilations)
        if value != want:
            fail(f"wavenet_receptive_field({k}, {dilations}) returned {value:g}; expected "
                 f"{want}: one layer of kernel {k} and dilation d reaches {k - 1}·d "
                 "positions back, the reaches add up along the stack, and the output's own "
                 "position counts too.")


# =============================================================================================
# GatedResidualBlock (3 points): residual output (2), skip output (1)
# =============================================================================================

_BLOCK_CASES = [(3, 2, 10, 401), (2, 1, 6, 402), (4, 4, 7, 403)]  # channels, dilation, L, seed


def _block_weights(channels: int, seed: int) -> dict[str, Tensor]:
    g, c = gen(seed), channels
    shapes = {"dilated.weight": (2 * c, c, 2), "dilated.bias": (2 * c,),
              "residual.weight": (c, c, 1), "residual.bias": (c,),
              "skip.weight": (c, c, 1), "skip.bias": (c,)}
    return {name: draw(shape, g, 0.6) for name, shape in shapes.items()}


def _block_input(channels: int, length: int, seed: int) -> Tensor:
    return draw((2, channels, length), gen(seed + 50), 1.0)


def _load_block(block, weights: dict[str, Tensor], what: str) -> None:
    hints = {"dilated": "a causal convolution, kernel 2, channels -> 2·channels",
             "residual": "a 1x1 nn.Conv1d, channels -> channels",
             "skip": "a 1x1 nn.Conv1d, channels -> channels"}
    for name, value in weights.items():
        owner, pname = name.split(".")
        sub = attr(block, owner, what, f"the contract names it `{owner}` ({hints[owner]}).")
        set_param(attr(sub, pname, f"{what}.{owner}", f"it should be {hints[owner]}."), value,
             f"{what}.{name}")


def _probe_block(ns, key: str) -> dict[str, Tensor]:
    """Both outputs of every case (both parts probe alike; ``key`` is the judge's)."""
    cls, out = student(ns, "GatedResidualBlock"), {}
    for c, (channels, dilation, length, seed) in enumerate(_BLOCK_CASES):
        what = f"GatedResidualBlock({channels}, {dilation})"
        block = cls(channels, dilation)
        _load_block(block, _block_weights(channels, seed), what)
        with torch.no_grad():
            result = block(_block_input(channels, length, seed))
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            fail(f"{what}(x) should return a pair (x + residual(z), skip(z)); got "
                 f"{type(result).__name__}.")
        for key, value in zip(("residual", "skip"), result):
            check_shape(value, (2, channels, length), f"{what}(x): the {key} output")
            out[f"{key}_{c}"] = value
    return out


def _judge_block(out, key: str) -> None:
    for c, (channels, dilation, length, seed) in enumerate(_BLOCK_CASES):
        ref = GatedResidualBlock(channels, dilation)
        with torch.no_grad():
            for name, value in _block_weights(channels, seed).items():
                ref.get_parameter(name).copy_(value)
            want = ref(_block_input(channels, length, seed))[0 if key == "residual" else 1]
        what = "x + residual(z)" if key == "residual" else "skip(z)"
        check_close(from_np(out[f"{key}_{c}"]), want,
                    f"GatedResidualBlock({channels}, {dilation}): the output {what}", atol=1e-5,
                    hint="a, b = dilated(x).chunk(2, dim=1) (a: the first half of the "
                         "channels), z = tanh(a) * sigmoid(b); dilated is causal with kernel 2 "
                         "and the block's dilation.")


# =============================================================================================
# fast_generate (4 points): equal to the naive generator (2), really cached (2)
# =============================================================================================

_GEN_CASES = [  # channels, dilations, n, length, weight seed, sampling seed
    (4, (1, 2, 4), 8, 14, 501, 7),
    (3, (1, 3), 8, 10, 502, 8),
    (4, (2, 1, 2), 8, 10, 503, 9),
]


def _wavenet_parameters(model: nn.Module) -> list[tuple[str, Tensor]]:
    """The TinyWaveNet layout's parameters in a fixed order (names as in the twin)."""
    names = ["input_conv.weight", "input_conv.bias"]
    for i in range(len(model.dilations)):
        names += [f"blocks.{i}.{m}.{p}" for m in ("dilated", "residual", "skip")
                  for p in ("weight", "bias")]
    names += ["out_hidden.weight", "out_hidden.bias", "out_logits.weight", "out_logits.bias"]
    return [(name, model.get_parameter(name)) for name in names]


def _build_wavenet(cls, channels: int, dilations, seed: int):
    """A TinyWaveNet (the notebook's or the twin) with the grader's weights."""
    model = cls(channels, dilations)
    g = gen(seed)
    try:
        params = _wavenet_parameters(model)
    except AttributeError as err:
        raise GradingError(f"the given TinyWaveNet has lost a layer ({err}); run its given cell "
                           "again as it was.") from None
    for name, param in params:
        # weights ~ gain / sqrt(fan in), small biases: logits that depend on the context
        gain = 3.0 if name.startswith("out_logits") else 1.5
        scale = gain / math.sqrt(param[0].numel()) if param.dim() > 1 else 0.1
        set_param(param, draw(param.shape, g, scale), f"TinyWaveNet.{name}")
    return model


def _leaf_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Modules that hold parameters themselves: the layers a cached step must run."""
    return [(name, m) for name, m in model.named_modules()
            if name and any(True for _ in m.parameters(recurse=False))]


def _wavenet_class(ns):
    return student(ns, "TinyWaveNet")


def _probe_fast_generate_samples(ns) -> dict[str, Tensor]:
    fast, cls, out = student(ns, "fast_generate"), _wavenet_class(ns), {}
    for c, (channels, dilations, n, length, wseed, sseed) in enumerate(_GEN_CASES):
        model = _build_wavenet(cls, channels, dilations, wseed)
        out[f"x_{c}"] = fast(model, n, length, gen(sseed))
    return out


def _judge_fast_generate_samples(out) -> None:
    for c, (channels, dilations, n, length, wseed, sseed) in enumerate(_GEN_CASES):
        model = _build_wavenet(TinyWaveNet, channels, dilations, wseed)
        want = naive_generate(model, n, length, gen(sseed))
        got = from_np(out[f"x_{c}"])
        what = f"fast_generate on TinyWaveNet({channels}, {dilations}), n={n}, length={length}"
        check_shape(got, (n, length), what)
        if got.is_floating_point() or got.dtype == torch.bool:
            fail(f"{what} returned dtype {got.dtype}; return a LongTensor of levels.")
        wrong = (got != want).any(0).nonzero()
        if len(wrong):
            t = int(wrong[0])
            fail(f"{what}: the samples differ from naive_generate's for the same seed from "
                 f"position t = {t} on. Check the queues: before step t the input queue "
                 "holds the scaled values of t-2, t-1 (zeros before the start) and block i's "
                 "queue holds its inputs at t-dilations[i], ..., t-1 (use it, then push the "
                 "new input); and draw x_t with ONE torch.multinomial(torch.softmax(logits, "
                 "dim=1), 1, generator=generator) for the batch, logits of shape [n, 2].")


def _probe_fast_generate_caches(ns) -> dict[str, Tensor]:
    fast, cls, out = student(ns, "fast_generate"), _wavenet_class(ns), {}
    for c, (channels, dilations, n, length, wseed, sseed) in enumerate(_GEN_CASES[:2]):
        model = _build_wavenet(cls, channels, dilations, wseed)
        layers = _leaf_layers(model)
        calls = torch.zeros(len(layers), dtype=torch.long)
        longest = torch.zeros(len(layers), dtype=torch.long)
        handles = []
        for i, (_, layer) in enumerate(layers):
            def hook(_module, args, _output, i=i):
                # the new positions: the first argument (a queue goes in `past`)
                size = int(args[0].shape[-1]) if args and isinstance(args[0], Tensor) else 0
                calls[i] += 1
                longest[i] = max(int(longest[i]), size)
            handles.append(layer.register_forward_hook(hook))
        try:
            fast(model, n, length, gen(sseed))
        finally:
            for handle in handles:
                handle.remove()
        out[f"calls_{c}"], out[f"longest_{c}"] = calls, longest
    return out


def _judge_fast_generate_caches(out) -> None:
    for c, (channels, dilations, n, length, wseed, _) in enumerate(_GEN_CASES[:2]):
        names = [name for name, _ in _leaf_layers(TinyWaveNet(channels, dilations))]
        calls, longest = from_np(out[f"calls_{c}"]), from_np(out[f"longest_{c}"])
        check_shape(calls, (len(names),), "the call counts (one per layer)")
        what = f"fast_generate on TinyWaveNet({channels}, {dilations}), length={length}"
        for name, k, size in zip(names, calls.tolist(), longest.tolist()):
            if k == 0:
                fail(f"{what}: the layer {name} was never called. Run every layer of the "
                     "model (its modules, not a copy of their weights) once per step.")
            if size != 1:
                fail(f"{what}: the layer {name} was given an input of length {size}; a "
                     "cached step runs each layer on the ONE new position (a length-1 "
                     "input) with its queue as `past`, never on the whole sequence.")
            if k != length:
                fail(f"{what}: the layer {name} was called {k} times for {length} "
                     "positions; cached generation runs each layer once per position.")


__all__ = ["MADE", "TinyWaveNet", "naive_generate", "fast_generate"]


# =============================================================================================
# The assignment as data: exercise, points, the parts (one per hidden test cell) that grade it
# =============================================================================================

TABLE = Assignment("hw2_masked_models", (
    Exercise("made_masks", 4, (
        Check("made_masks", "test_made_masks", 2, _probe_made_masks, _judge_made_masks, (False,)),
        Check("made_masks", "test_made_masks_2", 2, _probe_made_masks, _judge_made_masks, (True,)),
    )),
    Exercise("MaskedLinear", 2, (
        Check("MaskedLinear", "test_MaskedLinear", 1, _probe_masked_linear_forward,
              _judge_masked_linear_forward),
        Check("MaskedLinear", "test_MaskedLinear_2", 1, _probe_masked_linear_keeps_weight,
              _judge_masked_linear_keeps_weight),
    )),
    Exercise("MADE", 4, (
        Check("MADE", "test_MADE", 2, _probe_made_logits, _judge_made_logits,
              uses=("made_masks", "MaskedLinear")),
        Check("MADE", "test_MADE_2", 1, _probe_made_causal, _judge_made_causal,
              uses=("made_masks", "MaskedLinear")),
        Check("MADE", "test_MADE_3", 1, _probe_made_log_prob, _judge_made_log_prob,
              uses=("made_masks", "MaskedLinear")),
    )),
    Exercise("CausalConv1d", 3, (
        Check("CausalConv1d", "test_CausalConv1d", 2, _probe_conv, _judge_conv, (True,)),
        Check("CausalConv1d", "test_CausalConv1d_2", 1, _probe_conv, _judge_conv, (False,)),
    )),
    Exercise("wavenet_receptive_field", 2, (
        Check("wavenet_receptive_field", "test_wavenet_receptive_field", 2, _probe_receptive_field,
              _judge_receptive_field),
    )),
    Exercise("GatedResidualBlock", 3, (
        Check("GatedResidualBlock", "test_GatedResidualBlock", 2, _probe_block, _judge_block,
              ("residual",), uses=("CausalConv1d",)),
        Check("GatedResidualBlock", "test_GatedResidualBlock_2", 1, _probe_block, _judge_block,
              ("skip",), uses=("CausalConv1d",)),
    )),
    Exercise("fast_generate", 4, (
        Check("fast_generate", "test_fast_generate", 2, _probe_fast_generate_samples,
              _judge_fast_generate_samples, uses=("CausalConv1d", "GatedResidualBlock")),
        Check("fast_generate", "test_fast_generate_2", 2, _probe_fast_generate_caches,
              _judge_fast_generate_caches, uses=("CausalConv1d", "GatedResidualBlock")),
    )),
))
