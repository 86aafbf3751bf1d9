"""The simplest density model: a histogram over the levels of one discrete variable.

``histogram_probs`` is the maximum-likelihood (optionally smoothed) fit, ``inverse_cdf_sample``
turns uniform numbers into samples by a binary search on the cumulative distribution, and
:class:`Histogram` wraps both in the common model face, with learnable logits so that the
same histogram can also be fitted by gradient descent.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from arlab.models.base import ARModel


def _as_levels(samples: Tensor, d: int, what: str = "samples") -> Tensor:
    """Check that ``samples`` hold integer levels 0..d-1 and return them as a LongTensor."""
    samples = torch.as_tensor(samples)
    if samples.is_floating_point():
        if not torch.equal(samples, samples.round()):
            raise ValueError(f"{what} must be integer levels 0..{d - 1}; got non-integer values.")
    flat = samples.long()
    if flat.numel() > 0 and (int(flat.min()) < 0 or int(flat.max()) >= d):
        raise ValueError(f"{what} must lie in 0..{d - 1} (d={d}); got values from "
                         f"{int(flat.min())} to {int(flat.max())}. Pass a larger d or fix the data.")
    return flat


def histogram_probs(samples: Tensor, d: int, alpha: float = 0.0) -> Tensor:
    """Smoothed maximum-likelihood histogram: ``(count_k + alpha) / (N + alpha * d)``.

    Args:
        samples: ``LongTensor[N]`` of levels 0..d-1 (any shape is flattened).
        d: number of levels.
        alpha: pseudo-count added to every level (0: plain maximum likelihood).

    Returns:
        ``Tensor[d]`` of probabilities (default float dtype) summing to 1.
    """
    if d < 1:
        raise ValueError(f"d (the number of levels) must be at least 1, got {d}.")
    if alpha < 0:
        raise ValueError(f"alpha is a pseudo-count and must be >= 0, got {alpha}.")
    flat = _as_levels(samples, d).reshape(-1)
    n = flat.numel()
    if n == 0 and alpha == 0:
        raise ValueError("No samples and alpha=0: the histogram is undefined. "
                         "Pass some samples or a positive alpha.")
    counts = torch.bincount(flat, minlength=d).to(torch.get_default_dtype())
    return (counts + alpha) / (n + alpha * d)


def inverse_cdf_sample(probs: Tensor, u: Tensor) -> Tensor:
    """Inverse-CDF sampling: the smallest ``k`` with ``CDF[k] > u``.

    Args:
        probs: ``Tensor[..., d]`` probabilities over the last dim (they need not sum exactly
            to 1; the CDF is their running sum).
        u: ``Tensor[...]`` uniform numbers in [0, 1), broadcastable against ``probs[..., 0]``.

    Returns:
        ``LongTensor[...]`` levels; ``d - 1`` where rounding leaves ``CDF[d-1] <= u``.
    """
    probs = torch.as_tensor(probs)
    u = torch.as_tensor(u, device=probs.device)
    d = probs.shape[-1]
    if d < 1:
        raise ValueError("probs needs at least one level in its last dim.")
    dtype = torch.promote_types(probs.dtype, u.dtype)
    if not dtype.is_floating_point:
        dtype = torch.get_default_dtype()
    batch = torch.broadcast_shapes(probs.shape[:-1], u.shape)
    cdf = probs.to(dtype).cumsum(-1).expand(*batch, d).contiguous()
    u = u.to(dtype).expand(batch).contiguous().unsqueeze(-1)
    # right=True: a u that equals CDF[k] exactly belongs to the next bin (CDF[k] > u is strict).
    k = torch.searchsorted(cdf, u, right=True).squeeze(-1)
    return k.clamp(max=d - 1)


class Histogram(ARModel):
    """A categorical distribution over ``levels`` values of one variable, ``data_shape (1,)``.

    Parameters are the logits (``p = softmax(logits)``); with ``num_classes`` a learned
    per-class offset is added to them (zero at first), so ``cond=None`` gives the shared part.
    """

    def __init__(self, data_shape: tuple[int, ...] = (1,), levels: int = 2, *,
                 num_classes: int | None = None):
        super().__init__(data_shape, levels, num_classes=num_classes)
        if self.data_shape != (1,):
            raise ValueError(f"Histogram models one variable: data_shape must be (1,), "
                             f"got {self.data_shape}.")
        self.logits = nn.Parameter(torch.zeros(self.levels))
        self.class_logits = (nn.Parameter(torch.zeros(num_classes, self.levels))
                             if num_classes is not None else None)

    def _logits(self, n: int, cond: Tensor | None) -> Tensor:
        """Logits ``[n, levels]`` for a batch of ``n`` (per-class when ``cond`` is given)."""
        cond = self.check_cond(cond, n)
        logits = self.logits.unsqueeze(0).expand(n, -1)
        if cond is not None:
            logits = logits + self.class_logits[cond]
        return logits

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """``x [N, 1]`` (ignored but for its batch size) -> logits ``[N, levels, 1]``."""
        return self._logits(x.shape[0], cond).unsqueeze(-1).clone()

    def probs(self, cond: Tensor | None = None) -> Tensor:
        """The histogram ``[levels]`` (or ``[N, levels]`` for a batch of labels ``cond``)."""
        if cond is None:
            return F.softmax(self.logits, dim=-1)
        cond = torch.as_tensor(cond).reshape(-1)
        return F.softmax(self._logits(cond.numel(), cond), dim=-1)

    @torch.no_grad()
    def fit_counts(self, samples: Tensor, alpha: float = 0.0,
                   cond: Tensor | None = None) -> "Histogram":
        """Set the logits to the log of the smoothed maximum-likelihood histogram.

        ``samples`` are levels ``[N]`` or ``[N, 1]``. Levels never seen get logit -inf when
        ``alpha = 0`` (probability exactly 0, so a test set holding them has infinite NLL).
        With ``cond`` (labels ``[N]``) each class gets its own histogram; a class without
        samples keeps the shared one. Returns ``self``.
        """
        flat = _as_levels(samples, self.levels).reshape(-1).to(self.logits.device)
        base = histogram_probs(flat.cpu(), self.levels, alpha).log()
        self.logits.copy_(base)
        if cond is None:
            return self
        cond = self.check_cond(cond, flat.numel())
        for c in range(self.num_classes):
            in_c = flat[cond == c]
            if in_c.numel() == 0 and alpha == 0:
                self.class_logits[c].zero_()
                continue
            offset = histogram_probs(in_c.cpu(), self.levels, alpha).log() - base
            # Levels unseen overall are unseen in every class: keep them at -inf, offset 0.
            self.class_logits[c].copy_(torch.nan_to_num(offset, nan=0.0))
        return self

    @torch.no_grad()
    def sample(self, n: int, cond: Tensor | None = None,
               generator: torch.Generator | None = None) -> Tensor:
        """``n`` samples ``LongTensor[n, 1]`` by inverse-CDF sampling of uniforms from ``generator``."""
        probs = F.softmax(self._logits(n, cond).double(), dim=-1)
        u = torch.rand(n, generator=generator, device=probs.device, dtype=torch.float64)
        return inverse_cdf_sample(probs, u).unsqueeze(-1)
