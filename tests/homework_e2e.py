"""What the three homework test files share: the source notebook and its cells, the bug and
different-answer fixtures, the solution's answers, the points expected when some test cells
fail, and one whole autograde run of several submissions through the grading tool (real
nbgrader) with the exported CSV checked exercise by exercise."""
from __future__ import annotations

import contextlib
import copy
import csv
import importlib.util
import io
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from arlab.grading import contract
from arlab.grading.course import Course, read_notebook, write_notebook

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "grader" / "nbgrader_config.py"
FIXTURES = Path(__file__).parent / "fixtures" / "homework"


@dataclass(frozen=True)
class Homework:
    """One assignment's source notebook and test fixtures."""

    notebook: object
    cells: dict            # grade id -> code cell with nbgrader metadata, in notebook order
    test_points: dict      # test cell grade id -> points
    our_cells: list        # the test cells whose parts the assignment's module registers
    bugs: dict             # bug name -> {"exercise", "source", "fails"}
    combined: list         # the bugs of the one-bug-per-exercise submission
    different: dict        # exercise -> a correct answer written differently

    def failures(self, ns: dict, cells: list[str] | None = None) -> dict[str, str]:
        """Test cell -> the GradingError message, for every part in ``cells`` (default: all
        of the assignment's) that fails on the namespace ``ns``."""
        return failures(ns, self.our_cells if cells is None else cells)

    def public_failures(self, ns: dict, cells: list[str] | None = None) -> dict[str, str]:
        """Test cell -> the error of its public part (the code before the hidden tests)."""
        found = {}
        with contextlib.redirect_stdout(io.StringIO()):
            for gid in self.our_cells if cells is None else cells:
                public = self.cells[gid].source.split("### BEGIN HIDDEN TESTS")[0]
                try:
                    exec(compile(code(public), f"<public {gid}>", "exec"), ns)
                except Exception as err:  # noqa: BLE001
                    found[gid] = f"{type(err).__name__}: {err}"
        return found

    def check_parts(self, exercises: list[str]) -> None:
        """Every test cell has its part with its points, of the right exercise, and every
        exercise has a registered reference."""
        from arlab.grading.homework import PARTS, REFERENCES

        assert sorted(self.our_cells) == sorted(self.test_points)
        for cell in self.our_cells:
            assert PARTS[cell].points == self.test_points[cell], cell
            assert PARTS[cell].exercise == contract.exercise_of(cell, exercises)
        assert list(contract.exercises(self.notebook.cells)) == exercises
        for name in exercises:
            assert name in REFERENCES, f"no reference registered for {name}"


def failures(ns: dict, cells: list[str]) -> dict[str, str]:
    """Test cell -> the GradingError message, for each of ``cells`` whose part fails on the
    namespace ``ns`` (graded as a hidden test cell grades it)."""
    from arlab.grading.checks import GradingError
    from arlab.grading import grade

    found = {}
    with contextlib.redirect_stdout(io.StringIO()):
        for cell in cells:
            try:
                grade(cell, ns)
            except GradingError as err:
                found[cell] = str(err)
    return found


def fixture(hw: str, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"{hw}_{name}", FIXTURES / hw / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load(hw: str) -> Homework:
    """``hw``'s solution notebook and fixtures, and the test cells its table grades."""
    from arlab.grading.homework import ASSIGNMENTS

    notebook = read_notebook(ROOT / "solutions" / hw / f"{hw}.ipynb")
    cells = {c.metadata.nbgrader["grade_id"]: c for c in notebook.cells
             if c.cell_type == "code" and "nbgrader" in c.metadata}
    bugs = fixture(hw, "bugs")
    return Homework(
        notebook, cells,
        {gid: float(c.metadata.nbgrader["points"]) for gid, c in cells.items()
         if contract.is_test(c)},
        list(ASSIGNMENTS[hw].parts),
        bugs.BUGS, bugs.COMBINED, fixture(hw, "different").DIFFERENT)


def code(source: str) -> str:
    """A cell's code as the kernel would run it, shell (``!``) lines made no-ops."""
    return "\n".join(line[:len(line) - len(line.lstrip())] + "pass"
                     if line.lstrip().startswith("!") else line for line in source.splitlines())


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
    from arlab.grading.autograde import Settings, autograde
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

    results = autograde(course, hw, Settings(workers=2, wall_seconds=600),
                        report=lambda line: None)
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
