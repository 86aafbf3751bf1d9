"""What the three homework test files share: the solution's answers, the points expected when
some test cells fail, and one whole autograde run of several submissions through the grading
tool (real nbgrader) with the exported CSV checked exercise by exercise."""
from __future__ import annotations

import copy
import csv
from pathlib import Path

from arlab.grading import contract
from arlab.grading.course import Course, read_notebook, write_notebook

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "grader" / "nbgrader_config.py"


def solution_answers(cells: dict) -> dict[str, str]:
    """Answer cell grade id -> the solution's code, markers removed."""
    keep = ("### BEGIN SOLUTION", "### END SOLUTION")
    return {gid: "\n".join(line for line in cell.source.splitlines()
                           if line.strip() not in keep)
            for gid, cell in cells.items() if contract.is_answer(cell)}


def expected_points(test_points: dict[str, float], exercises: list[str],
                    broken: list[str]) -> dict[str, float]:
    """Points per exercise when the test cells in ``broken`` fail."""
    return {name: sum(p for cell, p in test_points.items()
                      if contract.exercise_of(cell, exercises) == name and cell not in broken)
            for name in exercises}


def check_end_to_end(tmp_path: Path, hw: str, cells: dict, test_points: dict[str, float],
                     exercises: list[str], bugs: dict, combined_bugs: list[str],
                     different: dict[str, str], total: float, buggy_total: float) -> None:
    """Release ``hw``, grade the solution, the untouched starter, one submission with a bug in
    every exercise and a correct one written differently in ONE autograde run, and check the
    exported points exactly (the swap rule keeps the bugs' costs separate)."""
    from arlab.grading.autograde import autograde
    from arlab.grading.release import release
    from arlab.grading.reports import export

    course = Course.at(tmp_path / "course")
    release(hw, course, ROOT / "solutions", config=CONFIG)
    released = read_notebook(course.release(hw) / f"{hw}.ipynb")
    combined = {bugs[b]["exercise"]: bugs[b]["source"] for b in combined_bugs}
    assert sorted(combined) == sorted(exercises)  # a bug in every exercise
    submissions = {"solution": solution_answers(cells), "starter": {}, "buggy": combined,
                   "different": different}
    for student, answers in submissions.items():
        nb = copy.deepcopy(released)
        for cell in nb.cells:
            if contract.is_answer(cell) and contract.grade_id(cell) in answers:
                cell.source = answers[contract.grade_id(cell)].strip("\n")
        write_notebook(nb, course.submitted(student, hw) / f"{hw}.ipynb")

    results = autograde(course, hw, workers=2, wall_seconds=600, report=lambda line: None)
    reasons = {r.student: r.reasons for r in results}
    export(course, hw, tmp_path / "grades.csv")
    with open(tmp_path / "grades.csv", newline="") as fh:
        rows = {row["student"]: row for row in csv.DictReader(fh)}

    full = expected_points(test_points, exercises, [])
    broken = [cell for b in combined_bugs for cell in bugs[b]["fails"]]
    expected = {"solution": full, "different": full, "starter": dict.fromkeys(exercises, 0.0),
                "buggy": expected_points(test_points, exercises, broken)}
    assert sorted(rows) == sorted(expected)
    for student, points in expected.items():
        row = rows[student]
        got = {name: float(row[name]) for name in exercises}
        assert got == points, (student, got, reasons[student])
        assert float(row["total"]) == sum(points.values())
        assert float(row["max_total"]) == sum(full.values()) == total
    assert sum(expected["buggy"].values()) == buggy_total
