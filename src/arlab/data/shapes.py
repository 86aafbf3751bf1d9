"""Binary images of simple shapes with class labels, generated in code."""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from arlab.data.base import LevelData

SHAPE_CLASSES = ["square", "disk", "triangle", "line", "cross", "ring"]


def _draw(kind: int, size: int, rng) -> np.ndarray:
    r, c = np.mgrid[0:size, 0:size]
    s = rng.integers(size // 4, size // 2 + 1)             # half-size of the shape
    cy, cx = rng.integers(s, size - s, size=2) if s < size // 2 else (size // 2, size // 2)
    dy, dx = r - cy, c - cx
    name = SHAPE_CLASSES[kind]
    if name == "square":
        return (np.maximum(abs(dy), abs(dx)) <= s) & (np.maximum(abs(dy), abs(dx)) >= s - 1)
    if name == "disk":
        return np.hypot(dy, dx) <= s
    if name == "triangle":                                 # apex up, filled
        return (dy <= s) & (dy >= -s) & (abs(dx) <= (dy + s) / 2)
    if name == "line":
        a = rng.uniform(0, np.pi)
        dist = abs(dy * np.cos(a) - dx * np.sin(a))
        return (dist <= 0.6) & (np.hypot(dy, dx) <= s)
    if name == "cross":
        return ((abs(dy) <= 1) | (abs(dx) <= 1)) & (np.maximum(abs(dy), abs(dx)) <= s)
    rr = np.hypot(dy, dx)                                  # ring
    return (rr <= s) & (rr >= s - 1.5)


@lru_cache(maxsize=4)
def _generate(n: int, size: int, seed: int):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(SHAPE_CLASSES), size=n)
    images = np.stack([_draw(k, size, rng) for k in labels]).astype(np.int64)
    return torch.from_numpy(images).unsqueeze(1), torch.from_numpy(labels)


def shapes(n_train: int = 10000, n_test: int = 2000, size: int = 20, seed: int = 0) -> LevelData:
    """Binary ``size`` x ``size`` images ``[N, 1, size, size]`` of six kinds of shape
    (``SHAPE_CLASSES``) at random sizes and positions, with labels. Deterministic in ``seed``;
    train and test are drawn from independent streams."""
    if size < 8:
        raise ValueError(f"size must be at least 8 pixels, got {size}")
    xtr, ytr = _generate(n_train, size, seed)
    xte, yte = _generate(n_test, size, seed + 10_000)
    return LevelData("shapes", xtr.clone(), xte.clone(), 2, ytr.clone(), yte.clone(),
                     list(SHAPE_CLASSES), source=f"generated in code (seed {seed})")
