"""Grading speed: seconds per submission of `arlab-grade autograde` for each assignment, with
1 and 2 workers, trusted (sandboxed runs + black-box parts) vs the in-kernel run alone.

Each assignment is released into a throwaway course and graded with copies of its solution
(``quick``: one assignment, one submission per worker, 1 worker only).
"""
from __future__ import annotations

import copy
import tempfile
import time
from pathlib import Path

from benchmarks.common import Record

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
    from arlab.grading.autograde import autograde

    rec = Record("grading", command, notes=f"device {device}; seconds per submission")
    assignments = [a for a in ASSIGNMENTS if (ROOT / "solutions" / a).is_dir()]
    assignments = assignments[1:2] if quick else assignments
    for assignment in assignments:
        for workers in (1,) if quick else (1, 2):
            copies = workers if quick else 2 * workers
            for trusted in (True, False):
                with tempfile.TemporaryDirectory(prefix="arlab-bench-grading-") as tmp:
                    course = _course(Path(tmp), assignment, copies)
                    start = time.perf_counter()
                    results = autograde(course, assignment, workers=workers, wall_seconds=900,
                                        trusted_grading=trusted, report=lambda line: None)
                    seconds = (time.perf_counter() - start) / copies
                full = sum(r.total == r.max_total for r in results)
                mode = "trusted" if trusted else "in_kernel"
                rec.add(f"{assignment}_{mode}_{workers}w_seconds_per_submission", seconds, "s",
                        f"{full}/{copies} solutions scored full marks")
    return rec


if __name__ == "__main__":
    main(quick=True)
