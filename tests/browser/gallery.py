"""Copy one small before/after picture per widget from a browser-test run into docs/widgets/.

    .venv/bin/python tests/browser/gallery.py [build/browser]
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
# widget picture -> (case, the control whose redraw is shown)
GALLERY = {
    "inverse_cdf": ("01_inverse_cdf", "slider"),
    "histogram_bins": ("01_histogram_bins", "slider"),
    "made": ("05_made", "dropdown"),
    "wavenet": ("06_wavenet", "dropdown"),
    "receptive_field_explorer": ("10_explorer_side_by_side", "toggle"),
    "sampling_stepper": ("07_pixelcnn_stepper", "button"),
}
WIDTH = 720


def _small(path: Path) -> Image.Image:
    image = Image.open(path).convert("RGB")
    return image.resize((WIDTH, round(image.height * WIDTH / image.width)), Image.LANCZOS)


def main(shots: Path, out: Path = ROOT / "docs" / "widgets") -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, (case, control) in GALLERY.items():
        before = _small(shots / f"{case}_0_first.png")
        after = _small(next(shots.glob(f"{case}_*_{control}.png")))
        gap = np.full((12, WIDTH, 3), 255, dtype=np.uint8)
        both = np.concatenate([np.asarray(before), gap, np.asarray(after)])
        # A 64-colour palette keeps each picture small (figures have few colours).
        Image.fromarray(both).quantize(64).save(out / f"{name}.png", optimize=True)
        print(f"{out / name}.png: {(out / f'{name}.png').stat().st_size // 1024} KB")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "build" / "browser")
