"""The one place for unit conversions.

Every loss in arlab is a negative log-likelihood in nats. Names always carry the unit:
``nll_nats`` (per example), ``nats_per_dim`` and ``bits_per_dim`` (mean per dimension).
"""
from __future__ import annotations

import math

import torch

LN2 = math.log(2.0)


def nats_to_bits(nats: float | torch.Tensor) -> float | torch.Tensor:
    """Convert nats to bits (divide by ln 2)."""
    return nats / LN2


def bits_to_nats(bits: float | torch.Tensor) -> float | torch.Tensor:
    """Convert bits to nats (multiply by ln 2)."""
    return bits * LN2


def nats_per_dim(nll_nats: torch.Tensor, num_dims: int) -> float:
    """Mean NLL per dimension in nats, from per-example NLLs ``nll_nats`` of shape [N]."""
    if num_dims <= 0:
        raise ValueError(f"num_dims must be positive, got {num_dims}")
    return float(torch.as_tensor(nll_nats, dtype=torch.float64).mean() / num_dims)


def bits_per_dim(nll_nats: torch.Tensor, num_dims: int) -> float:
    """Mean NLL per dimension in bits, from per-example NLLs ``nll_nats`` of shape [N]."""
    return nats_to_bits(nats_per_dim(nll_nats, num_dims))
