"""What every benchmark shares: timing, the machine, and the record of results.

Results are merged into ``results.json`` (one key per measurement, e.g.
``sampling.wavenet_cached_speedup``) and ``RESULTS.md`` is rewritten from it, so running one
section keeps the numbers of the others."""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
RESULTS_JSON = HERE / "results.json"
RESULTS_MD = HERE / "RESULTS.md"


def machine() -> dict[str, str]:
    """Where the numbers were measured."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"cpu": cpu, "cores": str(os.cpu_count()), "torch": torch.__version__,
            "python": platform.python_version(),
            "threads": str(torch.get_num_threads())}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


@contextmanager
def timed(out: dict, key: str, device: torch.device | None = None):
    """``with timed(t, "x"): ...`` stores the seconds the block took in ``t["x"]``."""
    if device is not None:
        sync(device)
    start = time.perf_counter()
    yield
    if device is not None:
        sync(device)
    out[key] = time.perf_counter() - start


class Record:
    """Measurements of one benchmark section: ``rec.add("sampling.x", 3.2, "s", "note")``."""

    def __init__(self, section: str, command: str, notes: str = "", merge: bool = False):
        """``merge``: a partial run (some models, some datasets): keep the section's other
        numbers and add this command to its record instead of replacing them."""
        self.section, self.command, self.notes, self.merge = section, command, notes, merge
        self.values: dict[str, dict] = {}

    def add(self, key: str, value: float, unit: str = "", note: str = "") -> None:
        if not key.startswith(self.section + "."):
            key = f"{self.section}.{key}"
        self.values[key] = {"value": round(float(value), 6), "unit": unit, "note": note}
        print(f"  {key} = {value:.4g} {unit} {note}".rstrip(), flush=True)

    def rename(self, section: str) -> None:
        """Record under another section (e.g. ``quality_cuda`` for numbers from a GPU)."""
        old, self.section = self.section, section
        self.values = {section + k[len(old):]: v for k, v in self.values.items()}

    def save(self) -> None:
        data = json.loads(RESULTS_JSON.read_text()) if RESULTS_JSON.exists() else {}
        data = {k: v for k, v in data.items() if not k.startswith("_")}
        meta = json.loads(RESULTS_JSON.read_text()).get("_sections", {}) \
            if RESULTS_JSON.exists() else {}
        old = meta.get(self.section)
        if not self.merge or old is None:
            for key in [k for k in data if k.startswith(self.section + ".")]:
                del data[key]
        data.update(self.values)
        command = self.command
        if self.merge and old is not None and old["command"] != command:
            command = f"{old['command']}`, then `{command}"
        meta[self.section] = {"date": _dt.date.today().isoformat(), "command": command,
                              "machine": machine(), "notes": self.notes}
        out = {"_sections": meta, **dict(sorted(data.items()))}
        RESULTS_JSON.write_text(json.dumps(out, indent=1) + "\n")
        write_markdown(out)


NO_GPU = ["## gpu_cuda", "",
          "Not measured: no run recorded here had a GPU (every section above ran on the CPU",
          "it names). On a machine with a CUDA GPU, `make bench-gpu` records this section:",
          "every image model trained for 20 epochs on the shipped MNIST split, its test",
          "nats/dim, training and sampling throughput in images/s, and its samples as PNG",
          "in `benchmarks/gpu/`.", ""]


def write_markdown(data: dict) -> None:
    """RESULTS.md from results.json: one table per section with its machine and command."""
    lines = ["# Benchmark results", "",
             "Written by `make bench` (`python -m benchmarks.run`); the same numbers are in",
             "`results.json`. Timings are figures for people, measured on the machine named in",
             "each section; compare them only as ratios within one section. Sections measured",
             "on a GPU (`--device cuda`) are recorded as `<section>_cuda`.", ""]
    for section, meta in sorted(data["_sections"].items()):
        m = meta["machine"]
        where = f"{m['cpu']}, {m['cores']} cores, torch {m['torch']}" + (
            f", {m['gpu']}" if "gpu" in m else "")
        lines += [f"## {section}", "", f"- date: {meta['date']}", f"- machine: {where}",
                  f"- command: `{meta['command']}`"]
        if meta.get("notes"):
            lines += [f"- notes: {meta['notes']}"]
        values = {k: v for k, v in data.items() if k.startswith(section + ".")}
        lines += [""] + summary(section, values)
        lines += ["| measurement | value | unit | note |", "|---|---|---|---|"]
        for key, v in data.items():
            if key.startswith(section + "."):
                lines.append(f"| `{key}` | {v['value']:.4g} | {v['unit']} | {v['note']} |")
        lines.append("")
    if not any(section.endswith("_cuda") for section in data["_sections"]):
        lines += NO_GPU
    RESULTS_MD.write_text("\n".join(lines))


def summary(section: str, values: dict) -> list[str]:
    """The section module's ``summarize(section, values)`` tables (markdown lines), if any:
    the same numbers arranged for reading, above the full list."""
    import importlib

    try:
        module = importlib.import_module(f"benchmarks.{section.split('_')[0]}")
    except ImportError:
        return []
    summarize = getattr(module, "summarize", None)
    return summarize(section, values) + [""] if summarize and values else []


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    """Markdown table lines."""
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(row) + " |" for row in rows)]


def fmt(value: float | None, digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}g}"


def git_revision() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, cwd=HERE, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def command_line(argv: list[str] | None = None) -> str:
    return "python -m " + " ".join(["benchmarks.run", *(sys.argv[1:] if argv is None else argv)])
