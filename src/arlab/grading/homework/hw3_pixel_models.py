"""hw3_pixel_models (walkthrough 07–10): the graded parts of PixelCNN, the gated PixelCNN and
PixelSNAIL's attention, and the assignment's ``TABLE`` (exercise, points, parts). The
references (``receptive_field_map``, ``train_pixelcnn``) and the twin of the notebook's given
stack (``GatedStack``) are in :mod:`arlab.grading.references`.

Every part draws its inputs and weights from fixed seeds; ``probe`` runs the student's code
and returns arrays, ``judge`` recomputes what is expected from the same seeds. The gated layer
is judged by behaviour only (what a stack of it depends on), since the contract leaves its
internal layout free; the attention layer's layout is fixed, so weights are copied.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from arlab.data import shapes
from arlab.grading.checks import check_close, check_shape, fail
from arlab.grading.parts import Assignment, Check, Exercise, student
from arlab.grading.probes import (attr, draw, from_np, gen, judge_masked_grad, judge_weight_kept,
                                  px, randomise, returned, set_param)
from arlab.grading.references import GatedStack, TinyPixelCNN, receptive_field_map, train_pixelcnn
from arlab.models.gated_pixelcnn import GatedPixelCNN
from arlab.models.pixelcnn import MaskedConv2d, PixelCNN, pixelcnn_mask
from arlab.models.pixelsnail import CausalSelfAttention, causal_attention_mask
from arlab.receptive import Dependence, blind_spot, dependence, earlier_pixels

# =============================================================================================
# pixelcnn_mask (4 points): the taps off the centre (2), the centre tap (2)
# =============================================================================================

_MASK_CASES = [  # kernel_size, mask_type, in_channels, out_channels, color_groups
    (1, "A", 1, 1, 1), (1, "B", 2, 3, 1), (3, "A", 1, 1, 1), (3, "B", 1, 1, 1),
    (3, "A", 2, 4, 1), (5, "A", 3, 2, 1), (5, "B", 1, 1, 1), (7, "A", 1, 2, 1), (7, "B", 2, 1, 1),
    (3, "A", 3, 3, 3), (3, "B", 3, 3, 3), (5, "A", 3, 6, 3), (5, "B", 6, 3, 3),
    (1, "A", 6, 9, 3), (3, "B", 9, 6, 3), (3, "A", 4, 2, 2), (1, "B", 2, 4, 2),
]


def _mask_call(case) -> str:
    k, t, cin, cout, groups = case
    return (f"pixelcnn_mask({k}, {t!r}, {cin}, {cout}"
            + (f", color_groups={groups})" if groups != 1 else ")"))


def _probe_masks(ns) -> dict[str, Tensor]:
    fn, out = student(ns, "pixelcnn_mask"), {}
    for c, case in enumerate(_MASK_CASES):
        k, t, cin, cout, groups = case
        # the default colour groups as the visible tests use them: not passed at all
        extra = {} if groups == 1 else {"color_groups": groups}
        mask = returned(fn(k, t, cin, cout, **extra), _mask_call(case))
        check_shape(mask, (cout, cin, k, k), _mask_call(case))
        out[f"mask_{c}"] = mask.detach().double()
    return out


def _judge_off_centre(out) -> None:
    for c, case in enumerate(_MASK_CASES):
        k, t, cin, cout, groups = case
        got, want = from_np(out[f"mask_{c}"]).clone(), pixelcnn_mask(k, t, cin, cout, groups)
        check_shape(got, tuple(want.shape), _mask_call(case))
        r = k // 2
        got[:, :, r, r] = want[:, :, r, r]  # the centre tap is the other part's
        wrong = (got != want.double()).nonzero()
        if len(wrong):
            o, i, a, b = wrong[0].tolist()
            where = ("above the centre row" if a < r else "below the centre row" if a > r
                     else "left of the centre" if b < r else "right of the centre")
            should = ("1: taps above the centre row and left of the centre in its row read "
                      "earlier pixels" if want[o, i, a, b] == 1 else
                      "0: that tap reads a later pixel")
            fail(f"{_mask_call(case)}[{o}, {i}, {a}, {b}] is {got[o, i, a, b].item():g}; "
                 f"the tap ({a}, {b}) lies {where} (centre ({r}, {r})), so it must be "
                 f"{should}. Off the centre the mask is the same for every channel pair.")


def _judge_centre(out) -> None:
    for c, case in enumerate(_MASK_CASES):
        k, t, cin, cout, groups = case
        want = pixelcnn_mask(k, t, cin, cout, groups)
        got = from_np(out[f"mask_{c}"])
        check_shape(got, tuple(want.shape), _mask_call(case))
        r = k // 2
        wrong = (got[:, :, r, r] != want[:, :, r, r].double()).nonzero()
        if len(wrong):
            o, i = wrong[0].tolist()
            og, ig = o // (cout // groups), i // (cin // groups)
            rule = "<" if t == "A" else "<="
            should = "see" if want[o, i, r, r] == 1 else "not see"
            fail(f"{_mask_call(case)}[{o}, {i}, {r}, {r}] (the centre tap) is "
                 f"{got[o, i, r, r].item():g}; output channel {o} (group {og}) must "
                 f"{should} input channel {i} (group {ig}) at the centre: type {t!r} "
                 f"connects input group {rule} output group"
                 + (" (with one group, type 'A' hides the centre and 'B' keeps it)."
                    if groups == 1 else ". Channel c is in group c // (channels // "
                    "color_groups)."))


# =============================================================================================
# MaskedConv2d (2 points): output and gradients (1), weight left alone (1)
# =============================================================================================

_CONV_CASES = [  # in, out, kernel, type, groups, H, W
    (1, 3, 3, "A", 1, 5, 6), (2, 4, 5, "B", 1, 6, 5), (3, 6, 3, "A", 3, 4, 4),
    (6, 3, 1, "B", 3, 3, 5),
]


def _conv_case(c: int, case):
    cin, cout, k, _, _, h, w = case
    g = gen(200 + c)
    return (draw((cout, cin, k, k), g, 0.5), draw((cout,), g, 0.5),
            draw((2, cin, h, w), g, 1.0), draw((2, cout, h, w), g, 1.0))


def _conv_call(case) -> str:
    cin, cout, k, t, groups, _, _ = case
    return (f"MaskedConv2d({cin}, {cout}, {k}, {t!r}"
            + (f", color_groups={groups})" if groups != 1 else ")"))


def _new_masked_conv(ns, case, weight: Tensor, bias: Tensor):
    cin, cout, k, t, groups, _, _ = case
    extra = {} if groups == 1 else {"color_groups": groups}  # the default when it is one
    layer = student(ns, "MaskedConv2d")(cin, cout, k, t, **extra)
    if not isinstance(layer, nn.Conv2d):
        fail("MaskedConv2d must subclass nn.Conv2d (class MaskedConv2d(nn.Conv2d)), so that it "
             "keeps nn.Conv2d's `weight` [out, in, k, k] and `bias` [out].")
    set_param(layer.weight, weight, f"{_conv_call(case)}.weight")
    set_param(layer.bias, bias, f"{_conv_call(case)}.bias")
    return layer


def _reference_conv(case, weight, bias, x, gout):
    cin, cout, k, t, groups, _, _ = case
    ref = MaskedConv2d(cin, cout, k, t, groups)
    with torch.no_grad():
        ref.weight.copy_(weight)
        ref.bias.copy_(bias)
    x = x.clone().requires_grad_(True)
    y = ref(x)
    (y * gout).sum().backward()
    return y, x.grad, ref.weight.grad, ref.bias.grad, ref.mask


def _probe_masked_conv_output(ns) -> dict[str, Tensor]:
    out = {}
    for c, case in enumerate(_CONV_CASES):
        weight, bias, x, gout = _conv_case(c, case)
        layer = _new_masked_conv(ns, case, weight, bias)
        x = x.clone().requires_grad_(True)
        y = layer(x)
        check_shape(y, tuple(gout.shape), f"{_conv_call(case)}(x) for x of shape "
                                          f"{tuple(x.shape)}")
        (y * gout).sum().backward()
        if layer.weight.grad is None:
            fail(f"{_conv_call(case)}: no gradient reached `weight`; compute the output "
                 "from self.weight (times the mask) so that training can update it.")
        out.update({f"y_{c}": y, f"gx_{c}": x.grad, f"gw_{c}": layer.weight.grad,
                    f"gb_{c}": layer.bias.grad})
    return out


def _judge_masked_conv_output(out) -> None:
    for c, case in enumerate(_CONV_CASES):
        weight, bias, x, gout = _conv_case(c, case)
        y, gx, gw, gb, mask = _reference_conv(case, weight, bias, x, gout)
        what = _conv_call(case)
        check_close(from_np(out[f"y_{c}"]), y, f"{what}: the output", atol=1e-5,
                    hint="The output is F.conv2d(x, weight * mask, bias, padding=k // 2) "
                         "with the mask of pixelcnn_mask(k, mask_type, in, out, "
                         "color_groups).")
        check_close(from_np(out[f"gx_{c}"]), gx, f"{what}: the gradient with respect to x",
                    atol=1e-5, hint="Masked taps must carry no gradient to the input.")
        keep = mask.bool()
        got_w = from_np(out[f"gw_{c}"])
        check_shape(got_w, tuple(gw.shape), f"{what}: weight.grad")
        check_close(got_w[keep], gw[keep], f"{what}: weight.grad on the unmasked taps",
                    atol=1e-5, hint="An unmasked weight gets the gradient of nn.Conv2d.")
        check_close(from_np(out[f"gb_{c}"]), gb, f"{what}: bias.grad", atol=1e-5)


def _probe_masked_conv_keeps_weight(ns) -> dict[str, Tensor]:
    out = {}
    for c, case in enumerate(_CONV_CASES):
        weight, bias, x, _ = _conv_case(c, case)
        layer = _new_masked_conv(ns, case, weight, bias)
        y = layer(x)  # any shape: a wrong output shape is the other part's to judge
        (y * draw(y.shape, gen(250 + c), 1.0)).sum().backward()
        layer(x)
        grad = layer.weight.grad
        out[f"weight_{c}"] = layer.weight.detach().clone()
        out[f"gw_{c}"] = grad if grad is not None else torch.zeros_like(weight)
    return out


def _judge_masked_conv_keeps_weight(out) -> None:
    for c, case in enumerate(_CONV_CASES):
        weight, bias, _, _ = _conv_case(c, case)
        cin, cout, k, t, groups, _, _ = case
        what = _conv_call(case)
        got = from_np(out[f"weight_{c}"])
        check_shape(got, tuple(weight.shape), f"{what}.weight")
        judge_weight_kept(got, weight, what, "a forward pass",
                          "(F.conv2d(x, self.weight * self.mask, ...)); a weight edited in "
                          "place still gets gradient and comes back after an optimiser "
                          "step.")
        judge_masked_grad(from_np(out[f"gw_{c}"]), pixelcnn_mask(k, t, cin, cout, groups),
                          what, "F.conv2d(x, self.weight * self.mask, ...)")


# =============================================================================================
# receptive_field_map (3 points): one input channel (2), several input channels (1)
# =============================================================================================


class _LaterChannels(nn.Module):
    """``[N, 3, H, W] -> [N, 2, H, W]``: tanh of a 3x3 convolution of channels 1 and 2 only
    (channel 0 is ignored)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return torch.tanh(self.conv(x[:, 1:]))


def _active_relus(model: nn.Module, seed: int) -> nn.Module:
    """Small weights and biases of 2: every ReLU of a PixelCNN stays open for inputs of
    magnitude up to ~9, so what an output depends on does not change with the input drawn
    (the student's random inputs and the grader's then find the same map)."""
    g = gen(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.fill_(2.0)
            else:
                size = torch.rand(p.shape, generator=g) * 0.008 + 0.002
                sign = torch.randint(0, 2, p.shape, generator=g) * 2 - 1
                p.copy_(size * sign)
    return model


def _field_model(name: str) -> tuple[nn.Module, tuple[int, int, int], str]:
    """A grader model (built from seeds, identical in probe and judge), its image shape and
    a description for messages."""
    if name == "pixelcnn":
        with torch.random.fork_rng():
            model = PixelCNN((1, 8, 8), 2, channels=8, layers=2, kernel_size=5)
        return (_active_relus(model, 301), (1, 8, 8),
                "a grey PixelCNN (8x8 image, 5x5 type-A convolution, 2 residual blocks)")
    if name == "gated":
        with torch.random.fork_rng():
            model = GatedPixelCNN((1, 7, 7), 2, channels=6, layers=2, kernel_size=3)
        randomise(model, gen(302), vector_std=0.1)
        with torch.no_grad():  # h is a sum of bounded gates: this keeps the final ReLU open
            model.layers[-1].h_out.bias.fill_(50.0)
        return model, (1, 7, 7), "a gated PixelCNN (7x7 image, kernel 3, 2 layers)"
    if name in ("conv", "conv_wide"):
        with torch.random.fork_rng():
            model = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.Tanh(),
                                  nn.Conv2d(3, 1, 3, padding=1))
        randomise(model, gen(303), vector_std=0.1)
        h, w = (7, 7) if name == "conv" else (5, 8)
        return (model, (1, h, w), "an ordinary (not causal) stack of two 3x3 convolutions on "
                f"a {h}x{w} image")
    if name == "colour":
        with torch.random.fork_rng():
            model = PixelCNN((3, 6, 6), 4, channels=6, layers=1, kernel_size=3)
        return (_active_relus(model, 304), (3, 6, 6),
                "a colour PixelCNN (3 channels generated R, G, B in turn, 6x6 image)")
    if name == "later":
        with torch.random.fork_rng():
            model = _LaterChannels()
        randomise(model, gen(305), vector_std=0.1)
        return (model, (3, 6, 6),
                "a 3-channel model whose outputs read input channels 1 and 2 only")
    raise KeyError(name)


_FIELD_CASES = {  # part -> [(model name, pixels)]
    "grey": [("pixelcnn", [(4, 4), (0, 0), (2, 7), (7, 7), (5, 0)]),
             ("gated", [(3, 3), (0, 4), (6, 6), (1, 0)]),
             ("conv", [(3, 3), (0, 6)]), ("conv_wide", [(1, 6), (4, 0)])],
    "channels": [("colour", [(3, 3), (0, 2), (5, 5)]),
                 ("later", [(2, 3), (5, 0)])],
}


def _probe_fields(ns, part: str) -> dict[str, Tensor]:
    fn, out = student(ns, "receptive_field_map"), {}
    for name, pixels in _FIELD_CASES[part]:
        model, shape, _ = _field_model(name)
        for k, pixel in enumerate(pixels):
            got = returned(fn(model, shape, pixel),
                          f"receptive_field_map(model, {shape}, {pixel})")
            check_shape(got, shape[1:], f"receptive_field_map(model, {shape}, {pixel})")
            if got.dtype != torch.bool:
                fail(f"receptive_field_map(model, {shape}, {pixel}) has dtype {got.dtype}; "
                     "return a BoolTensor (True = the outputs at the pixel depend on it), "
                     "e.g. with `grad != 0`.")
            out[f"{name}_{k}"] = got
    return out


def _judge_fields(out, part: str) -> None:
    for name, pixels in _FIELD_CASES[part]:
        model, shape, description = _field_model(name)
        for k, pixel in enumerate(pixels):
            want = receptive_field_map(model, shape, pixel)
            got = from_np(out[f"{name}_{k}"]).bool()
            check_shape(got, tuple(want.shape), f"the map for {description}")
            wrong = (got != want).nonzero()
            if not len(wrong):
                continue
            a, b = wrong[0].tolist()
            head = (f"receptive_field_map on {description}, outputs at pixel {pixel}: "
                    f"{len(wrong)} wrong pixel(s); e.g. input pixel ({a}, {b}) is marked ")
            if want[a, b]:
                fail(head + "unseen, but the outputs at that pixel depend on it. A pixel is "
                     "seen when the float64 gradient of ANY output at the pixel (every "
                     "leading index of the model's output) with respect to ANY input channel "
                     "of it is non-zero for at least one of a few random inputs.")
            fail(head + "seen, but no output at the pixel depends on it: take the gradient of "
                 f"the outputs at {pixel} only (out[..., i, j]), compare it with 0 exactly, "
                 "and do not add anything to the map that the gradient does not show.")


# =============================================================================================
# GatedPixelCNNLayer (5 points), judged by what a stack of it depends on:
# causal (2), no blind spot and full coverage (2), the reach per layer (1)
# =============================================================================================

_STACK_CHANNELS = 4
_STACK_USES = ("pixelcnn_mask", "MaskedConv2d")   # the parts run the course's versions
_STACKS = [  # kernel_size, layers, H, W (not all square: rows and columns must not swap)
    (3, 1, 7, 7), (3, 2, 8, 8), (3, 3, 9, 9), (5, 1, 7, 7), (5, 2, 9, 9), (3, 4, 5, 5),
    (5, 2, 5, 5), (3, 2, 5, 8), (3, 2, 8, 5),
]
_COVERING = [(3, 4, 5, 5), (5, 2, 5, 5)]  # stacks whose reach spans the whole image


def _stack_name(k: int, layers: int, h: int, w: int) -> str:
    return (f"a stack of {layers} GatedPixelCNNLayer({_STACK_CHANNELS}, {k}, first) (first=True "
            f"for the first layer only) on a {h}x{w} image")


def _probe_stacks(ns) -> dict[str, Tensor]:
    cls, out = student(ns, "GatedPixelCNNLayer"), {}
    for s, (k, layers, h, w) in enumerate(_STACKS):
        stack = GatedStack(cls, 1, _STACK_CHANNELS, k, layers).eval()
        for layer in stack.layers:
            if not isinstance(layer, nn.Module):
                fail("GatedPixelCNNLayer(channels, kernel_size, first) must be an nn.Module.")
        randomise(stack, gen(400 + s), vector_std=0.1)
        inputs = torch.rand((3, 1, h, w), generator=gen(500 + s), dtype=torch.float64)

        def call(mod, x):
            y = mod(x)
            if not isinstance(y, Tensor) or tuple(y.shape) != (x.shape[0], 1, h, w):
                fail("the stack built from your GatedPixelCNNLayer did not return [N, 1, H, W]; "
                     "forward(v, h) must return the pair (v, h), both [N, channels, H, W].")
            return y

        found = dependence(stack, inputs, call=call, in_axes=(1, 2), out_axes=(1, 2),
                           levels=None)
        out[f"seen_{s}"], out[f"how_{s}"] = found.seen, found.how()
    return out


def _stack_seen(out, s: int) -> Tensor:
    k, layers, h, w = _STACKS[s]
    seen = from_np(out[f"seen_{s}"]).bool()
    check_shape(seen, (h * w, h * w), "the dependence table")
    return seen


def _expected_field(k: int, layers: int, h: int, w: int, pixel: tuple[int, int],
                    extra_row: int) -> Tensor:
    """The earlier pixels a gated stack of this reach sees from ``pixel``: in its row the
    ``layers*(k//2)`` pixels to the left; above, rows up to ``layers*(k//2) + extra_row`` up and
    ``layers*(k//2)`` columns to each side (extra_row: 1 when the vertical stack includes its
    own row and is shifted down before it enters h, 0 when it already excludes it)."""
    reach, (i, j) = layers * (k // 2), pixel
    field = torch.zeros(h, w, dtype=torch.bool)
    field[max(0, i - reach - extra_row):i, max(0, j - reach):j + reach + 1] = True
    field[i, max(0, j - reach):j] = True
    return field & earlier_pixels(h, w, pixel)


def _judge_stack_causal(out) -> None:
    for s, (k, layers, h, w) in enumerate(_STACKS):
        seen = _stack_seen(out, s)
        later = ~torch.stack([earlier_pixels(h, w, px(p, w)).reshape(-1)
                              for p in range(h * w)])
        leak = (seen & later).nonzero().tolist()
        if leak:
            # another pixel says more than the pixel itself (which every leak may reach)
            p, q = (px(v, w) for v in min(leak, key=lambda pq: pq[0] == pq[1]))
            if p == q:
                why = ("the pixel itself. The first layer's horizontal convolution must not "
                       "see the current pixel, and the first layer adds no residual from h "
                       "(which is still the image)")
            elif p[0] == q[0]:
                why = ("a later pixel in its own row. Only the vertical stack sees pixels "
                       "to the right (it covers its own row), so it may enter the horizontal "
                       "stack only after a shift down by one row")
            else:
                why = ("a pixel in a later row. The vertical stack must look up only (rows "
                       "i-k//2..i), with zero padding at the top, never at the bottom")
            fail(f"{_stack_name(k, layers, h, w)}: the output at pixel {p} depends on input "
                 f"pixel {q}, {why}. (The grader gives every trainable parameter a random "
                 "value: a mask must be a buffer applied in forward, not zeroed weights.)")


def _judge_no_blind_spot(out) -> None:
    for s, (k, layers, h, w) in enumerate(_STACKS):
        seen = _stack_seen(out, s)
        for p in range(h * w):
            pixel = px(p, w)
            earlier = earlier_pixels(h, w, pixel)
            field = seen[p].view(h, w) & earlier
            spot = blind_spot(field, pixel).nonzero()
            if len(spot):
                a, b = spot[0].tolist()
                fail(f"{_stack_name(k, layers, h, w)}: the output at pixel {pixel} has a "
                     f"blind spot: it does not see the earlier pixel ({a}, {b}) although it "
                     f"sees pixels higher up in column {b}. The vertical stack must reach "
                     "k//2 columns to each side of every row above, and feed h at every "
                     "layer.")
            if (k, layers, h, w) in _COVERING and (earlier & ~field).any():
                a, b = (earlier & ~field).nonzero()[0].tolist()
                fail(f"{_stack_name(k, layers, h, w)}: the output at pixel {pixel} does not "
                     f"see the earlier pixel ({a}, {b}), though {layers} layers of reach "
                     f"{k // 2} should cover the whole image. h must receive the vertical "
                     "stack (the rows above) at every layer, and keep what it saw before "
                     "(a residual connection from the second layer on).")


def _judge_stack_reach(out) -> None:
    fields = {s: _stack_seen(out, s) for s in range(len(_STACKS))}

    def mismatches(extra_row: int) -> list[tuple[int, int]]:
        return [(s, p) for s, (k, layers, h, w) in enumerate(_STACKS) for p in range(h * w)
                if not torch.equal(fields[s][p].view(h, w) & earlier_pixels(h, w, px(p, w)),
                                   _expected_field(k, layers, h, w, px(p, w), extra_row))]

    # extra_row 1: the vertical stack covers its own row and is shifted down (the usual
    # layout); 0: it excludes its own row from the first layer on and needs no shift
    bad = {extra: mismatches(extra) for extra in (1, 0)}
    if not bad[1] or not bad[0]:
        return
    extra = min(bad, key=lambda e: len(bad[e]))

    def room(sp: tuple[int, int]) -> int:  # an example away from the borders reads best
        i, j = px(sp[1], _STACKS[sp[0]][3])
        return min(i, j, _STACKS[sp[0]][3] - 1 - j)

    s, p = max(bad[extra], key=room)
    k, layers, h, w = _STACKS[s]
    pixel, r, reach = px(p, w), k // 2, layers * (k // 2)
    got = fields[s][p].view(h, w) & earlier_pixels(h, w, pixel)
    want = _expected_field(k, layers, h, w, pixel, extra)
    if not torch.equal(got[pixel[0]], want[pixel[0]]):
        cols = got[pixel[0]].nonzero().flatten().tolist()
        fail(f"{_stack_name(k, layers, h, w)}: in its own row the output at pixel {pixel} "
             f"sees the columns {cols}; with {layers} layer(s) of horizontal reach k//2 = {r} "
             f"it should see exactly columns {max(0, pixel[1] - reach)}..{pixel[1] - 1}.")
    rows = got[:pixel[0]].any(1).nonzero().flatten().tolist()
    cols = got[:pixel[0]].any(0).nonzero().flatten().tolist()
    fail(f"{_stack_name(k, layers, h, w)}: above its row the output at pixel {pixel} sees "
         f"rows {rows} and columns {cols}; the vertical stack should reach k//2 = {r} more "
         f"rows up and {r} more columns to each side per layer, so here columns "
         f"{max(0, pixel[1] - reach)}..{min(w - 1, pixel[1] + reach)} of every row from "
         f"{max(0, pixel[0] - reach - 1)} (or {max(0, pixel[0] - reach)}, when the first "
         f"layer's vertical stack already excludes its own row) to {pixel[0] - 1}.")


# =============================================================================================
# causal_attention_mask (2 points): include_self=True (1), include_self=False (1)
# =============================================================================================

_ATTN_LENGTHS = [1, 2, 3, 5, 8]


def _probe_attention_mask(ns, include_self: bool) -> dict[str, Tensor]:
    fn, out = student(ns, "causal_attention_mask"), {}
    for n in _ATTN_LENGTHS:
        what = f"causal_attention_mask({n}, include_self={include_self})"
        mask = returned(fn(n, include_self), what)
        check_shape(mask, (n, n), what)
        if mask.dtype != torch.bool:
            fail(f"{what} has dtype {mask.dtype}; return a BoolTensor (True = query i may "
                 "attend to key j).")
        out[f"mask_{n}"] = mask
    return out


def _judge_attention_mask(out, include_self: bool) -> None:
    for n in _ATTN_LENGTHS:
        want = causal_attention_mask(n, include_self)
        got = from_np(out[f"mask_{n}"]).bool()
        what = f"causal_attention_mask({n}, include_self={include_self})"
        check_shape(got, (n, n), what)
        wrong = (got != want).nonzero()
        if len(wrong):
            i, j = wrong[0].tolist()
            rule = "j <= i" if include_self else "j < i"
            fail(f"{what}[{i}, {j}] is {bool(got[i, j])}; row i is the query and column j the "
                 f"key, and query {i} may attend to key {j} exactly when {rule}.")


# =============================================================================================
# CausalSelfAttention (4 points): include_self=True (2), include_self=False (1), causality (1)
# =============================================================================================

_ATTN_CASES = [(8, 2, 6), (12, 3, 5), (4, 1, 4), (6, 6, 3)]  # dim, heads, length
_PARAMS = ("qkv.weight", "qkv.bias", "proj.weight", "proj.bias")


def _attention_case(c: int, case, include_self: bool):
    dim, _, length = case
    g = gen(600 + 10 * c + include_self)
    weights = {"qkv.weight": draw((3 * dim, dim), g, 0.6), "qkv.bias": draw((3 * dim,), g, 0.3),
               "proj.weight": draw((dim, dim), g, 0.5), "proj.bias": draw((dim,), g, 0.3)}
    return weights, draw((2, length, dim), g, 1.0), draw((2, length, dim), g, 1.0)


def _attention_call(case, include_self: bool) -> str:
    dim, heads, _ = case
    return f"CausalSelfAttention({dim}, {heads}, include_self={include_self})"


def _load_attention(layer, weights: dict[str, Tensor], what: str) -> None:
    for name, value in weights.items():
        owner, pname = name.split(".")
        sub = attr(layer, owner, what, f"the contract names it `{owner}`, an nn.Linear "
                    + ("dim -> 3·dim." if owner == "qkv" else "dim -> dim."))
        set_param(attr(sub, pname, f"{what}.{owner}", "it should be an nn.Linear."), value,
             f"{what}.{name}")


def _probe_attention(ns, include_self: bool) -> dict[str, Tensor]:
    cls, out = student(ns, "CausalSelfAttention"), {}
    for c, case in enumerate(_ATTN_CASES):
        dim, heads, length = case
        weights, x, gout = _attention_case(c, case, include_self)
        what = _attention_call(case, include_self)
        layer = cls(dim, heads) if include_self else cls(dim, heads, include_self=False)
        _load_attention(layer, weights, what)
        x = x.clone().requires_grad_(True)
        y = layer(x)
        check_shape(y, tuple(x.shape), f"{what}(x) for x of shape {tuple(x.shape)}")
        (y * gout).sum().backward()
        out[f"y_{c}"], out[f"gx_{c}"] = y, x.grad
        for name in _PARAMS:
            grad = layer.get_parameter(name).grad
            out[f"g_{name}_{c}"] = grad if grad is not None else torch.zeros_like(weights[name])
    return out


def _judge_attention(out, include_self: bool) -> None:
    hint = ("q, k, v = qkv(x).chunk(3, dim=-1), each split into heads of dim/heads contiguous "
            "features; weights softmax(q·k / sqrt(dim/heads)) over the keys that "
            f"causal_attention_mask(L, {include_self}) allows; heads joined back, then proj.")
    for c, case in enumerate(_ATTN_CASES):
        weights, x, gout = _attention_case(c, case, include_self)
        what = _attention_call(case, include_self)
        ref = CausalSelfAttention(case[0], case[1], include_self)
        with torch.no_grad():
            for name, value in weights.items():
                ref.get_parameter(name).copy_(value)
        x = x.clone().requires_grad_(True)
        y = ref(x)
        (y * gout).sum().backward()
        got = from_np(out[f"y_{c}"])
        if not include_self:
            check_shape(got, tuple(y.shape), f"{what}(x)")
            first = got[:, 0]
            if torch.isfinite(first).all() and not torch.allclose(
                    first.double(), weights["proj.bias"].double().expand_as(first), atol=1e-5):
                fail(f"{what}: the output at position 0 is not proj(0) = proj.bias. Query 0 has "
                     "no allowed key (j < 0 is empty), so its attention result must be a zero "
                     "vector before proj; a position must never attend to itself here.")
            hint += (" Query 0 has no allowed key: give it a zero vector (no NaN from a "
                     "softmax over nothing, in the output or the gradients).")
        check_close(got, y, f"{what}: the output", atol=1e-5, hint=hint)
        check_close(from_np(out[f"gx_{c}"]), x.grad, f"{what}: the gradient with respect to x",
                    atol=1e-5, hint=hint)
        for name in _PARAMS:
            check_close(from_np(out[f"g_{name}_{c}"]), ref.get_parameter(name).grad,
                        f"{what}: the gradient of {name}", atol=1e-5, hint=hint)


_CAUSAL_ATTN = [(8, 2, 7, True), (8, 2, 7, False), (6, 3, 5, False)]  # dim, heads, L, self


def _probe_attention_causal(ns) -> dict[str, Tensor]:
    cls, out = student(ns, "CausalSelfAttention"), {}
    for c, (dim, heads, length, include_self) in enumerate(_CAUSAL_ATTN):
        layer = cls(dim, heads) if include_self else cls(dim, heads, include_self=False)
        g = gen(700 + c)
        randomise(layer, g, vector_std=0.1)
        what = _attention_call((dim, heads, length), include_self)

        def call(mod, x, what=what):
            y = mod(x)
            check_shape(y, tuple(x.shape), f"{what}(x)")
            return y

        found = dependence(layer, torch.randn(3, length, dim, generator=g,
                                              dtype=torch.float64),
                           call=call, in_axes=(0,), out_axes=(0,), levels=None)
        out[f"seen_{c}"], out[f"how_{c}"] = found.seen, found.how()
    return out


def _judge_attention_causal(out) -> None:
    for c, (dim, heads, length, include_self) in enumerate(_CAUSAL_ATTN):
        seen = from_np(out[f"seen_{c}"]).bool()
        what = _attention_call((dim, heads, length), include_self)
        check_shape(seen, (length, length), "the dependence table")
        leak = (seen & torch.ones(length, length, dtype=torch.bool).triu(1)).nonzero()
        if len(leak):
            p, q = leak[0].tolist()
            fail(f"{what}: output {p} changes when position {q} > {p} changes; a query may "
                 "only attend to keys at or before its position (mask the scores of later "
                 "keys before the softmax, not after). (Decided by "
                 f"{Dependence.described(out[f'how_{c}'])}.)")
        # with one allowed key the weight is 1 whatever the query: output 0 (output 1
        # without self) is that key's value; without self, output 0 is proj(0)
        want = torch.ones(length, length, dtype=torch.bool).tril(0 if include_self else -1)
        if not include_self:
            want[2:] |= torch.eye(length, dtype=torch.bool)[2:]  # the query
        missing = (want & ~seen).nonzero()
        if len(missing):
            p, q = missing[0].tolist()
            fail(f"{what}: output {p} does not depend on position {q}; query {p} should "
                 "attend to every allowed key, and its query is computed from position "
                 f"{p} itself.")


# =============================================================================================
# train_pixelcnn (3 points): causal, then bits/dim on held-back data below a threshold
# =============================================================================================

_TRAIN = dict(n_train=600, n_test=200, size=12, seed=31)     # what the student's code trains on
_HELD = dict(n_train=1, n_test=256, size=12, seed=32)        # what the grader keeps back
_BITS_THRESHOLD = 0.55  # reference (smoke) 0.29-0.32 bits/dim; untrained ~1.0; marginals 0.83
_CAUSAL_IMAGES = 3


def _train_data() -> tuple[Tensor, Tensor]:
    data = shapes(**_TRAIN)
    return data.train.float(), data.test.float()


def _held_data() -> Tensor:
    return shapes(**_HELD).test.float()


def _dtype(model: nn.Module) -> torch.dtype:
    """The dtype of the model's first floating parameter (float32 when it has none)."""
    return next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)


def held_out_bits_per_dim(logits: Tensor, x: Tensor) -> float:
    """Bernoulli NLL of binary ``x`` under ``logits`` (both ``[M, 1, H, W]``), bits/dim."""
    nats = F.binary_cross_entropy_with_logits(logits.double(), x.double(), reduction="mean")
    return float(nats) / math.log(2)


def _probe_train_pixel_cnn(ns) -> dict[str, Tensor]:
    train, test = _train_data()
    model = student(ns, "train_pixelcnn")(train.clone(), test.clone())
    if not isinstance(model, nn.Module):
        fail(f"train_pixelcnn should return the trained nn.Module, got "
             f"{type(model).__name__}.")
    model = model.cpu().eval()
    held = _held_data()
    _, _, h, w = held.shape
    with torch.no_grad():
        logits = model(held)
        check_shape(logits, tuple(held.shape), "the trained model's forward(x) for x "
                    f"of shape {tuple(held.shape)} (one Bernoulli logit per pixel)")
    # random images, and held-back real ones: a model that behaves on noise but reads
    # the pixel it predicts on images like the data must not pass
    noise = torch.randint(0, 2, (_CAUSAL_IMAGES, 1, h, w), generator=gen(800)).double()
    out = {"logits": logits.float()}
    for kind, inputs in (("noise", noise), ("real", held[:_CAUSAL_IMAGES].double())):
        found = dependence(model, inputs, call=lambda mod, x: mod(x.to(_dtype(mod))),
                           in_axes=(1, 2), out_axes=(-2, -1), levels=2)
        out[f"seen_{kind}"], out[f"how_{kind}"] = found.seen, found.how()
    return out


def _judge_train_pixel_cnn(out) -> None:
    held = _held_data()
    _, _, h, w = held.shape
    later = torch.ones(h * w, h * w, dtype=torch.bool).triu()  # [p, q]: q >= p in raster order
    for kind, inputs in (("noise", "random binary images"),
                         ("real", "held-back images like the training data")):
        seen = from_np(out[f"seen_{kind}"]).bool()
        check_shape(seen, (h * w, h * w), "the dependence table")
        leak = (seen & later).nonzero()
        if len(leak):
            p, q = (px(v, w) for v in leak[0].tolist())
            what = "itself" if p == q else f"pixel {q}, which comes later in raster order"
            fail(f"the trained model is not autoregressive on {inputs}: its logit at pixel "
                 f"{p} changes when the input at {what} changes, so its bits/dim mean "
                 "nothing (0 points). The first masked convolution must be type 'A' (no "
                 "centre tap); later ones type 'B'. (Decided by "
                 f"{Dependence.described(out[f'how_{kind}'])}.)")
    logits = from_np(out["logits"])
    check_shape(logits, tuple(held.shape), "the logits on the held-back images")
    if not torch.isfinite(logits).all():
        fail("the trained model gives non-finite logits on the held-back images.")
    bits = held_out_bits_per_dim(logits, held)
    if bits > _BITS_THRESHOLD:
        fail(f"the trained model reaches {bits:.3f} bits/dim on the grader's held-back "
             f"shapes; it must reach {_BITS_THRESHOLD} or less (an untrained model gives "
             "about 1.0, one probability per pixel about 0.83). Train longer or with a "
             "larger learning rate (Adam, lr 5e-3: a few hundred steps of 32 images "
             "suffice), and return the model itself.")


__all__ = ["receptive_field_map", "train_pixelcnn", "TinyPixelCNN", "GatedStack",
           "held_out_bits_per_dim"]


# =============================================================================================
# The assignment as data: exercise, points, the parts (one per hidden test cell) that grade it
# =============================================================================================

TABLE = Assignment("hw3_pixel_models", (
    Exercise("pixelcnn_mask", 4, (
        Check("pixelcnn_mask", "test_pixelcnn_mask", 2, _probe_masks, _judge_off_centre),
        Check("pixelcnn_mask", "test_pixelcnn_mask_2", 2, _probe_masks, _judge_centre),
    )),
    Exercise("MaskedConv2d", 2, (
        Check("MaskedConv2d", "test_MaskedConv2d", 1, _probe_masked_conv_output,
              _judge_masked_conv_output, uses=("pixelcnn_mask",)),
        Check("MaskedConv2d", "test_MaskedConv2d_2", 1, _probe_masked_conv_keeps_weight,
              _judge_masked_conv_keeps_weight, uses=("pixelcnn_mask",)),
    )),
    Exercise("receptive_field_map", 3, (
        Check("receptive_field_map", "test_receptive_field_map", 2, _probe_fields, _judge_fields,
              ("grey",)),
        Check("receptive_field_map", "test_receptive_field_map_2", 1, _probe_fields, _judge_fields,
              ("channels",)),
    )),
    Exercise("GatedPixelCNNLayer", 5, (
        Check("GatedPixelCNNLayer", "test_GatedPixelCNNLayer", 2, _probe_stacks,
              _judge_stack_causal, uses=_STACK_USES),
        Check("GatedPixelCNNLayer", "test_GatedPixelCNNLayer_2", 2, _probe_stacks,
              _judge_no_blind_spot, uses=_STACK_USES),
        Check("GatedPixelCNNLayer", "test_GatedPixelCNNLayer_3", 1, _probe_stacks,
              _judge_stack_reach, uses=_STACK_USES),
    )),
    Exercise("causal_attention_mask", 2, (
        Check("causal_attention_mask", "test_causal_attention_mask", 1, _probe_attention_mask,
              _judge_attention_mask, (True,)),
        Check("causal_attention_mask", "test_causal_attention_mask_2", 1, _probe_attention_mask,
              _judge_attention_mask, (False,)),
    )),
    Exercise("CausalSelfAttention", 4, (
        Check("CausalSelfAttention", "test_CausalSelfAttention", 2, _probe_attention,
              _judge_attention, (True,), uses=("causal_attention_mask",)),
        Check("CausalSelfAttention", "test_CausalSelfAttention_2", 1, _probe_attention,
              _judge_attention, (False,), uses=("causal_attention_mask",)),
        Check("CausalSelfAttention", "test_CausalSelfAttention_3", 1, _probe_attention_causal,
              _judge_attention_causal, uses=("causal_attention_mask",)),
    )),
    Exercise("train_pixelcnn", 3, (
        Check("train_pixelcnn", "test_train_pixelcnn", 3, _probe_train_pixel_cnn,
              _judge_train_pixel_cnn,
              uses=("pixelcnn_mask", "MaskedConv2d", "receptive_field_map", "GatedPixelCNNLayer",
                    "causal_attention_mask", "CausalSelfAttention")),
    )),
))
