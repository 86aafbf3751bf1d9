"""Trained weights shipped with the course, so that a notebook on a laptop shows trained
models at once: ``fit(model, train, test, ..., checkpoint="07_pixelcnn/mnist")``.

``checkpoints/<notebook>/<name>.pt`` holds the weights, how the model was built, the fit
settings, the budget and seed it was trained at, its training History and its test nats/dim;
``checkpoints/data/<sha>.npz`` holds each test set once (compressed), so that a test can rebuild
every model, evaluate it and compare with the recorded number. ``make checkpoints``
(``python -m arlab.checkpoints``) writes them by running the notebooks at the ``cpu`` budget.

Whether a notebook loads or trains is one variable at its top, ``TRAIN_YOURSELF``
(:func:`train_yourself`: False on a CPU, True on a GPU). ``ARLAB_CHECKPOINTS`` steers the
machinery: ``write`` (train and save), ``resume`` (keep each checkpoint that still fits its
model, fit settings and recorded number; train and save the others: finishing an interrupted
``make checkpoints``), ``strict`` (a checkpoint that does not fit is an error, for regenerating
the committed notebooks), unset (a checkpoint that does not fit is skipped with a notice, and
the model trains).
"""
from __future__ import annotations

import argparse
import hashlib
import importlib
import io
import json
import os
from dataclasses import asdict
from pathlib import Path

import torch
from torch import Tensor, nn

ROOT = Path(__file__).resolve().parents[2] / "checkpoints"
BUDGET = "cpu"              # the budget the shipped weights are trained at
MAX_BYTES = 25 * 2 ** 20    # everything under checkpoints/ together
HALF_ABOVE = 2 ** 20        # float32 bytes above which a checkpoint is stored in float16
MODE_ENV = "ARLAB_CHECKPOINTS"
CELL_HOURS = 4              # one training cell may take this long on a slow, shared machine
TRAIN_ENV = "ARLAB_TRAIN_YOURSELF"


class CheckpointError(RuntimeError):
    """A shipped checkpoint does not belong to the code or data that asked for it."""


def train_yourself() -> bool:
    """The default of a notebook's ``TRAIN_YOURSELF``: train on a GPU, load the shipped trained
    weights elsewhere. ``ARLAB_TRAIN_YOURSELF=1`` or ``0`` overrides."""
    forced = os.environ.get(TRAIN_ENV, "").strip()
    if forced:
        return forced not in ("0", "false", "False", "no")
    from arlab.compute import device

    return device().type == "cuda"


def mode() -> str:
    value = os.environ.get(MODE_ENV, "").strip().lower()
    if value not in ("", "write", "resume", "strict"):
        raise ValueError(f"{MODE_ENV}={value!r}: use 'write', 'resume', 'strict' or leave it "
                         "unset.")
    return value


def path_of(name: str) -> Path:
    return ROOT / f"{name}.pt"


def fingerprint(data) -> str:
    """sha256 of a data set ``x`` or ``(x, labels)``: its shapes, dtypes and values."""
    h = hashlib.sha256()
    for t in (data if isinstance(data, tuple) else (data,)):
        t = t.detach().cpu().contiguous()
        h.update(f"{tuple(t.shape)}{t.dtype}".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def _save_data(data) -> str:
    """Store a test set once under ``data/<sha>.npz``; returns its sha."""
    import numpy as np

    sha = fingerprint(data)
    path = ROOT / "data" / f"{sha[:16]}.npz"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        x, labels = data if isinstance(data, tuple) else (data, None)
        arrays = {"x": x.cpu().numpy().astype(np.uint8 if int(x.max()) < 256 else np.int64)}
        if labels is not None:
            arrays["labels"] = labels.cpu().numpy().astype(np.int64)
        np.savez_compressed(path, **arrays)
    return sha


def load_data(sha: str, like: dict) -> Tensor | tuple[Tensor, Tensor]:
    """The test set stored under ``sha``, with the dtypes it had when it was recorded."""
    import numpy as np

    with np.load(ROOT / "data" / f"{sha[:16]}.npz") as f:
        x = torch.from_numpy(f["x"]).to(getattr(torch, like["x_dtype"]))
        data = (x, torch.from_numpy(f["labels"])) if "labels" in f else x
    if fingerprint(data) != sha:
        raise CheckpointError(f"checkpoints/data/{sha[:16]}.npz does not hold the data it is "
                              "named after; run `make checkpoints` again.")
    return data


def _shapes(state: dict) -> dict[str, tuple[int, ...] | str]:
    return {k: tuple(v.shape) if isinstance(v, Tensor) else type(v).__name__
            for k, v in state.items()}


def save(name: str, model: nn.Module, history, test, settings: dict) -> Path:
    """Write ``model``'s weights and what is needed to rebuild and judge them."""
    from arlab import budget
    from arlab.train import evaluate

    args, kwargs = getattr(model, "init_args", (None, None))
    if args is None:
        raise CheckpointError(f"{type(model).__name__} does not record how it was built; only "
                              "arlab models (ARModel subclasses) can be checkpointed.")
    x_test = test[0] if isinstance(test, tuple) else test
    meta = {
        "name": name, "budget": budget(), "seed": settings.get("seed", 0),
        "class": f"{type(model).__module__}.{type(model).__qualname__}",
        "args": list(args), "kwargs": dict(kwargs),
        "settings": {k: v for k, v in settings.items() if isinstance(v, (int, float, str, bool))
                     or v is None},
        "history": asdict(history),
        "test_sha": _save_data(test), "x_dtype": str(x_test.dtype).removeprefix("torch."),
        "test_nats_per_dim": history.final_test_nats_per_dim,
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    state = {k: v.detach().cpu().clone() if isinstance(v, Tensor) else v   # v: extra state
             for k, v in model.state_dict().items()}
    meta["rebuilt"] = _rebuilt_buffers(meta, state, model)
    state = {k: v for k, v in state.items() if k not in meta["rebuilt"]}
    if sum(v.numel() * 4 for v in state.values() if isinstance(v, Tensor)) > HALF_ABOVE:
        # large models are stored in float16; the number recorded is what the stored weights give
        state = {k: v.half() if isinstance(v, Tensor) and v.dtype == torch.float32 else v
                 for k, v in state.items()}
        _load_into(model, state, meta["rebuilt"])
        meta["test_nats_per_dim"] = evaluate(model, test, settings.get("eval_batch_size", 256),
                                             None, settings.get("conditional", False))
        meta["stored_dtype"] = "float16"
    path = path_of(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save({"meta": meta, "state_dict": state}, buffer)
    path.write_bytes(buffer.getvalue())
    return path


def _rebuilt_buffers(meta: dict, state: dict, model: nn.Module) -> list[str]:
    """Buffers that building the model again and loading the rest reproduces exactly (MADE's
    masks and degrees, PixelCNN's masks): not stored. Only integer and 0/1 buffers qualify,
    since they are built, not computed: a float buffer computed by arithmetic could differ in
    its last bit on another CPU, so it is always stored."""
    buffers = {name for name, _ in model.named_buffers()} & state.keys()
    with torch.random.fork_rng(devices=[]):
        fresh = build(meta)
    fresh.load_state_dict({k: v for k, v in state.items() if k not in buffers}, strict=False)
    again = fresh.state_dict()
    return sorted(k for k in buffers if k in again and _built(state[k])
                  and again[k].shape == state[k].shape and bool((again[k] == state[k]).all()))


def _built(t: Tensor) -> bool:
    """An integer, boolean or 0/1 tensor: the same on every machine that builds it."""
    return not t.is_floating_point() or bool(((t == 0) | (t == 1)).all())


def _load_into(model: nn.Module, state: dict[str, Tensor], rebuilt: list[str]) -> None:
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or set(missing) != set(rebuilt):
        raise CheckpointError(f"the checkpoint does not fit this model: missing {missing}, "
                              f"unexpected {unexpected}")


def read(name_or_path: str | Path) -> dict:
    path = Path(name_or_path) if str(name_or_path).endswith(".pt") else path_of(str(name_or_path))
    return torch.load(path, map_location="cpu", weights_only=True)


def build(meta: dict) -> nn.Module:
    """A fresh model built exactly as the recorded one was (weights not loaded)."""
    module, _, cls = meta["class"].rpartition(".")
    return getattr(importlib.import_module(module), cls)(*meta["args"], **meta["kwargs"])


def tolerance(value: float, device: torch.device) -> float:
    """How far a re-evaluation may fall from the recorded test nats/dim: float32 rounding on
    another CPU moves it by ~1e-7; a GPU's kernels (CUDA's TF32 convolutions) by ~1e-4."""
    return (2e-5 if device.type == "cpu" else 1e-3) * max(1.0, abs(value))


def try_load(name: str, model: nn.Module, test, *, device, conditional: bool,
             eval_batch_size: int, verbose: bool = True, settings: dict | None = None):
    """The recorded History after loading the shipped weights into ``model``, or None (with a
    notice) when there is no checkpoint for this budget and model (and, given ``settings``,
    these fit settings). Raises CheckpointError when the weights do not give their recorded
    test nats/dim on the recorded test data."""
    from arlab import budget
    from arlab.train import History, evaluate

    strict = mode() == "strict"
    path = path_of(name)
    if not path.exists():
        return _skip(f"no trained weights at checkpoints/{name}.pt", strict, verbose)
    blob = read(path)
    meta, state = blob["meta"], blob["state_dict"]
    if meta["budget"] != budget():
        return _skip(f"the shipped weights for {name} are for the {meta['budget']!r} budget, "
                     f"this run is {budget()!r}", strict, verbose)
    if settings is not None and _training(meta["settings"]) != _training(settings):
        return _skip(f"checkpoints/{name}.pt was trained with other fit settings", strict,
                     verbose)
    own = {k: v for k, v in model.state_dict().items() if k not in meta["rebuilt"]}
    if _shapes(state) != _shapes(own):
        return _skip(f"checkpoints/{name}.pt holds another architecture than this model "
                     "(were its sizes changed?)", strict, verbose)
    _load_into(model, state, meta["rebuilt"])
    model.to(device).eval()
    here = evaluate(model, test, eval_batch_size, device, conditional)
    recorded = meta["test_nats_per_dim"]
    same_data = fingerprint(test) == meta["test_sha"]
    if same_data and not abs(here - recorded) <= tolerance(recorded, device):
        raise CheckpointError(
            f"checkpoints/{name}.pt gives {here:.6f} nats/dim on its own test data, but "
            f"{recorded:.6f} was recorded: the model's code changed since it was trained. Run "
            "`make checkpoints` to train it again, or set TRAIN_YOURSELF = True.")
    history = History(**meta["history"])
    where = "" if same_data else f"; {here:.4f} on this run's test data, which differ"
    if verbose or not same_data:
        print(f"loaded trained weights checkpoints/{name}.pt ({meta['budget']} budget, seed "
              f"{meta['seed']}, trained in {history.seconds:.0f} s): test {recorded:.4f} nats/dim"
              f"{where}")
    return history


def _training(settings: dict) -> dict:
    """The fit settings that decide the weights (not where they were computed)."""
    return {k: v for k, v in settings.items() if k not in ("device", "bf16")}


def _skip(reason: str, strict: bool, verbose: bool):
    if strict:
        raise CheckpointError(f"{reason}; run `make checkpoints`.")
    if verbose:
        print(f"{reason}: training here.")
    return None


def check(path: Path) -> tuple[float, float]:
    """Rebuild a checkpoint's model from its file alone, evaluate it on its stored test data
    on the CPU in float32; returns (measured, recorded) test nats/dim."""
    from arlab.train import evaluate

    blob = read(path)
    meta = blob["meta"]
    model = build(meta)
    _load_into(model, blob["state_dict"], meta["rebuilt"])
    data = load_data(meta["test_sha"], meta)
    settings = meta["settings"]
    measured = evaluate(model, data, settings.get("eval_batch_size", 256), "cpu",
                        settings.get("conditional", False))
    return measured, meta["test_nats_per_dim"]


def index() -> list[dict]:
    """One row per shipped checkpoint: name, budget, seed, parameters, test nats/dim, seconds."""
    rows = []
    for path in sorted(ROOT.glob("*/*.pt")):
        meta = read(path)["meta"]
        rows.append({"name": meta["name"], "budget": meta["budget"], "seed": meta["seed"],
                     "class": meta["class"].rpartition(".")[2], "parameters": meta["parameters"],
                     "test_nats_per_dim": round(meta["test_nats_per_dim"], 6),
                     "train_seconds": round(meta["history"]["seconds"], 1),
                     "bytes": path.stat().st_size})
    return rows


def total_bytes() -> int:
    return sum(p.stat().st_size for p in ROOT.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    """Train and write the checkpoints by executing the notebooks at the ``cpu`` budget."""
    from arlab.walkthrough import execute, notebooks, write_executed

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: all of notebooks/")
    parser.add_argument("--in-place", action="store_true",
                        help="also write each executed notebook (which trained its models) over "
                             "its source, as `make walkthrough` does")
    parser.add_argument("--resume", action="store_true",
                        help="keep the checkpoints that still fit (after an interrupted run) "
                             "and train only the others")
    args = parser.parse_args(argv)
    os.environ[MODE_ENV] = "resume" if args.resume else "write"
    failed = []
    for path in args.notebooks or notebooks():
        stem = path.stem
        for old in () if args.resume else (ROOT / stem).glob("*.pt"):
            old.unlink()
        print(f"{stem}: training at the {BUDGET} budget ...", flush=True)
        try:
            nb = execute(path.resolve(), BUDGET, timeout=CELL_HOURS * 3600)
            if args.in_place:
                write_executed(nb, path, BUDGET)
        except Exception as err:   # one broken notebook must not cost the others' training
            failed.append(stem)
            print(f"{stem} FAILED: {type(err).__name__}: {str(err)[-2000:]}", flush=True)
    live = {read(p)["meta"]["test_sha"][:16] for p in ROOT.glob("*/*.pt")}
    for data in (ROOT / "data").glob("*.npz"):
        if data.stem not in live:
            data.unlink()
    rows = index()
    (ROOT / "index.json").write_text(json.dumps(rows, indent=1) + "\n")
    size = total_bytes()
    print(f"{len(rows)} checkpoints, {size / 2 ** 20:.1f} MB in all (limit {MAX_BYTES >> 20} MB)")
    if failed:
        print("failed:", ", ".join(failed))
    return 0 if size <= MAX_BYTES and not failed else 1


if __name__ == "__main__":
    raise SystemExit(main())
