"""The students' self-check, without nbgrader (works on Colab):

    python -m arlab.grading.selfcheck NOTEBOOK [--exercise NAME]

runs the notebook in a fresh kernel and reports, per exercise, which public test cells pass
and the first line of each failure; the exit code is 0 only when every test passes. From
Python: ``arlab.grading.selfcheck.run(path, exercise=None) -> dict``.

The rules are the grader's: a test cell fails only by raising (warnings and progress bars on
stderr are fine), and an answer that imports arlab's references fails with the reason. The
hidden tests are not in your notebook; the grader runs them too.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import nbformat

from arlab.grading import contract
from arlab.grading.imports import refusals
from arlab.grading.integrity import repair_metadata


class SelfCheckError(Exception):
    """The notebook cannot be checked; the message says what to do."""


def _reference_for(path: Path) -> Path | None:
    """The released notebook of the same name in a ``starter/`` folder above the notebook or
    the working directory (a clone of the course repository)."""
    names = {path.name, path.name.removeprefix("Copy of ")}
    for base in [path.resolve().parent, *path.resolve().parents, Path.cwd(), *Path.cwd().parents]:
        for name in names:
            found = sorted((base / "starter").glob(f"*/{name}"))
            if found:
                return found[0]
    return None


def _load(path: Path, reference: str | Path | None):
    nb = nbformat.read(str(path), as_version=4)
    if any(contract.grade_id(c) for c in nb.cells):
        return nb
    ref = Path(reference) if reference else _reference_for(path)
    if ref is None:
        raise SelfCheckError(
            f"{path} has lost the metadata that marks its answer and test cells (this happens "
            "after some Colab round trips). Pass --reference starter/<hw>/<notebook>.ipynb from "
            "the course repository, or paste your answers into a fresh copy of the starter.")
    repaired, _ = repair_metadata(nb, nbformat.read(str(ref), as_version=4))
    if not repaired:
        raise SelfCheckError(f"{path} does not match {ref}; check that it is the same homework.")
    return nb


def _first_failure(cell) -> str | None:
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            lines = (out.get("evalue") or "").strip().splitlines()
            if out.get("ename") == "NotImplementedError":
                return "NotImplementedError: not written yet (the answer cell still raises)"
            return f"{out.get('ename')}: {lines[0]}" if lines else str(out.get("ename"))
    return None


def run(path: str | Path, exercise: str | None = None, timeout: int | None = None,
        reference: str | Path | None = None) -> dict:
    """Run the notebook and check its public tests.

    Returns ``{"notebook": str, "passed": bool, "exercises": {name: {"passed": bool,
    "tests": [{"cell": grade_id, "passed": bool, "message": str | None}], "refused":
    [reasons]}}}``. With ``exercise``, only the cells up to that exercise's last test run.
    ``timeout``: seconds per cell (default ``ARLAB_CELL_TIMEOUT`` or 300).
    """
    from nbclient import NotebookClient

    path = Path(path)
    nb = _load(path, reference)
    tests = contract.exercises(nb.cells)
    if exercise is not None and exercise not in tests:
        raise SelfCheckError(f"no exercise {exercise!r} in {path.name}; it has "
                             f"{', '.join(tests) or 'none'}.")
    chosen = [exercise] if exercise else list(tests)
    wanted = {t for name in chosen for t in tests[name]}
    last = max((i for i, c in enumerate(nb.cells) if contract.grade_id(c) in wanted), default=-1)
    nb.cells = nb.cells[:last + 1]
    saved = os.environ.get("ARLAB_BUDGET")
    os.environ.setdefault("ARLAB_BUDGET", "smoke")
    try:
        NotebookClient(nb, timeout=timeout or int(os.environ.get("ARLAB_CELL_TIMEOUT", "300")),
                       kernel_name="python3", allow_errors=True,
                       resources={"metadata": {"path": str(path.resolve().parent)}}).execute()
    finally:
        if saved is None:
            os.environ.pop("ARLAB_BUDGET", None)
    refused = refusals(nb.cells, tests)
    cells = {contract.grade_id(c): c for c in nb.cells if contract.grade_id(c)}
    report: dict = {"notebook": str(path), "exercises": {}}
    for name in chosen:
        results = []
        for test in tests[name]:
            message = _first_failure(cells[test])
            results.append({"cell": test, "passed": message is None, "message": message})
        report["exercises"][name] = {
            "passed": all(r["passed"] for r in results) and name not in refused,
            "tests": results, "refused": refused.get(name, [])}
    report["passed"] = all(e["passed"] for e in report["exercises"].values())
    return report


def format_report(report: dict) -> str:
    lines = [f"self-check of {report['notebook']}"]
    for name, result in report["exercises"].items():
        lines.append(f"  {'PASS' if result['passed'] else 'FAIL'}  {name}")
        for test in result["tests"]:
            mark = "ok" if test["passed"] else "failed"
            detail = f": {test['message']}" if test["message"] else ""
            lines.append(f"        {test['cell']} {mark}{detail}")
        for reason in result["refused"]:
            lines.append(f"        refused by the grader: {reason}")
    lines.append("all public tests pass" if report["passed"] else
                 "some tests fail (the grader also runs hidden tests)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m arlab.grading.selfcheck",
        description="Run a homework notebook and report which public tests pass.")
    parser.add_argument("notebook", help="your homework notebook (.ipynb)")
    parser.add_argument("--exercise", help="check only this exercise (runs the cells up to it)")
    parser.add_argument("--timeout", type=int, help="seconds per cell (default 300)")
    parser.add_argument("--reference", help="the released notebook, when yours lost its "
                                            "metadata (starter/<hw>/<notebook>.ipynb)")
    args = parser.parse_args(argv)
    if not Path(args.notebook).is_file():
        print(f"selfcheck: no notebook at {args.notebook}; pass the path of your .ipynb file",
              file=sys.stderr)
        return 2
    try:
        report = run(args.notebook, args.exercise, args.timeout, args.reference)
    except SelfCheckError as err:
        print(f"selfcheck: {err}", file=sys.stderr)
        return 2
    print(format_report(report))
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
