"""Sampling speed: naive vs cached WaveNet generation, and the naive time per image of every
image model (one forward pass per position)."""
from __future__ import annotations

import torch

from arlab.models import WaveNet
from benchmarks.common import Record, timed
from benchmarks.models import IMAGE_MODELS, build


def wavenet_cache(rec: Record, length_side: int = 28, batch: int = 16, channels: int = 64,
                  device: str = "cpu") -> None:
    """The notebook's model: 64 channels, dilations 1..512, images flattened to 784."""
    dilations = tuple(2 ** i for i in range(10))
    torch.manual_seed(0)
    model = WaveNet((1, length_side, length_side), 2, channels=channels,
                    dilations=dilations).to(device).eval()
    t: dict[str, float] = {}
    dev = torch.device(device)
    with timed(t, "naive", dev):
        a = model.sample(batch, generator=torch.Generator(device).manual_seed(0), cached=False)
    with timed(t, "cached", dev):
        b = model.sample(batch, generator=torch.Generator(device).manual_seed(0), cached=True)
    size = f"{channels} channels, dilations 1..512, batch {batch}, length {length_side ** 2}"
    rec.add("wavenet_naive_seconds", t["naive"], "s", size)
    rec.add("wavenet_cached_seconds", t["cached"], "s", size)
    rec.add("wavenet_cached_speedup", t["naive"] / t["cached"], "x",
            "same samples" if torch.equal(a, b) else "SAMPLES DIFFER")


def naive_per_image(rec: Record, side: int = 28, batch: int = 4, device: str = "cpu",
                    models=None) -> None:
    dev = torch.device(device)
    for name in models or IMAGE_MODELS:
        model = build(name, (1, side, side), 2).to(dev).eval()
        t: dict[str, float] = {}
        with timed(t, "s", dev):
            kwargs = {"cached": False} if "wavenet" in name else {}
            model.sample(batch, generator=torch.Generator(device).manual_seed(0), **kwargs)
        rec.add(f"naive_seconds_per_image.{name}", t["s"] / batch, "s/image",
                f"{side}x{side} binary, batch {batch}")


def multiscale_vs_pixelcnn(rec: Record, side: int = 28, batch: int = 4, channels: int = 32,
                           device: str = "cpu") -> None:
    """Notebook 11's multiscale sampler (factor 2 and 4) against naive PixelCNN sampling."""
    from arlab.models import PixelCNN
    from arlab.models.multiscale import MultiscalePixelCNN

    dev = torch.device(device)
    torch.manual_seed(0)
    models = {"pixelcnn": PixelCNN((1, side, side), 2, channels=channels, layers=4)}
    for f in (2, 4):
        models[f"multiscale_f{f}"] = MultiscalePixelCNN((1, side, side), 2, factor=f,
                                                        channels=channels, layers=4)
    t: dict[str, float] = {}
    for name, model in models.items():
        model = model.to(dev).eval()
        with timed(t, name, dev):
            model.sample(batch, generator=torch.Generator(device).manual_seed(0))
        passes = int(torch.unique(model.order()).numel())
        rec.add(f"multiscale.{name}_seconds_per_image", t[name] / batch, "s/image",
                f"{passes} forward passes, {side}x{side}, {channels} channels")
    for f in (2, 4):
        rec.add(f"multiscale.f{f}_speedup", t["pixelcnn"] / t[f"multiscale_f{f}"], "x",
                "naive PixelCNN time / multiscale time")


def main(quick: bool = False, device: str = "cpu", command: str = "") -> Record:
    rec = Record("sampling", command, "quick mode (small sizes)" if quick else "")
    if quick:
        wavenet_cache(rec, length_side=6, batch=2, channels=8)
        naive_per_image(rec, side=6, batch=2, models=["pixelcnn", "wavenet"])
        multiscale_vs_pixelcnn(rec, side=8, batch=2, channels=8)
    else:
        wavenet_cache(rec, device=device)
        naive_per_image(rec, device=device)
        multiscale_vs_pixelcnn(rec, device=device)
    return rec
