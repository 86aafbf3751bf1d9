"""The registry: every assignment's table, listed explicitly.

Each module here declares one assignment as data (``TABLE``: exercise, points, the parts that
grade it, see :class:`arlab.grading.parts.Assignment`). Nothing registers itself on import:
what grades a test cell is what these tables list.
"""
from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from arlab.grading.homework import hw1_foundations, hw2_masked_models, hw3_pixel_models
from arlab.grading.parts import Assignment, Part, run
from arlab.grading.references import REFERENCES

ASSIGNMENTS: dict[str, Assignment] = {
    "hw1_foundations": hw1_foundations.TABLE,
    "hw2_masked_models": hw2_masked_models.TABLE,
    "hw3_pixel_models": hw3_pixel_models.TABLE,
}


def _every_part() -> dict[str, Part]:
    found: dict[str, Part] = {}
    for table in ASSIGNMENTS.values():
        for cell, part in table.parts.items():
            if cell in found:
                raise ValueError(f"two assignments claim test cell {cell!r}")
            found[cell] = part
    return found


PARTS: dict[str, Part] = _every_part()  # test cell -> part, over every assignment

__all__ = ["ASSIGNMENTS", "PARTS", "REFERENCES", "grade", "parts_for"]


def parts_for(assignment: str, test_cells: set[str]) -> dict[str, Part]:
    """Test cell -> part, for the cells of ``test_cells`` that ``assignment``'s table grades
    (none for an assignment without a table)."""
    table = ASSIGNMENTS.get(assignment)
    return {} if table is None else \
        {cell: part for cell, part in table.parts.items() if cell in test_cells}


def grade(cell: str, ns: MutableMapping[str, Any]) -> float:
    """Run the part of test cell ``cell`` against the notebook namespace ``ns``.

    Raises GradingError on failure; returns the points on success."""
    if cell not in PARTS:
        raise KeyError(f"no assignment's table grades test cell {cell!r}")
    return run(PARTS[cell], ns)
