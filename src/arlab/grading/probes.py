"""The small library of probes and judges that every assignment's table is built from.

A probe runs the student's code on inputs drawn from fixed seeds and returns plain arrays; a
judge recomputes what is expected from the same seeds. The helpers here are the pieces both
halves share: seeded draws, the checked hand-over of weights to a student's module, the
conversion of carried arrays back to tensors, and the failures that name what went wrong.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from arlab.grading.checks import fail


def from_np(array: np.ndarray) -> Tensor:
    """A carried array as a tensor: a copy (the judge may edit it), 0-dim arrays kept 0-dim."""
    return torch.from_numpy(np.array(array))


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def draw(shape: Sequence[int], g: torch.Generator, scale: float) -> Tensor:
    return torch.randn(tuple(shape), generator=g) * scale


def returned(value, what: str) -> Tensor:
    """``value`` if the student's code returned a tensor, else a failure naming ``what``."""
    if not isinstance(value, Tensor):
        fail(f"{what} should return a torch.Tensor, got {type(value).__name__}.")
    return value


def set_param(param, value: Tensor, what: str) -> None:
    """Copy grader weights into a student's parameter, with a clear failure on a shape clash."""
    if not isinstance(param, Tensor):
        fail(f"{what} should be a tensor parameter, got {type(param).__name__}.")
    if tuple(param.shape) != tuple(value.shape):
        fail(f"{what} has shape {tuple(param.shape)}; the contract fixes it as "
             f"{tuple(value.shape)}.")
    with torch.no_grad():
        param.copy_(value.to(param.dtype))


def attr(obj, name: str, what: str, hint: str):
    if not hasattr(obj, name):
        fail(f"{what} has no attribute {name!r}; {hint}")
    return getattr(obj, name)


def px(flat: int, width: int) -> tuple[int, int]:
    """The (row, column) of raster position ``flat`` in an image ``width`` wide."""
    return divmod(int(flat), width)


def randomise(module: nn.Module, g: torch.Generator, gain: float = 1.0,
              vector_std: float | None = None) -> None:
    """Seeded random values for every trainable floating parameter, so that a model's outputs
    depend visibly on its inputs whatever its own initialisation (zeros included); a layer
    whose masks live in forward, or in frozen parameters, keeps them. Matrices get std
    ``gain / sqrt(fan in)``, vectors ``vector_std`` (default ``gain / 2``). A module with no
    trainable parameter fails: training could not update it."""
    params = [p for p in module.parameters() if p.requires_grad and p.is_floating_point()]
    if not params:
        fail(f"{type(module).__name__} has no parameters: hold its weights in nn.Parameter / "
             "nn.Linear / nn.Conv2d / nn.LSTM attributes of the module, so that training can "
             "update them.")
    vector = gain / 2 if vector_std is None else vector_std
    with torch.no_grad():
        for p in params:
            std = gain / math.sqrt(p[0].numel()) if p.dim() >= 2 else vector
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64) * std)


def judge_weight_kept(got: Tensor, weight: Tensor, what: str, after: str, advice: str) -> None:
    """A masked layer left the grader's ``weight`` as it was (``after``: what it ran)."""
    changed = (got != weight).nonzero() if got.shape == weight.shape else []
    if len(changed):
        idx = tuple(changed[0].tolist())
        fail(f"{what} changed its weight: weight{list(idx)} was {weight[idx]:.4g} and is "
             f"{got[idx].item():.4g} after {after}. Keep `weight` as it is and apply the mask "
             f"in forward {advice}")


def judge_masked_grad(grad: Tensor, mask: Tensor, what: str, how: str) -> None:
    """A masked layer's weight gets exactly zero gradient wherever its mask is 0."""
    leak = (mask == 0) & (grad != 0)
    if leak.any():
        idx = tuple(leak.nonzero()[0].tolist())
        fail(f"{what}: weight.grad{list(idx)} is {grad[idx].item():.4g} although mask"
             f"{list(idx)} is 0: a masked weight must get exactly zero gradient. Multiply the "
             f"weight by the mask inside forward ({how}).")
