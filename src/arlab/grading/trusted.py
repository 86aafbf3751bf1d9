"""The trusted half of black-box grading, run by the parent (a process that never runs
student code): which test cells the assignment's table grades, the cell list the probe run gets,
and the judging of the arrays the probe run left.

The in-kernel nbgrader run can be fooled by the student's own code (it runs the tests in the
student's kernel); here the student's code only produces numbers, carried out in ``.npz``
loaded with ``allow_pickle=False``, and the reference comparison runs in this process.
"""
from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

from arlab.grading import contract

MAX_ARRAYS_BYTES = 256 * 2**20


@dataclass(frozen=True)
class Verdict:
    """One test cell's trusted result."""

    passed: bool
    message: str


def parts_for(assignment: str, test_cells: set[str]) -> dict[str, object]:
    """Test cell -> :class:`~arlab.grading.parts.Part`, for the cells of ``test_cells`` that
    ``assignment``'s table (in the registry :mod:`arlab.grading.homework`) grades."""
    from arlab.grading import homework

    return homework.parts_for(assignment, test_cells)


def probe_cells(submitted, source, tests: set[str], locked: set[str]) -> list[str]:
    """The code the probe run executes, in the submission's order: its cells without the
    test cells, each read-only given cell replaced by the source's (so edits there do not
    count; a given cell the student deleted is run where the source has it first)."""
    given = {contract.grade_id(c): c.source for c in source.cells
             if c.cell_type == "code" and contract.grade_id(c) in locked - tests}
    seen: set[str] = set()
    cells = []
    for cell in submitted.cells:
        if cell.get("cell_type") != "code":
            continue
        gid = contract.grade_id(cell)
        if gid in tests:
            continue
        if gid in given:
            if gid in seen:
                continue
            seen.add(gid)
            cells.append(given[gid])
        else:
            cells.append(cell.get("source", ""))
    missing = [g for g in given if g not in seen]
    return [given[g] for g in missing] + cells


def write_spec(box: Path, cells: list[str], parts: list[str], cell_timeout: int | None) -> Path:
    out = box / "out"
    spec = {"cells": cells, "parts": parts, "out": str(out), "cell_timeout": cell_timeout}
    path = box / "probe.json"
    path.write_text(json.dumps(spec))
    return path


def has_results(out: Path) -> bool:
    """Whether a probe run left results in ``out`` (a real folder and file, no links)."""
    path = out / "arrays.npz"
    return not out.is_symlink() and out.is_dir() and path.is_file() and not path.is_symlink()


def _load(out: Path, parts: dict[str, object], why: str):
    """(arrays per cell, error message per cell) from what the probe run left."""
    import numpy as np

    arrays: dict[str, dict[str, np.ndarray]] = {cell: {} for cell in parts}
    errors: dict[str, str] = {}
    path = out / "arrays.npz"
    if not has_results(out):
        return None, {c: f"the probe run left no results ({why or 'it ended early'})"
                      for c in parts}
    if path.stat().st_size > MAX_ARRAYS_BYTES:
        return None, {c: "the probe results are too large" for c in parts}
    try:
        with np.load(path, allow_pickle=False) as data:
            for key in data.files:
                cell, _, name = key.partition("::")
                if cell in arrays and name:
                    value = data[key]
                    if value.dtype.kind not in "biuf":
                        raise ValueError(f"{key} is not numeric")
                    arrays[cell][name] = value
        raw = json.loads((out / "errors.json").read_text(encoding="utf-8", errors="replace"))
        if isinstance(raw, dict):
            errors = {str(k): str(v)[:4000] for k, v in raw.items() if k in parts}
    except (OSError, ValueError, zipfile.BadZipFile, json.JSONDecodeError) as err:
        return None, {c: f"the probe results could not be read ({err})" for c in parts}
    return arrays, errors


def judge(out: Path, parts: dict[str, object], why: str = "") -> dict[str, Verdict]:
    """Run every part's ``judge`` on the arrays in ``out`` (written by the probe run)."""
    import torch

    from arlab.grading.checks import GradingError

    arrays, errors = _load(out, parts, why)
    verdicts = {}
    for cell, part in parts.items():
        if arrays is None or cell in errors:
            message = errors.get(cell, "no result").removeprefix("GradingError: ")
            verdicts[cell] = Verdict(False, message)
            continue
        try:
            with torch.random.fork_rng():
                torch.manual_seed(0)
                part.judge(arrays[cell])
            verdicts[cell] = Verdict(True, f"{cell}: passed")
        except GradingError as err:
            verdicts[cell] = Verdict(False, str(err))
        except Exception as err:  # noqa: BLE001 - arrays of the wrong shape or kind
            verdicts[cell] = Verdict(False, f"the values checked have the wrong form "
                                            f"({type(err).__name__}: {str(err)[:2000]})")
    return verdicts
