"""Training throughput: images per second per model, and the options that matter on a GPU
(channels_last, torch.compile, bf16 autocast)."""
from __future__ import annotations

import time

import torch

from benchmarks.common import Record, sync
from benchmarks.models import IMAGE_MODELS, build


def images_per_second(model, x, steps: int, device: torch.device, bf16: bool = False,
                      channels_last: bool = False, compile: bool = False) -> float:
    model = model.to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.float().contiguous(memory_format=torch.channels_last)
    if compile:  # compile forward itself: loss and log_prob call it
        model.forward = torch.compile(model.forward)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = model.loss(x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()  # warm-up (and compilation)
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return steps * x.shape[0] / (time.perf_counter() - start)


def main(quick: bool = False, device: str = "cpu", command: str = "", models=None) -> Record:
    dev = torch.device(device)
    side, batch, steps = (8, 8, 2) if quick else (28, 64, 5 if dev.type == "cpu" else 20)
    rec = Record("throughput", command,
                 f"{side}x{side} binary images, batch {batch}, {steps} timed steps after one "
                 f"warm-up, on {device}")
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 2, (batch, 1, side, side), generator=g).to(dev)
    for name in models or IMAGE_MODELS:
        base = images_per_second(build(name, (1, side, side), 2), x, steps, dev)
        rec.add(f"{dev.type}.{name}.images_per_second", base, "img/s")
        if dev.type == "cuda" and not quick:
            for option in ("bf16", "channels_last", "compile"):
                rate = images_per_second(build(name, (1, side, side), 2), x, steps, dev,
                                         **{option: True})
                rec.add(f"{dev.type}.{name}.{option}_speedup", rate / base, "x")
    return rec
