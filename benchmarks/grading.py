"""Grading speed: seconds per submission of `arlab-grade autograde` for each assignment, with
1 and 2 workers, trusted (sandboxed runs + black-box parts) vs the in-kernel run alone.

Each assignment is released into a throwaway course and graded with copies of its solution
after one unrecorded warm-up run with as many workers (``quick``: one assignment, one
submission, 1 worker, no warm-up).
"""
from __future__ import annotations

import copy
import tempfile
import time
from pathlib import Path

from benchmarks.common import Record, fmt, table

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENTS = ("hw1_foundations", "hw2_masked_models", "hw3_pixel_models")


def _course(tmp: Path, assignment: str, copies: int):
    from arlab.grading import contract
    from arlab.grading.course import Course, read_notebook, write_notebook
    from arlab.grading.release import release

    course = Course.at(tmp / assignment)
    release(assignment, course, ROOT / "solutions", config=ROOT / "grader" / "nbgrader_config.py")
    source = read_notebook(ROOT / "solutions" / assignment / f"{assignment}.ipynb")
    answers = {contract.grade_id(c): c.source for c in source.cells if contract.is_answer(c)}
    released = read_notebook(course.release(assignment) / f"{assignment}.ipynb")
    for k in range(copies):
        nb = copy.deepcopy(released)
        for cell in nb.cells:
            if contract.is_answer(cell):
                cell.source = answers.get(contract.grade_id(cell), cell.source)
        write_notebook(nb, course.submitted(f"s{k}", assignment) / f"{assignment}.ipynb")
    return course


def main(quick: bool = False, device: str = "cpu", command: str = "") -> Record:
    """``device`` is recorded only: grading runs the kernels on the CPU."""
    from arlab.grading.autograde import Settings, autograde

    rec = Record("grading", command, notes=f"device {device}; seconds per submission (wall "
                 "time / submissions); copies of the solution, 2 per worker, after a warm-up")
    assignments = [a for a in ASSIGNMENTS if (ROOT / "solutions" / a).is_dir()]
    assignments = assignments[1:2] if quick else assignments
    for assignment in assignments:
        for workers in (1,) if quick else (1, 2):
            copies = workers if quick else 2 * workers
            if not quick:  # a first run pays for cold caches (imports, concurrent kernels)
                with tempfile.TemporaryDirectory(prefix="arlab-bench-grading-") as tmp:
                    autograde(_course(Path(tmp), assignment, workers), assignment,
                              Settings(workers=workers), report=lambda line: None)
            for trusted in (True, False):
                with tempfile.TemporaryDirectory(prefix="arlab-bench-grading-") as tmp:
                    course = _course(Path(tmp), assignment, copies)
                    start = time.perf_counter()
                    results = autograde(course, assignment,
                                        Settings(workers=workers, wall_seconds=900,
                                                 trusted_grading=trusted),
                                        report=lambda line: None)
                    seconds = (time.perf_counter() - start) / copies
                full = sum(r.total == r.max_total for r in results)
                mode = "trusted" if trusted else "in_kernel"
                rec.add(f"{assignment}_{mode}_{workers}w_seconds_per_submission", seconds, "s",
                        f"{full}/{copies} solutions scored full marks")
    return rec


def summarize(section: str, values: dict) -> list[str]:
    """Seconds per submission, in-kernel vs trusted, per assignment and worker count."""
    def get(assignment, mode, workers):
        return values.get(f"{section}.{assignment}_{mode}_{workers}w_seconds_per_submission",
                          {}).get("value")

    rows = []
    for assignment in ASSIGNMENTS:
        row = [assignment]
        for workers in (1, 2):
            kernel, trusted = get(assignment, "in_kernel", workers), get(assignment, "trusted",
                                                                          workers)
            ratio = trusted / kernel if kernel and trusted else None
            row += [fmt(kernel, 3), fmt(trusted, 3), fmt(ratio, 3)]
        if any(row[1:]):
            rows.append(row)
    return table(["assignment", "in-kernel 1w (s)", "trusted 1w (s)", "trusted/in-kernel",
                  "in-kernel 2w (s)", "trusted 2w (s)", "trusted/in-kernel"], rows)


if __name__ == "__main__":
    main(quick=True)
