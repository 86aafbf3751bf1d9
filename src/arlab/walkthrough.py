"""Execute the walkthrough notebooks and write them as HTML pages.

    python -m arlab.walkthrough --out build/walkthrough [--budget cpu] [--in-place] [NOTEBOOK ...]

Each notebook runs in its own folder with the current budget (``ARLAB_BUDGET``); the time each
took is written to ``timings.json`` beside the pages. ``--in-place`` (``make walkthrough``)
also writes each executed notebook back over its source, with the shipped checkpoints loaded,
and records the hash of its code cells (:func:`code_hash`) so that a test can tell when the
committed outputs no longer belong to the committed code.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import time
from pathlib import Path

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
REPO = "arlab-course/arlab"
COLAB = f"https://colab.research.google.com/github/{REPO}/blob/main/"


def _static_pages():
    """Exported pages show a widget's static twin (its PNG) instead of the live widget, so
    they read the same offline and without a widget manager."""
    from traitlets.config import Config

    priority = ["image/png", "application/vnd.jupyter.widget-view+json", "text/html",
                "text/markdown", "image/svg+xml", "text/latex", "image/jpeg", "text/plain"]
    return Config({"NbConvertBase": {"display_data_priority": priority}})


def notebooks() -> list[Path]:
    """The walkthrough notebooks in teaching order."""
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def code_hash(nb) -> str:
    """sha256 of a notebook's code cells, in order: what its outputs were computed from."""
    sources = [cell.source for cell in nb.cells if cell.cell_type == "code"]
    return hashlib.sha256(json.dumps(sources).encode()).hexdigest()


def execute(path: Path, budget: str | None = None, timeout: int = 1800):
    """Run the notebook at ``path`` in a fresh kernel; returns the executed notebook."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    env_budget = os.environ.get("ARLAB_BUDGET")
    if budget:
        os.environ["ARLAB_BUDGET"] = budget
    # the kernel draws with Jupyter's inline backend, as a reader's does (not a forced Agg)
    backend = os.environ.pop("MPLBACKEND", None)
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        if backend is not None:
            os.environ["MPLBACKEND"] = backend
        if budget:
            if env_budget is None:
                os.environ.pop("ARLAB_BUDGET", None)
            else:
                os.environ["ARLAB_BUDGET"] = env_budget
    return nb


# tqdm's text form of a bar, "MADE:  0%|          | 0/630 [00:00<?, ?it/s]"
_PROGRESS_BAR = re.compile(r"\d+%\|.*\| *\d+/\d+ \[")


def is_progress_bar(output) -> bool:
    """A progress-bar widget: saved, it shows only its first frame ("0%"), since the course's
    bars are transient (``leave=False``) and vanish from a live notebook when done."""
    data = output.get("data", {})
    return ("application/vnd.jupyter.widget-view+json" in data
            and bool(_PROGRESS_BAR.search("".join(data.get("text/plain", "")))))


def write_executed(nb, path: Path, budget: str) -> None:
    """Save an executed notebook over its source, stamped with its code hash and budget,
    without the progress bars' frozen first frames."""
    import nbformat

    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if not is_progress_bar(o)]
    nb.metadata.pop("widgets", None)   # live widget state: the static twins show the pictures
    nb.metadata["arlab"] = {"budget": budget, "code_sha256": code_hash(nb)}
    nbformat.write(nb, path)


def main(argv: list[str] | None = None) -> int:
    from nbconvert import HTMLExporter

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: all of notebooks/")
    parser.add_argument("--out", type=Path, default=Path("build/walkthrough"))
    parser.add_argument("--budget", choices=["smoke", "cpu", "gpu"], default=None)
    parser.add_argument("--in-place", action="store_true",
                        help="write each executed notebook over its source (checkpoints strict)")
    args = parser.parse_args(argv)
    if args.in_place:
        os.environ["ARLAB_CHECKPOINTS"] = "strict"
    static = _static_pages()
    args.out.mkdir(parents=True, exist_ok=True)
    timings_path = args.out / "timings.json"
    timings = json.loads(timings_path.read_text()) if timings_path.exists() else {}
    from arlab import budget

    used = args.budget or budget()
    for path in args.notebooks or notebooks():
        start = time.perf_counter()
        nb = execute(path.resolve(), args.budget)
        seconds = time.perf_counter() - start
        if args.in_place:
            write_executed(nb, path, used)
        html, _ = HTMLExporter(config=static).from_notebook_node(nb)
        (args.out / f"{path.stem}.html").write_text(html)
        timings.setdefault(used, {})[path.stem] = round(seconds, 1)
        print(f"{path.stem}: {seconds:.0f} s ({used}) -> {args.out / (path.stem + '.html')}")
    timings_path.write_text(json.dumps(timings, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
