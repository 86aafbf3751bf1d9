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
