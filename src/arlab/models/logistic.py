"""Discretised mixtures of logistics: a smooth distribution over ordered levels.

Bin ``k`` of the level scale covers ``[k - 0.5, k + 0.5]``; the first bin extends to -inf and the
last to +inf, so the bins always hold all the mass. The probability of a bin under one logistic
with mean ``mu`` and scale ``s`` is ``sigmoid(b) - sigmoid(a)`` with ``a = (k - 0.5 - mu) / s``,
``b = (k + 0.5 - mu) / s``. Subtracting two sigmoids loses everything when both are close to 0
or 1 (a bin far in a tail), so the log-probability uses the identity

    sigmoid(b) - sigmoid(a) = sigmoid(b) * sigmoid(-a) * (1 - exp(-(b - a)))

whose three factors are computed in log space without any cancellation: ``log sigmoid`` is
stable for any argument and ``b - a = 1 / s`` is known exactly. This is exact, not the
density-at-the-centre approximation, and finite for tiny bin masses.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from arlab.models.base import ARModel

_LOG2 = math.log(2.0)


def _log1mexp(w: Tensor) -> Tensor:
    """``log(1 - exp(-w))`` for ``w > 0``, accurate for small and large ``w``.

    Each branch only ever sees inputs from its own range, so neither produces inf/NaN
    (and no NaN gradient leaks through ``torch.where``)."""
    small = w.clamp(max=_LOG2)
    large = w.clamp(min=_LOG2)
    return torch.where(w < _LOG2, torch.log(-torch.expm1(-small)), torch.log1p(-torch.exp(-large)))


def discretized_logistic_log_probs(x: Tensor, logits: Tensor, means: Tensor, log_scales: Tensor,
                                   levels: int) -> Tensor:
    """Exact log-probability of levels under a mixture of discretised logistics.

    Everything is on the level scale: ``means`` in level units, ``log_scales`` the log of the
    scale in level units.

    Args:
        x: levels 0..levels-1, shape ``[...]`` (long or float).
        logits: mixture logits ``[..., M]`` (weights = softmax over the last dim).
        means, log_scales: ``[..., M]``, broadcastable with ``logits`` and ``x[..., None]``.
        levels: number of levels (the first and last bins extend to -inf and +inf).

    Returns:
        ``log p(x)`` in nats, shape ``[...]`` (broadcast of ``x`` and the parameters' batch).
    """
    if levels < 1:
        raise ValueError(f"levels must be at least 1, got {levels}.")
    # At least float32: bin edges of 256 levels are not resolved in half precision (autocast).
    dtype = torch.promote_types(torch.promote_types(means.dtype, log_scales.dtype), torch.float32)
    x = torch.as_tensor(x, device=means.device)
    if x.numel() > 0 and (bool((x < 0).any()) or bool((x > levels - 1).any())):
        raise ValueError(f"x must hold levels in 0..{levels - 1}; got values from "
                         f"{float(x.min())} to {float(x.max())}.")
    xk = x.to(dtype).unsqueeze(-1)                      # [..., 1]
    inv_s = torch.exp(-log_scales.to(dtype))           # 1 / s = width of a bin in scale units
    centred = xk - means.to(dtype)
    a = (centred - 0.5) * inv_s
    b = (centred + 0.5) * inv_s
    interior = F.logsigmoid(b) + F.logsigmoid(-a) + _log1mexp(inv_s)
    lowest = F.logsigmoid(b)                           # bin 0: sigmoid(b) - 0
    highest = F.logsigmoid(-a)                         # last bin: 1 - sigmoid(a)
    log_p = torch.where(xk <= 0, lowest, torch.where(xk >= levels - 1, highest, interior))
    if levels == 1:
        log_p = torch.zeros_like(log_p)                # one bin holds all the mass
    log_w = F.log_softmax(logits.to(dtype), dim=-1)
    return torch.logsumexp(log_w + log_p, dim=-1)


def dlogistic_mixture_log_prob(x: Tensor, logits: Tensor, means: Tensor, log_scales: Tensor,
                               d: int) -> Tensor:
    """Log-probability ``[N]`` (nats) of levels ``x [N]`` (0..d-1) under a mixture of ``M``
    logistics discretised on the level scale: ``logits, means, log_scales`` are ``[M]``
    (weights softmax(logits), means in level units, scale = exp(log_scales))."""
    if not (logits.shape == means.shape == log_scales.shape) or logits.dim() != 1:
        raise ValueError("logits, means and log_scales must all have shape [M]; got "
                         f"{tuple(logits.shape)}, {tuple(means.shape)}, {tuple(log_scales.shape)}.")
    return discretized_logistic_log_probs(torch.as_tensor(x).reshape(-1), logits, means,
                                          log_scales, d)


class LogisticMixtureHead(nn.Module):
    """Output head: a discretised mixture of ``num_mixtures`` logistics per position.

    Parameters along dim 1 (``P = 3 * num_mixtures``): mixture logits, means, log-scales, the
    means and log-scales in network units (the [-1, 1] scale of ``ARModel.scale_input``, so a
    mean of 0 is the middle level). Log-scales are clamped from below at ``min_log_scale``
    (network units) so that a collapsing component cannot blow up the loss.
    """

    def __init__(self, levels: int, num_mixtures: int = 5, min_log_scale: float = -7.0):
        super().__init__()
        if levels < 2:
            raise ValueError(f"LogisticMixtureHead needs at least 2 levels, got {levels}.")
        self.levels = int(levels)
        self.num_mixtures = int(num_mixtures)
        self.num_params = 3 * self.num_mixtures
        self.min_log_scale = float(min_log_scale)
        self._half_range = (self.levels - 1) / 2.0    # network unit -> level units

    def level_params(self, params: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``params [N, P, *dims]`` -> ``(logits, means, log_scales)``, each ``[N, *dims, M]``
        on the level scale."""
        if params.shape[1] != self.num_params:
            raise ValueError(f"expected {self.num_params} parameters along dim 1 "
                             f"(3 x {self.num_mixtures} mixtures), got {params.shape[1]}.")
        logits, means, log_scales = (p.movedim(1, -1) for p in params.chunk(3, dim=1))
        means = (means + 1.0) * self._half_range
        log_scales = log_scales.clamp(min=self.min_log_scale) + math.log(self._half_range)
        return logits, means, log_scales

    def log_prob(self, params: Tensor, x: Tensor) -> Tensor:
        """``params [N, P, *dims]``, ``x [N, *dims]`` levels -> log p(x) ``[N, *dims]`` (nats)."""
        logits, means, log_scales = self.level_params(params)
        return discretized_logistic_log_probs(x, logits, means, log_scales, self.levels)

    def probs(self, params: Tensor) -> Tensor:
        """``params [M, P]`` -> probabilities of every level ``[M, K]``."""
        logits, means, log_scales = self.level_params(params)             # [M, mix]
        k = torch.arange(self.levels, device=params.device).expand(params.shape[0], -1)
        lp = discretized_logistic_log_probs(k, logits.unsqueeze(1), means.unsqueeze(1),
                                            log_scales.unsqueeze(1), self.levels)
        return lp.exp()

    def sample(self, params: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """``params [M, P]`` -> one level per row ``[M]``: pick a component, draw a logistic by
        inverse CDF, round to the nearest level and clamp (exactly the discretised mixture)."""
        logits, means, log_scales = self.level_params(params.double())
        comp = torch.multinomial(F.softmax(logits, dim=-1), 1, generator=generator)   # [M, 1]
        mu = means.gather(-1, comp).squeeze(-1)
        s = log_scales.gather(-1, comp).squeeze(-1).exp()
        u = torch.rand(mu.shape, generator=generator, device=params.device, dtype=torch.float64)
        y = mu + s * (torch.log(u) - torch.log1p(-u))     # logistic inverse CDF; u = 0 -> -inf
        return torch.round(y).clamp(0, self.levels - 1).long()


class DiscretizedLogisticMixture(ARModel):
    """One variable (``data_shape (1,)``) modelled by a learnable discretised logistic mixture.

    The parameters are stored in network units (see :class:`LogisticMixtureHead`); means start
    spread evenly over the range. With ``num_classes`` a per-class offset (zero at first) is
    added to all of them.
    """

    def __init__(self, data_shape: tuple[int, ...] = (1,), levels: int = 2,
                 num_mixtures: int = 4, *, num_classes: int | None = None):
        head = LogisticMixtureHead(levels, num_mixtures)
        super().__init__(data_shape, levels, head=head, num_classes=num_classes)
        if self.data_shape != (1,):
            raise ValueError(f"DiscretizedLogisticMixture models one variable: data_shape must "
                             f"be (1,), got {self.data_shape}.")
        m = num_mixtures
        self.logits = nn.Parameter(torch.zeros(m))
        self.means = nn.Parameter((torch.arange(m) + 0.5) * (2.0 / m) - 1.0)  # centres of m slices
        self.log_scales = nn.Parameter(torch.full((m,), math.log(1.0 / m)))
        self.class_offsets = (nn.Parameter(torch.zeros(num_classes, 3 * m))
                              if num_classes is not None else None)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """``x [N, 1]`` (only its batch size is used) -> head parameters ``[N, 3M, 1]``."""
        n = x.shape[0]
        cond = self.check_cond(cond, n)
        params = torch.cat([self.logits, self.means, self.log_scales]).unsqueeze(0).expand(n, -1)
        if cond is not None:
            params = params + self.class_offsets[cond]
        return params.unsqueeze(-1).clone()
