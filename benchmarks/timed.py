"""Quality at equal time: every image model's test nats/dim after 60 s and after 600 s of
training on the 4,000-image MNIST split, beside two peers written from the published CS294-158
homework (``benchmarks/peers.py``), trained on the same data for the same time.

Time counts training steps only (``fit(max_seconds=...)``); the test passes in between are not
counted. ``--workers 2`` trains two models at a time, one thread each, with every peer beside
its course counterpart, so that the two of a pair share the machine alike.
"""
from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import torch

from arlab import data as D
from arlab.train import evaluate, fit
from benchmarks.common import Record, fmt, table
from benchmarks.models import IMAGE_MODELS, build, parameters
from benchmarks.peers import PEERS, TRAINING, build_peer

BUDGETS = (60, 600)          # seconds of training
QUICK_BUDGETS = (1, 2)
COURSE_TRAINING = dict(batch_size=64, lr=1e-3, clip_grad=1.0)   # fit's defaults
# peers first, each beside its counterpart, so that with two workers a pair trains together
ORDER = ("peer_pixelcnn", "pixelcnn", "peer_made", "made",
         *(m for m in IMAGE_MODELS if m not in ("pixelcnn", "made")))


def _data(quick: bool):
    if quick:
        d = D.shapes(n_train=256, n_test=64, size=8)
        return d, "shapes 8x8 (256 train, 64 test)"
    d = D.mnist(verbose=False)
    return d, f"mnist ({len(d.train):,} train, {len(d.test):,} test)"


def train_for(name: str, quick: bool, budgets, threads: int, device: str = "cpu") -> dict:
    """Train one model for the times in ``budgets`` (cumulative seconds of training) and
    measure its test nats/dim at each; runs in a worker process or in this one."""
    torch.set_num_threads(threads)
    data, _ = _data(quick)
    if name in PEERS:
        model, settings = build_peer(name, data.data_shape, data.levels), TRAINING
    else:
        model, settings = build(name, data.data_shape, data.levels), COURSE_TRAINING
    opt = torch.optim.Adam(model.parameters(), lr=settings["lr"])
    out = {"parameters": parameters(model), "batch": settings["batch_size"], "points": []}
    seconds, steps = 0.0, 0
    for i, budget in enumerate(budgets):
        hist = fit(model, data.train, None, epochs=10**6, optimizer=opt, seed=i,
                   max_seconds=budget - seconds, device=device, progress=False, **settings)
        seconds += hist.seconds
        steps += len(hist.train_steps)
        out["points"].append({"budget": budget, "seconds": seconds, "epochs":
                              steps / hist.steps_per_epoch,
                              "nats_per_dim": evaluate(model, data.test, 256, device)})
        print(f"  {name}: {seconds:.0f} s, {steps} steps, "
              f"{out['points'][-1]['nats_per_dim']:.4f} nats/dim", flush=True)
    return out


def _alone(names: list[str], workers: int) -> str:
    """The models that trained with a core to spare: the last ones when they do not fill a
    round of workers."""
    rest = len(names) % workers if workers > 1 else 0
    return f" ({', '.join(names[-rest:])} last, alone)" if rest else ""


def main(quick: bool = False, device: str = "cpu", command: str = "", models=None,
         workers: int = 1) -> Record:
    budgets = QUICK_BUDGETS if quick else BUDGETS
    names = [n for n in ORDER if not models or n in models]
    _, described = _data(quick)
    threads = torch.get_num_threads() if workers == 1 else max(1, (os.cpu_count() or 2) // workers)
    rec = Record("timed", command,
                 f"{described}; each model trained for {' s and '.join(map(str, budgets))} s "
                 f"(training steps only) on {device}, {workers} at a time with {threads} "
                 f"thread(s) each{_alone(names, workers)}; course models: batch "
                 f"{COURSE_TRAINING['batch_size']}, Adam lr {COURSE_TRAINING['lr']:g}, "
                 f"gradients clipped at 1; peers as their "
                 f"homework trains them: batch {TRAINING['batch_size']}, Adam lr "
                 f"{TRAINING['lr']:g}, no clipping", merge=bool(models))
    args = [(n, quick, budgets, threads, device) for n in names]
    if workers == 1:
        results = [train_for(*a) for a in args]
    else:
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            results = list(pool.map(train_for, *zip(*args)))
    for name, res in zip(names, results):
        rec.add(f"{name}.parameters", res["parameters"], "")
        rec.add(f"{name}.batch", res["batch"], "images")
        for p in res["points"]:
            at = f"{p['budget']:g}s"
            rec.add(f"{name}.{at}.nats_per_dim", p["nats_per_dim"], "nats/dim")
            rec.add(f"{name}.{at}.seconds", p["seconds"], "s")
            rec.add(f"{name}.{at}.epochs", p["epochs"], "epochs")
    return rec


def summarize(section: str, values: dict) -> list[str]:
    """One row per model: epochs done and test nats/dim at each time, and the gap to the best
    peer at that time (negative: better than every peer); then the verdict per time."""
    def get(key):
        return values.get(f"{section}.{key}", {}).get("value")

    budgets = sorted({float(k.split(".")[2][:-1]) for k in values
                      if k.endswith(".nats_per_dim")})
    names = [n for n in ORDER if get(f"{n}.parameters") is not None]
    best = {}
    for b in budgets:
        peers = [get(f"{p}.{b:g}s.nats_per_dim") for p in PEERS if p in names]
        best[b] = min(peers) if peers else None
    rows = []
    for n in names:
        row = [n + (" (peer)" if n in PEERS else ""), f"{int(get(f'{n}.parameters')):,}"]
        for b in budgets:
            nats = get(f"{n}.{b:g}s.nats_per_dim")
            gap = "" if n in PEERS or best[b] is None else f"{nats - best[b]:+.4f}"
            row += [fmt(get(f"{n}.{b:g}s.epochs"), 3), fmt(nats), gap]
        rows.append(row)
    header = ["model", "parameters"]
    for b in budgets:
        header += [f"epochs in {b:g} s", f"nats/dim at {b:g} s", "vs best peer"]
    lines = table(header, rows)
    for b in budgets:
        if best[b] is None:
            continue
        behind = [f"`{n}` (+{get(f'{n}.{b:g}s.nats_per_dim') - best[b]:.4f})" for n in names
                  if n not in PEERS and get(f"{n}.{b:g}s.nats_per_dim") > best[b]]
        course = [n for n in names if n not in PEERS]
        lines += ["", f"At {b:g} s: {len(course) - len(behind)} of {len(course)} course models "
                      f"match or beat the best peer ({best[b]:.4f} nats/dim)"
                      + (f"; behind it: {', '.join(behind)}." if behind else ".")]
    return lines
