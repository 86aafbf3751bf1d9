"""Real digits: sklearn's 8x8 digits and MNIST (the shipped 5,000-image subset by default,
full MNIST through torchvision on request), binarised or as 2-bit colour."""
from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from arlab.data.base import LevelData, data_dir, split

DIGIT_CLASSES = [str(i) for i in range(10)]
DOWNLOAD_ENV = "ARLAB_MNIST_DOWNLOAD"


def _load_npz(name: str) -> tuple[Tensor, Tensor]:
    path = data_dir() / name
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing. It ships with the repository; run "
                                "`git checkout data/` or set ARLAB_DATA to the folder holding it.")
    with np.load(path) as f:
        return torch.from_numpy(f["images"].astype(np.int64)), torch.from_numpy(
            f["labels"].astype(np.int64))


def digits(threshold: float = 0.5, seed: int = 0) -> LevelData:
    """sklearn's 1,797 8x8 digits as binary images ``[N, 1, 8, 8]`` (grey/16 > threshold),
    split 80/20 with ``seed``."""
    x, y = _load_npz("digits8x8.npz")
    x = (x.float() / 16 > threshold).long().unsqueeze(1)
    tr, te, ytr, yte = split(x, y, 0.2, seed)
    return LevelData("digits", tr, te, 2, ytr, yte, list(DIGIT_CLASSES),
                     source="sklearn load_digits (UCI optical digits), binarised at "
                            f"{threshold}")


def dynamic_binarize(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Grey levels 0..255 -> binary levels, each pixel 1 with probability grey/255."""
    return torch.bernoulli(x.float() / 255.0, generator=generator).long()


def _shipped_mnist() -> tuple[Tensor, Tensor, Tensor, Tensor, str]:
    x, y = _load_npz("mnist_subset.npz")
    tr, te, ytr, yte = split(x.unsqueeze(1), y, 0.2, seed=0)
    return tr, te, ytr, yte, "the shipped subset of real MNIST (5,000 images in data/)"


def _torchvision_mnist(root: Path, download: bool):
    from torchvision.datasets import MNIST

    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(10)  # a closed network fails in seconds, not minutes
    try:
        tr = MNIST(str(root), train=True, download=download)
        te = MNIST(str(root), train=False, download=download)
    finally:
        socket.setdefaulttimeout(old)
    return (tr.data.long().unsqueeze(1), te.data.long().unsqueeze(1), tr.targets.long(),
            te.targets.long(), f"full MNIST via torchvision ({root})")


def mnist_grey(download: bool | None = None, root: str | Path | None = None,
               verbose: bool = True):
    """MNIST grey levels 0..255: (train, test, train_labels, test_labels, source).

    The shipped subset unless ``download=True`` or ``ARLAB_MNIST_DOWNLOAD=1``; then full MNIST
    from ``root`` (default ``data/downloads``, ignored by git), downloading if needed, with
    the shipped subset as the fallback when that fails."""
    if download is None:
        download = os.environ.get(DOWNLOAD_ENV, "") not in ("", "0")
    root = Path(root) if root else data_dir() / "downloads"
    result = None
    if download or (root / "MNIST" / "raw").exists():
        try:
            result = _torchvision_mnist(root, download)
        except Exception as err:  # offline, or a broken cache: fall back, and say so
            if verbose:
                print(f"arlab: full MNIST unavailable ({type(err).__name__}: "
                      f"{str(err).splitlines()[0] if str(err) else ''}); using the shipped subset.")
    if result is None:
        result = _shipped_mnist()
    if verbose:
        print(f"arlab: MNIST data = {result[4]}")
    return result


def mnist(binarize: str = "threshold", download: bool | None = None,
          root: str | Path | None = None, seed: int = 0, verbose: bool = True) -> LevelData:
    """Binary MNIST ``[N, 1, 28, 28]`` with labels.

    ``binarize="threshold"`` (default): a pixel is 1 when grey/255 > 0.5. ``"dynamic"``:
    ``train`` keeps the grey levels and ``transform`` draws a fresh Bernoulli image each time
    (``fit`` applies it per batch); the test set is binarised once with ``seed``."""
    tr, te, ytr, yte, source = mnist_grey(download, root, verbose)
    if binarize == "threshold":
        tr, te, transform = (tr > 127).long(), (te > 127).long(), None
    elif binarize == "dynamic":
        g = torch.Generator().manual_seed(seed)
        te, transform = dynamic_binarize(te, g), dynamic_binarize
    else:
        raise ValueError(f"binarize must be 'threshold' or 'dynamic', got {binarize!r}")
    return LevelData(f"mnist_{binarize}", tr, te, 2, ytr, yte, list(DIGIT_CLASSES),
                     source=source, transform=transform)


def color_mnist(seed: int = 0, download: bool | None = None, verbose: bool = True) -> LevelData:
    """Colour MNIST: 3 channels of 2 bits (levels 0..3), ``[N, 3, 28, 28]``.

    Each digit gets a random foreground and background colour (distinct, per image, from
    ``seed``); a pixel mixes them by its grey level and rounds to the 4 levels."""
    tr, te, ytr, yte, source = mnist_grey(download, None, verbose)
    g = torch.Generator().manual_seed(seed)

    def paint(x: Tensor) -> Tensor:
        n = x.shape[0]
        fg = torch.randint(0, 4, (n, 3, 1, 1), generator=g)
        bg = torch.randint(0, 4, (n, 3, 1, 1), generator=g)
        same = (fg == bg).all(1, keepdim=True)
        fg = torch.where(same, 3 - bg, fg)                 # the digit must stay visible
        a = x.float() / 255.0
        return torch.round(bg * (1 - a) + fg * a).long().clamp(0, 3)

    return LevelData("color_mnist", paint(tr), paint(te), 4, ytr, yte, list(DIGIT_CLASSES),
                     source=source + ", coloured in code (2 bits per channel)")
