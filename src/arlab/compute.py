"""How much compute a run may spend: ``smoke`` (tests, seconds), ``cpu`` (a laptop, minutes),
``gpu`` (full runs). Notebooks look their sizes up with :func:`by_budget`; nothing else in a
notebook changes between budgets."""
from __future__ import annotations

import os
from typing import TypeVar

import torch

BUDGETS = ("smoke", "cpu", "gpu")
T = TypeVar("T")


def device() -> torch.device:
    """The best device here: cuda, then mps, then cpu (``ARLAB_DEVICE`` overrides)."""
    forced = os.environ.get("ARLAB_DEVICE")
    if forced:
        return torch.device(forced)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def budget() -> str:
    """The current budget: ``ARLAB_BUDGET`` if set, else ``gpu`` on CUDA and ``cpu`` otherwise."""
    value = os.environ.get("ARLAB_BUDGET", "").strip().lower()
    if value:
        if value not in BUDGETS:
            raise ValueError(
                f"ARLAB_BUDGET={value!r} is not a budget; use one of {', '.join(BUDGETS)}."
            )
        return value
    return "gpu" if device().type == "cuda" else "cpu"


def by_budget(smoke: T, cpu: T, gpu: T, which: str | None = None) -> T:
    """Pick the value for the current budget, e.g. ``epochs = by_budget(1, 5, 20)``."""
    return {"smoke": smoke, "cpu": cpu, "gpu": gpu}[which or budget()]
