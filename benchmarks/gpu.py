"""The GPU section, one prepared run (``make bench-gpu``): every image model trained for more
epochs on the shipped 4,000-image MNIST split, its test nats/dim, training and sampling
throughput in images/s, and a PNG grid of its samples in ``benchmarks/gpu/``.

Sampling uses each model's own ``sample``: cached where the model has a cache (WaveNet's
queues, the Transformer's keys and values, the RNNs' state), one full pass per pixel otherwise.
Without a GPU, RESULTS.md says the section has not been measured; nothing else depends on it.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import torch

from arlab import data as D
from arlab.train import evaluate, fit
from arlab.viz.plots import sample_grid
from benchmarks.common import HERE, Record, fmt, sync, table
from benchmarks.models import IMAGE_MODELS, build

EPOCHS = 20
SAMPLES = 64
OUT = HERE / "gpu"                                            # the PNGs of a real run
QUICK_OUT = HERE.parent / "build" / "bench-quick" / "gpu"     # quick runs: never committed


def main(quick: bool = False, device: str = "cpu", command: str = "", models=None) -> Record:
    dev = torch.device(device)
    if dev.type != "cuda" and not quick:
        raise SystemExit("the gpu section measures a GPU: run it with --device cuda "
                         "(make bench-gpu), or with --quick to check it on a CPU.")
    data = D.shapes(n_train=128, n_test=32, size=8) if quick else D.mnist(verbose=False)
    epochs, n = (1, 4) if quick else (EPOCHS, SAMPLES)
    out = QUICK_OUT if quick else OUT
    out.mkdir(parents=True, exist_ok=True)
    rec = Record("gpu", command,
                 f"{len(data.train):,} training images, {epochs} epochs at batch 64, Adam lr "
                 f"1e-3, bf16 autocast where native, on {device}; sampling: {n} images in one "
                 f"batch with each model's own sampler; samples in {os.path.relpath(out, HERE.parent)}/",
                 merge=bool(models))
    for name in models or IMAGE_MODELS:
        model = build(name, data.data_shape, data.levels)
        hist = fit(model, data.train, None, epochs=epochs, device=dev, progress=False)
        nats = evaluate(model, data.test, 256, dev)
        rec.add(f"{name}.nats_per_dim", nats, "nats/dim")
        rec.add(f"{name}.train_images_per_second", epochs * len(data.train) / hist.seconds,
                "img/s")
        sync(dev)
        start = time.perf_counter()
        with torch.no_grad():
            samples = model.sample(n, generator=torch.Generator(dev).manual_seed(0))
        sync(dev)
        rec.add(f"{name}.sample_images_per_second", n / (time.perf_counter() - start), "img/s")
        fig = sample_grid(samples, data.levels,
                          title=f"{name}: {n} samples after {epochs} epochs "
                                f"({nats:.4f} nats/dim)")
        fig.savefig(Path(out) / f"{name}.png", dpi=90)
    return rec


def summarize(section: str, values: dict) -> list[str]:
    """One row per model: test nats/dim, training and sampling images/s, its samples."""
    def get(key):
        return values.get(f"{section}.{key}", {}).get("value")

    rows = [[name, fmt(get(f"{name}.nats_per_dim")),
             fmt(get(f"{name}.train_images_per_second"), 3),
             fmt(get(f"{name}.sample_images_per_second"), 3), f"![{name}](gpu/{name}.png)"]
            for name in IMAGE_MODELS if get(f"{name}.nats_per_dim") is not None]
    return table(["model", "test nats/dim", "train img/s", "sample img/s", "samples"], rows)
