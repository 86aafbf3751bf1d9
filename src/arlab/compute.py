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


def native_bf16(where: torch.device | str) -> bool:
    """Whether ``where`` computes in bfloat16 natively, so that bf16 autocast speeds training
    up: a CUDA GPU that supports it, or a CPU with AMX or AVX-512 BF16 instructions (on other
    CPUs bf16 is emulated and slower). Measured in ``benchmarks/RESULTS.md`` (throughput)."""
    where = torch.device(where)
    if where.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if where.type == "cpu":
        return bool(_cpu_flags() & {"amx_bf16", "avx512_bf16"})
    return False


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


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
