"""Checks that the homework's tests call: each raises :class:`GradingError` with a message a
student can act on, never a bare AssertionError.

They compare plain tensors (outputs, masks, gradients) and probe functions on inputs the
grader chooses, so the same checks serve the in-notebook tests and the trusted grader.
"""
from __future__ import annotations

import itertools
import math
from typing import Callable

import torch
from torch import Tensor


class GradingError(AssertionError):
    """A test failed; the message says what was expected and what to look at."""


def fail(message: str) -> None:
    raise GradingError(message)


def check_type(value, types, what: str) -> None:
    if not isinstance(value, types):
        names = types.__name__ if isinstance(types, type) else " or ".join(t.__name__ for t in types)
        fail(f"{what} should be a {names}, got {type(value).__name__}.")


def check_shape(t, shape: tuple[int, ...], what: str) -> None:
    check_type(t, Tensor, what)
    if tuple(t.shape) != tuple(shape):
        fail(f"{what} has shape {tuple(t.shape)}; expected {tuple(shape)}.")


def check_dtype(t: Tensor, kind: str, what: str) -> None:
    """``kind``: 'integer', 'float' or 'bool'."""
    ok = {"integer": not t.is_floating_point() and t.dtype != torch.bool,
          "float": t.is_floating_point(), "bool": t.dtype == torch.bool}[kind]
    if not ok:
        fail(f"{what} has dtype {t.dtype}; expected a {kind} tensor.")


def check_close(actual, expected: Tensor, what: str, atol: float = 1e-6,
                rtol: float = 1e-5, hint: str = "") -> None:
    """Same shape and values (within atol + rtol·|expected|) as the reference."""
    check_shape(actual, tuple(expected.shape), what)
    a, e = actual.detach().double().cpu(), expected.detach().double().cpu()
    if not torch.isfinite(a).all() and torch.isfinite(e).all():
        bad = (~torch.isfinite(a)).nonzero()[0].tolist()
        fail(f"{what} has a non-finite value at index {bad}: {a[tuple(bad)].item()}. {hint}".strip())
    wrong = ~torch.isclose(a, e, rtol=rtol, atol=atol, equal_nan=True)
    if wrong.any():
        idx = tuple(wrong.nonzero()[0].tolist())
        fail(f"{what} differs from the expected values at {int(wrong.sum())} of {wrong.numel()} "
             f"entries; e.g. at index {list(idx)} it is {a[idx].item():.6g}, expected "
             f"{e[idx].item():.6g}. {hint}".strip())


def check_equal(actual, expected: Tensor, what: str, hint: str = "") -> None:
    """Exactly equal (masks, integer samples)."""
    check_close(actual, expected, what, atol=0.0, rtol=0.0, hint=hint)


def check_causal(model, shape: tuple[int, ...], order: Tensor, levels: int | None = 2,
                 trials: int = 3, seed: int = 0, what: str = "the model",
                 need_some: bool = True, call: Callable | None = None,
                 in_axes: tuple[int, ...] | None = None,
                 out_axes: tuple[int, ...] | None = None, strict: bool = True) -> None:
    """Outputs at a position depend only on inputs of earlier rank in ``order`` (equal rank
    too when ``strict`` is False), and, if ``need_some``, each output after the first depends
    on some earlier input.

    Decided by :func:`arlab.receptive.dependence` on ``trials`` random inputs of ``shape``
    (levels 0..levels-1, or standard normal when ``levels`` is None): float64 gradients where
    the model runs in float64, and a perturbation test that counts only changes beyond the
    output dtype's rounding. Positions: every element of ``shape`` (or the ``in_axes`` of it),
    and the trailing ``len(order.shape)`` dims of the output (or its ``out_axes``)."""
    from arlab.receptive import dependence

    g = torch.Generator().manual_seed(seed)
    if levels is None:
        inputs = torch.randn((trials, *shape), generator=g, dtype=torch.float64)
    else:
        inputs = torch.randint(0, levels, (trials, *shape), generator=g).double()
    ranks = order.reshape(-1)
    out_axes = out_axes or tuple(range(-order.dim(), 0))
    found = dependence(model, inputs, call=call, in_axes=in_axes, out_axes=out_axes,
                       levels=levels, seed=seed)
    seen = found.seen
    later = ranks.view(1, -1) >= ranks.view(-1, 1) if strict else \
        ranks.view(1, -1) > ranks.view(-1, 1)
    leak = seen & later
    grid = tuple(order.shape)
    if leak.any():
        p, q = leak.nonzero()[0].tolist()
        fail(f"{what}: output {_pos(p, grid)} depends on input {_pos(q, grid)}, which comes "
             f"{'at the same step' if ranks[q] == ranks[p] else 'later'} in the ordering "
             f"(rank {int(ranks[q])} {'>=' if strict else '>'} {int(ranks[p])}). Check your "
             f"masks / shifts. (Decided by {found.method}.)")
    if need_some:
        for p in range(ranks.numel()):
            if ranks[p] > ranks.min() and not seen[p].any():
                fail(f"{what}: output {_pos(p, grid)} depends on no input at all; it should "
                     f"see the inputs that come before it in the ordering. (Decided by "
                     f"{found.method}.)")


def _pos(flat_index: int, shape: tuple[int, ...]) -> str:
    if len(shape) == 1:
        return str(flat_index)
    idx = []
    for s in reversed(shape):
        idx.append(flat_index % s)
        flat_index //= s
    return str(tuple(reversed(idx)))


def all_configs(shape: tuple[int, ...], levels: int) -> Tensor:
    """Every input of ``shape`` with ``levels`` values, ``LongTensor[levels**D, *shape]``."""
    n = math.prod(shape)
    return torch.tensor(list(itertools.product(range(levels), repeat=n))).view(-1, *shape)


def check_normalised(log_prob: Callable[[Tensor], Tensor], shape: tuple[int, ...], levels: int,
                     what: str = "log_prob", tol: float = 1e-4) -> None:
    """exp(log_prob) sums to 1 over every configuration (enumerated)."""
    x = all_configs(shape, levels)
    with torch.no_grad():
        lp = log_prob(x)
    check_shape(lp, (x.shape[0],), f"{what}(x) for {x.shape[0]} inputs")
    if not torch.isfinite(lp).all():
        fail(f"{what} returned a non-finite value (log 0 or NaN) for some input.")
    total = float(lp.double().logsumexp(0).exp())
    if abs(total - 1) > tol:
        fail(f"{what} is not normalised: the probabilities of all {x.shape[0]} possible inputs "
             f"sum to {total:.6f}, not 1. A model must give a log-probability, not a score.")
