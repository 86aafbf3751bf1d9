"""A running record of one notebook's execution, so a grading run that is killed half way
still tells which cells ran and what they printed.

The executor writes ``<notebook>.start.ipynb`` (the sanitised notebook it is about to run) and
appends one JSON line per event to ``<notebook>.cells.jsonl``: ``{"started": i}`` before cell
``i`` runs and ``{"finished": i, "outputs": [...], "execution_count": n}`` after it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import nbformat


class ProgressLog:
    """Writer side, used inside the grading process."""

    def __init__(self, folder: str | Path, notebook: str):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.start_path = self.folder / f"{notebook}.start.ipynb"
        self.cells_path = self.folder / f"{notebook}.cells.jsonl"

    def begin(self, nb) -> None:
        nbformat.write(nb, str(self.start_path))
        self.cells_path.write_text("")

    def _append(self, record: dict) -> None:
        with open(self.cells_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")

    def started(self, index: int) -> None:
        self._append({"started": index})

    def finished(self, index: int, cell) -> None:
        self._append({"finished": index, "outputs": cell.get("outputs", []),
                      "execution_count": cell.get("execution_count")})


@dataclass
class Progress:
    """Reader side: the notebook as far as it ran."""

    notebook: object | None = None  # nbformat.NotebookNode, None when execution never began
    started: list[int] = field(default_factory=list)
    finished: dict[int, dict] = field(default_factory=dict)

    @property
    def running(self) -> int | None:
        """The cell that had started and not finished (where the run was cut), if any."""
        pending = [i for i in self.started if i not in self.finished]
        return pending[-1] if pending else None


def read_progress(folder: str | Path, notebook: str) -> Progress:
    folder = Path(folder)
    start = folder / f"{notebook}.start.ipynb"
    if not start.exists():
        return Progress()
    progress = Progress(notebook=nbformat.read(str(start), as_version=4))
    cells = folder / f"{notebook}.cells.jsonl"
    if cells.exists():
        for line in cells.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:  # a line cut by a kill
                continue
            if "started" in record:
                progress.started.append(int(record["started"]))
            elif "finished" in record:
                progress.finished[int(record["finished"])] = record
    return progress
