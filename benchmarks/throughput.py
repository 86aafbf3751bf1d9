"""Training throughput: images per second per model, and the options that may matter
(channels_last, torch.compile, bf16 autocast), each measured against the plain step."""
from __future__ import annotations

import time

import torch

from benchmarks.common import Record, fmt, sync, table
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


OPTIONS = ("bf16", "channels_last", "compile")


def main(quick: bool = False, device: str = "cpu", command: str = "", models=None,
         options: tuple[str, ...] | None = None) -> Record:
    """Images per second of a training step for every model, and each option's speed-up over
    the plain step (options are skipped in quick mode)."""
    dev = torch.device(device)
    side, batch, steps = (8, 8, 2) if quick else (28, 64, 5 if dev.type == "cpu" else 20)
    options = () if quick else (OPTIONS if options is None else options)
    rec = Record("throughput", command,
                 f"{side}x{side} binary images, batch {batch}, {steps} timed steps after one "
                 f"warm-up, on {device}; speed-up = option's img/s / plain img/s",
                 merge=bool(models))
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 2, (batch, 1, side, side), generator=g).to(dev)
    failed = []
    for name in models or IMAGE_MODELS:
        base = images_per_second(build(name, (1, side, side), 2), x, steps, dev)
        rec.add(f"{dev.type}.{name}.images_per_second", base, "img/s")
        for option in options:
            try:
                rate = images_per_second(build(name, (1, side, side), 2), x, steps, dev,
                                         **{option: True})
            except Exception as err:  # noqa: BLE001 - an option a model cannot use is a finding
                failed.append(f"{name} {option}: {type(err).__name__}")
                continue
            finally:
                torch._dynamo.reset()
            rec.add(f"{dev.type}.{name}.{option}_speedup", rate / base, "x")
    if failed:
        rec.notes += "; failed: " + ", ".join(failed)
    return rec


def summarize(section: str, values: dict) -> list[str]:
    """Images per second per model and device, and each option's speed-up."""
    rows = []
    devices = sorted({k.split(".")[1] for k in values})
    for dev in devices:
        for name in IMAGE_MODELS:
            base = values.get(f"{section}.{dev}.{name}.images_per_second", {}).get("value")
            if base is None:
                continue
            rows.append([dev, name, fmt(base, 3)] + [
                fmt(values.get(f"{section}.{dev}.{name}.{o}_speedup", {}).get("value"), 3)
                for o in OPTIONS])
    return table(["device", "model", "img/s", *(f"{o} speed-up" for o in OPTIONS)], rows)
