"""Toy distributions: 1-D levels (with and without holes) and a 2-D picture (a smiley)."""
from __future__ import annotations

import numpy as np
import torch

from arlab.data.base import LevelData, split


def toy_1d(kind: str = "gaussian", holes: bool = False, seed: int = 0) -> LevelData:
    """A digitised 1-D distribution, data of shape ``[N, 1]``.

    ``kind="gaussian"``: d = 20 levels, 1,000 samples. ``kind="mixture"``: d = 100 levels,
    10,000 samples from a mixture of three Gaussians. Split 80 % train / 20 % test.
    ``holes=True`` removes a few bands of levels from the training set only, so a histogram
    gives them zero probability while the test set still contains them.
    """
    rng = np.random.default_rng(seed)
    if kind == "gaussian":
        d, n = 20, 1000
        z = rng.normal(0.45 * d, 0.15 * d, n)
    elif kind == "mixture":
        d, n = 100, 10000
        comp = rng.choice(3, size=n, p=[0.3, 0.45, 0.25])
        mu, sd = np.array([0.22, 0.5, 0.8]) * d, np.array([0.06, 0.08, 0.04]) * d
        z = rng.normal(mu[comp], sd[comp])
    else:
        raise ValueError(f"kind must be 'gaussian' or 'mixture', got {kind!r}")
    x = torch.from_numpy(np.clip(np.round(z), 0, d - 1).astype(np.int64)).unsqueeze(1)
    train, test, _, _ = split(x, None, 0.2, seed)
    name = f"toy_1d_{kind}"
    if holes:
        holes_at = _hole_levels(d, train, rng)
        train = train[~torch.isin(train[:, 0], holes_at)]
        name += "_holes"
    return LevelData(name, train, test, d, source=f"generated in code (seed {seed})")


def _hole_levels(d: int, train: torch.Tensor, rng) -> torch.Tensor:
    """A few bands of well-populated levels (so the test set surely hits them)."""
    counts = torch.bincount(train[:, 0], minlength=d)
    popular = torch.nonzero(counts > counts.float().mean()).squeeze(1).numpy()
    width = max(1, d // 50)
    starts = rng.choice(popular[: len(popular) - width], size=3, replace=False)
    return torch.from_numpy(np.unique(np.concatenate([np.arange(s, s + width) for s in starts])))


def smiley_picture(d: int = 32) -> np.ndarray:
    """A d x d picture of a smiley face (float weights >= 0), made in code."""
    r, c = np.mgrid[0:d, 0:d] / (d - 1) * 2 - 1          # rows and columns in [-1, 1]
    rr = np.hypot(r, c)
    face = np.exp(-((rr - 0.85) / 0.05) ** 2)             # the outline
    eyes = sum(np.exp(-(np.hypot(r + 0.3, c - s) / 0.1) ** 2) for s in (-0.35, 0.35))
    mouth = np.exp(-((np.hypot(r + 0.1, c) - 0.55) / 0.05) ** 2) * (r > 0.15)
    return face + 1.5 * eyes + mouth + 0.002


def smiley_2d(d: int = 32, n_train: int = 10000, n_test: int = 2500, seed: int = 0) -> LevelData:
    """Pairs ``(x1, x2)`` = (row, column) drawn from the smiley picture: data ``[N, 2]``."""
    p = smiley_picture(d).ravel()
    p = torch.from_numpy(p / p.sum())
    g = torch.Generator().manual_seed(seed)
    idx = torch.multinomial(p, n_train + n_test, replacement=True, generator=g)
    x = torch.stack([idx // d, idx % d], dim=1)
    return LevelData("smiley_2d", x[:n_train], x[n_train:], d,
                     source=f"sampled from a picture made in code (seed {seed})")
