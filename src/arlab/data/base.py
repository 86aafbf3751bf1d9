"""The container every dataset comes in, and the helpers shared by the loaders."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor


@dataclass
class LevelData:
    """A dataset as integer levels with a train/test split.

    ``train``/``test``: ``LongTensor[N, *data_shape]`` of levels 0..levels-1 (images NCHW,
    sequences N x L). ``transform``: applied by ``arlab.train.fit`` to every training batch
    (dynamic binarisation keeps grey levels in ``train`` and draws fresh binary images each
    time). ``source``: a one-line note saying where the data came from.
    """

    name: str
    train: Tensor
    test: Tensor
    levels: int
    train_labels: Tensor | None = None
    test_labels: Tensor | None = None
    classes: list[str] | None = None
    source: str = ""
    transform: Callable[[Tensor], Tensor] | None = field(default=None, repr=False)

    @property
    def data_shape(self) -> tuple[int, ...]:
        return tuple(self.test.shape[1:])

    @property
    def num_dims(self) -> int:
        return self.test[0].numel()

    @property
    def num_classes(self) -> int | None:
        return len(self.classes) if self.classes else None

    def __repr__(self) -> str:
        return (f"LevelData({self.name!r}: train {tuple(self.train.shape)}, test "
                f"{tuple(self.test.shape)}, levels={self.levels}, classes={self.num_classes})")


def data_dir() -> Path:
    """Where the shipped data lives: ``ARLAB_DATA`` if set, else the repository's ``data/``."""
    env = os.environ.get("ARLAB_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[3] / "data"


def split(x: Tensor, labels: Tensor | None, test_fraction: float, seed: int):
    """Shuffle with ``seed`` and split into (train, test, train_labels, test_labels)."""
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(x.shape[0], generator=g)
    n_test = int(round(x.shape[0] * test_fraction))
    te, tr = perm[:n_test], perm[n_test:]
    if labels is None:
        return x[tr], x[te], None, None
    return x[tr], x[te], labels[tr], labels[te]
