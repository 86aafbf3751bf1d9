"""What an output depends on: the one dependence engine, and receptive fields, causality
violations and blind spots built on it.

:func:`dependence` decides, for any function or model, which input positions each output
position depends on. Two tests, and a dependence seen by either counts:

- *gradients*, in float64 where the model runs in float64: a position is seen when the
  gradient of a random projection of the output is non-zero (compared with 0: masked weights
  and absent paths give an exact zero in any precision, whatever the CPU's kernels);
- *perturbation*: each input position is changed in turn (to another level for discrete
  inputs), and an output counts as changed only when it moves by more than the rounding of its
  dtype allows (``ROUNDING_ULPS`` units in the last place of the largest output). This catches
  what gradients cannot see (``detach``, integer lookups, branches on the input's values),
  and a float32 model's outputs that move by rounding alone are not counted.

No decision compares recomputed floats bit for bit: the same float32 product differs in the
last bit between CPUs, thread counts and positions in a batch.
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

ROUNDING_ULPS = 64  # output moves up to this many units in the last place count as rounding
_CHUNK = 512        # inputs per forward pass


@dataclass(frozen=True)
class Dependence:
    """``seen[p, q]``: output position ``p`` depends on input position ``q``; and how that
    was decided: the output's dtype, whether gradients were taken, and the threshold below
    which an output change counted as rounding (None: no perturbation test)."""

    seen: Tensor
    dtype_bits: int = 64
    graded: bool = True
    tol: float | None = None

    @property
    def method(self) -> str:
        """How it was decided, in words (for feedback)."""
        parts = [f"float{self.dtype_bits} gradients"] if self.graded else []
        if self.tol is not None:
            parts.append(f"float{self.dtype_bits} perturbation (output changes up to "
                         f"{self.tol:.1e} counted as rounding)")
        return " and ".join(parts) or "nothing (the model could not be probed)"

    def how(self) -> Tensor:
        """The decision's method as numbers (``[dtype bits, graded, tol or -1]``), to travel
        with ``seen`` out of a sandbox; :meth:`described` turns it back into words."""
        return torch.tensor([self.dtype_bits, float(self.graded),
                             -1.0 if self.tol is None else self.tol], dtype=torch.float64)

    @staticmethod
    def described(how) -> str:
        bits, graded, tol = (float(v) for v in torch.as_tensor(how).reshape(-1)[:3])
        return Dependence(torch.zeros(0), int(bits), bool(graded),
                          None if tol < 0 else tol).method


def positions(shape: Sequence[int], axes: Sequence[int] | None = None) -> Tensor:
    """``LongTensor[*shape]``: the position of every element, numbering the combinations of
    the ``axes`` in row-major order (other axes, e.g. channels, share their position).
    ``axes=None``: every element is its own position."""
    shape = tuple(int(s) for s in shape)
    axes = tuple(range(len(shape))) if axes is None else tuple(a % len(shape) for a in axes)
    index = torch.zeros(shape, dtype=torch.long)
    stride = 1
    for a in reversed(axes):
        view = [1] * len(shape)
        view[a] = shape[a]
        index = index + torch.arange(shape[a]).view(view) * stride
        stride *= shape[a]
    return index


def _runners(model, call):
    """The model in float64 (a copy, no parameter gradients), then as it is, in the dtype of
    its parameters (float32 for a plain callable)."""
    call = call or (lambda m, x: m(x))
    native = torch.float32
    if isinstance(model, nn.Module):
        native = next((p.dtype for p in model.parameters() if p.is_floating_point()),
                      torch.float32)
        try:
            m64 = copy.deepcopy(model).double().eval()
            for p in m64.parameters():
                p.requires_grad_(False)
        except Exception:  # noqa: BLE001 - a module that cannot be copied runs as it is
            m64 = model
        yield torch.float64, (lambda x: call(m64, x))
        model.eval()
        if native != torch.float64:
            yield native, (lambda x: call(model, x))
    else:
        yield torch.float64, (lambda x: call(model, x))
        yield native, (lambda x: call(model, x))


def _out(y) -> Tensor:
    if isinstance(y, (tuple, list)) and y and isinstance(y[0], Tensor):
        y = y[0]
    if not isinstance(y, Tensor):
        raise TypeError(f"the model returned {type(y).__name__}, not a tensor")
    return y


def _segment_any(values: Tensor, index: Tensor, size: int) -> Tensor:
    """``values [B, E]`` (non-negative), ``index [E]`` -> ``BoolTensor[B, size]``: some value
    of the segment is non-zero."""
    out = torch.zeros(values.shape[0], size, dtype=torch.float64)
    out.index_add_(1, index, values.double())
    return out > 0


def _segment_max(values: Tensor, index: Tensor, size: int) -> Tensor:
    out = torch.zeros(values.shape[0], size, dtype=values.dtype)
    return out.scatter_reduce_(1, index.expand(values.shape[0], -1), values, "amax")


def _gradients(run, dtype, x: Tensor, in_index: Tensor, out_index: Tensor, rows: list[int],
               q: int, g: torch.Generator, magnitude: bool) -> Tensor | None:
    """``[len(rows), Q]``: for each output position in ``rows``, the largest |gradient| over
    the input position's elements (``magnitude``), or whether it is non-zero. None when the
    output does not depend differentiably on the input."""
    flat_in, flat_out = in_index.reshape(-1), out_index.reshape(-1)
    found = []
    for start in range(0, len(rows), _CHUNK):
        chunk = rows[start:start + _CHUNK]
        xs = x.to(dtype).expand(len(chunk), *x.shape).clone().requires_grad_(True)
        y = _out(run(xs))
        if not y.requires_grad:
            return None
        y = y.reshape(len(chunk), -1)
        pick = flat_out[None, :] == torch.tensor(chunk)[:, None]
        weights = torch.randn(y.shape, generator=g, dtype=torch.float64).to(y.dtype) * pick
        (grad,) = torch.autograd.grad((y * weights).sum(), xs, allow_unused=True)
        if grad is None:  # the input is not in the graph (an integer lookup): no verdict
            return None
        grad = grad.detach().reshape(len(chunk), -1).abs().double()
        found.append(_segment_max(grad, flat_in, q) if magnitude
                     else _segment_any(grad, flat_in, q))
    return torch.cat(found)


def _perturbation(run, dtype, x: Tensor, in_index: Tensor, out_index: Tensor, p: int, q: int,
                  levels: int | None, g: torch.Generator) -> tuple[Tensor, float]:
    """``[P, Q]``: output position p moves by more than rounding when input position q is
    changed (to another level when ``levels`` is given, else by a unit normal step)."""
    flat_in, flat_out = in_index.reshape(-1), out_index.reshape(-1)
    base = x.reshape(-1)
    variants = base.repeat(q, 1)
    hit = flat_in[None, :] == torch.arange(q)[:, None]           # [Q, E]
    if levels is None:
        step = torch.randn(variants.shape, generator=g, dtype=torch.float64)
        variants = torch.where(hit, variants + step.to(variants.dtype), variants)
    else:
        shift = torch.randint(1, max(int(levels), 2), variants.shape, generator=g)
        variants = torch.where(hit, (variants + shift) % int(levels), variants)
    moved = torch.zeros(q, p, dtype=torch.bool)
    tol = 0.0
    with torch.no_grad():
        for start in range(0, q, _CHUNK - 1):
            chunk = variants[start:start + _CHUNK - 1]
            batch = torch.cat([base[None], chunk]).view(-1, *x.shape).to(dtype)
            y = _out(run(batch))
            eps = torch.finfo(y.dtype).eps if y.is_floating_point() else 0.0
            y = y.reshape(batch.shape[0], -1).double()
            ref, other = y[:1], y[1:]
            finite = torch.isfinite(ref)
            scale = float(ref[finite].abs().max()) if finite.any() else 0.0
            tol = ROUNDING_ULPS * eps * max(1.0, scale)  # the output's own dtype rounds
            both = torch.isfinite(other) & finite
            differs = torch.where(both, (other - ref).abs() > tol,
                                  (other != ref) & ~(other.isnan() & ref.isnan()))
            moved[start:start + len(chunk)] = _segment_max(differs.to(torch.uint8), flat_out,
                                                           p).bool()
    return moved.T, tol


def dependence(model, inputs: Tensor, *, call: Callable | None = None,
               in_axes: Sequence[int] | None = None, out_axes: Sequence[int] | None = None,
               levels: int | None = None, rows: Sequence[int] | None = None,
               perturb: bool = True, seed: int = 0) -> Dependence:
    """Which input positions each output position of ``model`` depends on.

    Args:
        model: an ``nn.Module`` (run on a float64 copy when it can, else as it is, in
            float32) or any callable.
        inputs: ``[K, *shape]``, the points at which dependence is probed (a dependence seen
            at any of them counts). With ``levels``, integer levels 0..levels-1.
        call: ``call(model, x) -> Tensor[B, *out_shape]`` for ``x [B, *shape]``; default
            ``model(x)`` (a tuple result: its first tensor).
        in_axes / out_axes: the axes of ``shape`` / ``out_shape`` that index positions (e.g.
            ``(1, 2)`` for the rows and columns of ``[C, H, W]``); None: every element.
        levels: the inputs are discrete levels; perturbation moves each to another level.
        rows: only these output positions (the rest of ``seen`` stays False).
        perturb: also run the perturbation test (gradients alone when False).

    Returns:
        :class:`Dependence` with ``seen`` a ``BoolTensor[P, Q]``.
    """
    inputs = torch.as_tensor(inputs)
    shape = tuple(inputs.shape[1:])
    in_index = positions(shape, in_axes)
    q = int(in_index.max()) + 1
    runners = list(_runners(model, call))
    for k, (dtype, run) in enumerate(runners):
        try:
            return _decide(run, dtype, inputs, in_index, q, out_axes, levels, rows, perturb,
                           seed)
        except Exception:  # noqa: BLE001 - float64 may fail; then the model's own dtype
            if k == len(runners) - 1:
                raise
    raise AssertionError("unreachable")


def _decide(run, dtype, inputs, in_index, q, out_axes, levels, rows, perturb, seed):
    g = torch.Generator().manual_seed(seed)
    probe = _out(run(inputs[:1].to(dtype)))
    out_index = positions(probe.shape[1:], out_axes)
    p = int(out_index.max()) + 1
    chosen = list(range(p)) if rows is None else [int(r) for r in rows]
    seen = torch.zeros(p, q, dtype=torch.bool)
    tol, graded = None, True
    for x in inputs:
        grads = _gradients(run, dtype, x.double(), in_index, out_index, chosen, q, g,
                           magnitude=False)
        if grads is None:
            graded = False
        else:
            seen[chosen] |= grads
        if perturb:
            moved, tol = _perturbation(run, dtype, x.double(), in_index, out_index, p, q,
                                       levels, g)
            seen[chosen] |= moved[chosen]
    bits = torch.finfo(probe.dtype).bits if probe.is_floating_point() else 64
    return Dependence(seen, bits, graded, tol)


def _random_inputs(shape, levels, num_inputs, g, discrete: bool) -> Tensor:
    if discrete:
        return torch.randint(0, levels, (num_inputs, *shape), generator=g).double()
    return torch.rand((num_inputs, *shape), generator=g, dtype=torch.float64) * (levels - 1)


def receptive_field(model, position: tuple[int, ...], data_shape: tuple[int, ...] | None = None,
                    cond: Tensor | None = None, num_inputs: int = 3, seed: int = 0,
                    magnitude: bool = False) -> Tensor:
    """Inputs on which the parameters at ``position`` depend (by :func:`dependence`).

    Args:
        model: any arlab model (``forward(x, cond) -> [N, P, *data_shape]``).
        position: an index into ``data_shape`` (e.g. ``(c, i, j)`` for images).
        num_inputs: how many random inputs; a dependence seen on any of them counts.
        magnitude: return the largest float64 |gradient| over the inputs instead of a mask.

    Returns:
        ``BoolTensor[*data_shape]`` (or ``Tensor[*data_shape]`` of |gradient| magnitudes).
    """
    data_shape = tuple(data_shape or model.data_shape)
    position = tuple(int(p) for p in position)
    if cond is not None:
        cond = torch.as_tensor(cond).reshape(1)

    def call(m, x):  # parameters second: positions are the data dims
        return m(x, None if cond is None else cond.expand(x.shape[0]))

    row = int(positions(data_shape)[position])
    out_axes = tuple(range(1, 1 + len(data_shape)))
    g = torch.Generator().manual_seed(seed)
    if magnitude:
        m = copy.deepcopy(model).double().eval()
        for p in m.parameters():
            p.requires_grad_(False)
        inputs = _random_inputs(data_shape, model.levels, num_inputs, g, discrete=False)
        in_index = positions(data_shape)
        out_index = positions(_out(call(m, inputs[:1])).shape[1:], out_axes)
        total = torch.zeros(data_shape, dtype=torch.float64)
        for x in inputs:
            grads = _gradients(lambda v: call(m, v), torch.float64, x, in_index, out_index,
                               [row], in_index.numel(), g, magnitude=True)
            if grads is None:
                raise ValueError(f"{type(model).__name__} is not differentiable in its input; "
                                 "only the seen/unseen map (magnitude=False) is available.")
            total = torch.maximum(total, grads[0].view(data_shape))
        return total
    inputs = _random_inputs(data_shape, model.levels, num_inputs, g, discrete=False)
    found = dependence(model, inputs, call=call, out_axes=out_axes, rows=[row],
                       levels=None, perturb=False, seed=seed)
    if not found.graded:  # not differentiable in its input: change levels instead
        found = dependence(model, _random_inputs(data_shape, model.levels, num_inputs, g, True),
                           call=call, out_axes=out_axes, rows=[row], levels=model.levels,
                           seed=seed)
    return found.seen[row].view(data_shape)


def causality_violations(model, position: tuple[int, ...], **kwargs) -> Tensor:
    """Inputs at or after ``position`` in ``model.order()`` that its output depends on
    (``BoolTensor[*data_shape]``; all False for a correct autoregressive model)."""
    order = model.order()
    seen = receptive_field(model, position, **kwargs)
    return seen & (order >= order[tuple(position)])


def pixel_map(mask: Tensor) -> Tensor:
    """Collapse a ``[C, H, W]`` map to ``[H, W]``: a pixel counts if any channel does."""
    return mask.any(0) if mask.dtype == torch.bool else mask.amax(0)


def earlier_pixels(height: int, width: int, pixel: tuple[int, int]) -> Tensor:
    """``BoolTensor[H, W]``: pixels strictly before ``pixel`` in raster order."""
    idx = torch.arange(height * width).view(height, width)
    return idx < pixel[0] * width + pixel[1]


def blind_spot(seen: Tensor, pixel: tuple[int, int]) -> Tensor:
    """Earlier pixels that are unseen although a pixel higher up in the same column is seen.

    ``seen`` is a pixel map ``[H, W]`` (see :func:`pixel_map`). Such a pixel lies inside the
    cone the layers reach but is cut off by the shape of the masks, so no extra depth of the
    same layers reaches it: this is PixelCNN's blind spot. Returns ``BoolTensor[H, W]``."""
    h, w = seen.shape
    allowed = earlier_pixels(h, w, pixel)
    seen_above = torch.cumsum(seen.int(), dim=0) - seen.int() > 0  # some row above is seen
    return allowed & ~seen & seen_above


# -- analytic receptive fields (no gradients: the footprints of the layers, propagated) ------

def dilated_stack_offsets(kernel_size: int, dilations: list[int]) -> list[int]:
    """Lags (0 = the output's own position, 3 = three steps back) of the inputs that can reach
    one output of a stack of causal convolutions, one layer per dilation, each seeing the taps
    t-(k-1)·d, ..., t-d, t (``CausalConv1d(..., include_current=True)``). Sorted ascending.

    Every layer adds one of its tap lags 0, d, ..., (k-1)·d to the lag of a path, so the set is
    all such sums; gappy stacks (kernel 2, dilations [2]) leave holes."""
    if kernel_size < 1 or any(int(d) < 1 for d in dilations):
        raise ValueError(f"kernel_size and dilations must be positive, got {kernel_size}, "
                         f"{list(dilations)}.")
    lags = {0}
    for d in dilations:
        lags = {lag + j * int(d) for lag in lags for j in range(kernel_size)}
    return sorted(lags)


def dilated_stack_receptive_field(kernel_size: int, dilations: list[int]) -> int:
    """How many inputs reach one output of the stack (far from the sequence start): the
    number of :func:`dilated_stack_offsets`. Equals ``1 + (k-1)·sum(dilations)`` when the
    taps leave no gaps (WaveNet's 1, 2, 4, ...), fewer otherwise."""
    return len(dilated_stack_offsets(kernel_size, dilations))


def dilated_stack_tree(kernel_size: int, dilations: list[int], length: int,
                       position: int) -> list[Tensor]:
    """Units that feed output ``position`` of the stack on a sequence of ``length``.

    Returns one ``BoolTensor[length]`` per level, inputs first: entry 0 marks the inputs the
    output depends on, entry ``len(dilations)`` marks the output itself. Inputs before the
    sequence start (zero padding) are not units, so near the start the tree is cut off."""
    if not 0 <= position < length:
        raise ValueError(f"position {position} is outside the sequence 0..{length - 1}.")
    dilated_stack_offsets(kernel_size, dilations)  # validates the arguments
    level = torch.zeros(length, dtype=torch.bool)
    level[position] = True
    tree = [level]
    for d in reversed([int(d) for d in dilations]):
        below = torch.zeros(length, dtype=torch.bool)
        for j in range(kernel_size):
            lag = j * d
            if lag < length:
                below[: length - lag] |= level[lag:]
        level = below
        tree.append(level)
    return tree[::-1]


def _masked_footprint(kernel_size: int, mask_type: str) -> list[tuple[int, int]]:
    """Input offsets (row, column) relative to the output that a PixelCNN kernel reads:
    every tap in the rows above, the taps left of the centre in its row, and the centre
    itself for type 'B' (single channel group)."""
    r = kernel_size // 2
    taps = [(di, dj) for di in range(-r, 0) for dj in range(-r, r + 1)]
    taps += [(0, dj) for dj in range(-r, 0)]
    if mask_type == "B":
        taps.append((0, 0))
    return taps


def _spread(region: Tensor, taps: list[tuple[int, int]]) -> Tensor:
    """Pixels ``q`` with ``q = p + tap`` for some ``p`` in ``region`` and some tap (inside the
    image: zero padding has no units behind it)."""
    h, w = region.shape
    out = torch.zeros_like(region)
    for di, dj in taps:
        src = region[max(0, -di):h - max(0, di), max(0, -dj):w - max(0, dj)]
        out[max(0, di):h - max(0, -di), max(0, dj):w - max(0, -dj)] |= src
    return out


def masked_conv_stack_receptive_field(kernel_size_first: int, kernel_size_rest: int,
                                      layers: int, image_shape: tuple[int, ...],
                                      pixel: tuple[int, int]) -> Tensor:
    """The exact set of input pixels that output ``pixel`` of a stack of PixelCNN masked
    convolutions sees, computed from the mask footprints alone.

    Args:
        kernel_size_first: kernel of the first layer (type 'A', centre hidden); odd.
        kernel_size_rest: kernel of every later layer (type 'B', centre kept); odd.
        layers: total number of masked convolutions, the type-A one included (>= 1).
        image_shape: ``(H, W)`` or ``(C, H, W)``.
        pixel: ``(row, column)`` of the output.

    Returns:
        ``BoolTensor[H, W]``. The blind spot shows up as earlier pixels to the upper right
        that no number of layers reaches.
    """
    for name, k in (("kernel_size_first", kernel_size_first),
                    ("kernel_size_rest", kernel_size_rest)):
        if k < 1 or k % 2 == 0:
            raise ValueError(f"{name} must be odd and positive (a kernel with a centre), "
                             f"got {k}.")
    if layers < 1:
        raise ValueError(f"layers counts the masked convolutions including the first; "
                         f"it must be at least 1, got {layers}.")
    h, w = (int(s) for s in tuple(image_shape)[-2:])
    i, j = (int(p) for p in pixel)
    if not (0 <= i < h and 0 <= j < w):
        raise ValueError(f"pixel {(i, j)} is outside the {h}x{w} image.")
    region = torch.zeros(h, w, dtype=torch.bool)
    region[i, j] = True
    for _ in range(layers - 1):
        region = _spread(region, _masked_footprint(kernel_size_rest, "B"))
    return _spread(region, _masked_footprint(kernel_size_first, "A"))
