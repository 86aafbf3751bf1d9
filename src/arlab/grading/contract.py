"""The homework contract's naming rules, read from nbgrader cell metadata.

An exercise is an answer cell (nbgrader ``solution``) whose ``grade_id`` is the exercise name;
its test cells are ``test_<name>``, ``test_<name>_2``, ... and their points add up. Nothing here
imports nbgrader, so the students' self-check can use it on Colab.
"""
from __future__ import annotations

import re
from collections.abc import Iterable

_TEST_SUFFIX = re.compile(r"_\d+")


def nbgrader_meta(cell) -> dict:
    """The cell's nbgrader metadata (empty when there is none)."""
    return dict(cell.get("metadata", {}).get("nbgrader", {}) or {})


def grade_id(cell) -> str | None:
    return nbgrader_meta(cell).get("grade_id")


def is_answer(cell) -> bool:
    return bool(nbgrader_meta(cell).get("solution")) and grade_id(cell) is not None


def is_test(cell) -> bool:
    """A cell that earns points by running (an autograded test cell)."""
    meta = nbgrader_meta(cell)
    return bool(meta.get("grade")) and not meta.get("solution") and cell.get("cell_type") == "code"


def is_locked(cell) -> bool:
    """Read-only for the student: given code and tests (nbgrader restores them when grading)."""
    meta = nbgrader_meta(cell)
    return bool(meta.get("locked")) or is_test(cell)


def exercise_of(test_id: str, exercises: Iterable[str]) -> str | None:
    """The exercise a test cell belongs to: ``test_<name>`` or ``test_<name>_<k>``.

    The longest matching name wins, so ``test_made_masks`` goes to ``made_masks`` even when an
    exercise ``made`` exists.
    """
    best = None
    for name in exercises:
        prefix = f"test_{name}"
        rest = test_id[len(prefix):] if test_id.startswith(prefix) else None
        if rest is None or not (rest == "" or _TEST_SUFFIX.fullmatch(rest)):
            continue
        if best is None or len(name) > len(best):
            best = name
    return best


def exercises(cells: Iterable) -> dict[str, list[str]]:
    """Exercise name -> its test cells' grade ids, in notebook order, for one notebook's cells.

    Answer cells without any test cell (written answers graded by hand) are not exercises.
    """
    cells = list(cells)
    names = [grade_id(c) for c in cells if is_answer(c)]
    found: dict[str, list[str]] = {n: [] for n in names}
    for cell in cells:
        if is_test(cell):
            owner = exercise_of(grade_id(cell), names)
            if owner is not None:
                found[owner].append(grade_id(cell))
    return {name: tests for name, tests in found.items() if tests}
