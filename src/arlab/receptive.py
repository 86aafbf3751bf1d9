"""What an output depends on: receptive fields, causality violations and blind spots.

Dependence is decided exactly: in float64, an input counts as seen when the gradient of a
random projection of the output's parameters is non-zero (compared with 0, no epsilon) for at
least one of several random inputs. Models whose forward pass is not differentiable in its
input (one-hot lookups) are probed by perturbation instead: change one input level, compare
the outputs exactly.
"""
from __future__ import annotations

import copy

import torch
from torch import Tensor


def _float64_copy(model):
    m = copy.deepcopy(model).double().eval()
    for p in m.parameters():
        p.requires_grad_(False)
    return m


def _random_levels(shape, levels, g):
    return torch.randint(0, levels, shape, generator=g)


def _projection(params: Tensor, position: tuple[int, ...], g: torch.Generator) -> Tensor:
    """A random linear combination of every parameter at ``position`` (cancellation has
    probability zero, unlike a plain sum)."""
    out = params[(0, slice(None), *position)]
    w = torch.randn(out.shape, generator=g, dtype=torch.float64)
    return (out * w).sum()


def receptive_field(model, position: tuple[int, ...], data_shape: tuple[int, ...] | None = None,
                    cond: Tensor | None = None, num_inputs: int = 3, seed: int = 0,
                    magnitude: bool = False) -> Tensor:
    """Inputs on which the parameters at ``position`` depend.

    Args:
        model: any arlab model (``forward(x, cond) -> [N, P, *data_shape]``).
        position: an index into ``data_shape`` (e.g. ``(c, i, j)`` for images).
        num_inputs: how many random inputs; a dependence seen on any of them counts.
        magnitude: return the largest |gradient| over the inputs (float64) instead of a mask.

    Returns:
        ``BoolTensor[*data_shape]`` (or ``Tensor[*data_shape]`` of |gradient| magnitudes).
    """
    data_shape = tuple(data_shape or model.data_shape)
    position = tuple(int(p) for p in position)
    m = _float64_copy(model)
    g = torch.Generator().manual_seed(seed)
    if cond is not None:
        cond = torch.as_tensor(cond).reshape(1)
    total = torch.zeros(data_shape, dtype=torch.float64)
    for _ in range(num_inputs):
        x = torch.rand((1, *data_shape), generator=g, dtype=torch.float64) * (m.levels - 1)
        x.requires_grad_(True)
        out = _projection(m(x, cond), position, g)
        if not out.requires_grad:
            if magnitude:
                raise ValueError(f"{type(model).__name__} is not differentiable in its input; "
                                 "only the seen/unseen map (magnitude=False) is available.")
            return _receptive_by_perturbation(m, position, data_shape, cond, num_inputs, seed)
        (grad,) = torch.autograd.grad(out, x, allow_unused=True)
        if grad is not None:
            total = torch.maximum(total, grad[0].abs())
    return total if magnitude else total != 0


@torch.no_grad()
def _receptive_by_perturbation(m, position, data_shape, cond, num_inputs, seed) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    seen = torch.zeros(data_shape, dtype=torch.bool)
    flat = seen.view(-1)
    for _ in range(num_inputs):
        x = _random_levels((1, *data_shape), m.levels, g)
        base = m(x, cond)[(0, slice(None), *position)]
        for q in range(flat.numel()):
            y = x.clone()
            yv = y.view(1, -1)
            yv[0, q] = (yv[0, q] + 1 + torch.randint(0, m.levels - 1, (1,), generator=g)) % m.levels
            flat[q] |= bool((m(y, cond)[(0, slice(None), *position)] != base).any())
    return seen


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
