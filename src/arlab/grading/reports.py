"""``arlab-grade feedback`` (one HTML page per student and notebook, through nbgrader) and
``arlab-grade export`` (a CSV of totals and per-exercise points, from the gradebook)."""
from __future__ import annotations

import csv
import json
from pathlib import Path

from arlab.grading.autograde import definitions
from arlab.grading.course import Course, CourseError, format_points, run_converter

HIDDEN_MARK = "BEGIN HIDDEN TESTS"


def feedback(course: Course, assignment: str, students: list[str] | None = None) -> list[Path]:
    """Generate feedback HTML from the autograded notebooks and the gradebook. Pages that
    still show hidden tests (a config without ``HideHiddenTests``) are deleted and reported."""
    from nbgrader.converters import GenerateFeedback

    graded = course.root / "autograded"
    have = sorted(p.parent.name for p in graded.glob(f"*/{assignment}")) if graded.is_dir() else []
    wanted = [s for s in have if not students or s in students]
    if not wanted:
        raise CourseError(f"nothing autograded for {assignment} in {graded}; run "
                           f"`arlab-grade autograde {assignment} --course {course.root}` first.")
    for student in wanted if students else [None]:  # None: every student in one run
        run_converter(GenerateFeedback, course, assignment, student, force=True)
    pages = sorted(p for s in wanted for p in course.feedback(s, assignment).glob("*.html"))
    leaking = [p for p in pages if HIDDEN_MARK in p.read_text(encoding="utf-8", errors="replace")]
    for page in leaking:
        page.unlink()
    if leaking:
        raise CourseError(f"{len(leaking)} feedback pages showed hidden tests and were deleted; "
                           "restore HideHiddenTests in GenerateFeedback.preprocessors of "
                           f"{course.config} (see grader/nbgrader_config.py).")
    return pages


def export(course: Course, assignment: str, out: str | Path) -> list[list[str]]:
    """Write ``student, assignment, total, max_total, <exercise>..., review`` to ``out``; an
    exercise's points are the sum of its test cells (``test_<name>``, ``test_<name>_2``...).
    ``review`` holds why a submission needs a look (the in-kernel and the trusted results
    disagree), empty otherwise. Students in the gradebook without a submission get zeros.
    Returns the rows written."""
    from nbgrader.api import Gradebook

    defs = definitions(course, assignment)
    header = ["student", "assignment", "total", "max_total", *defs.exercises, "review"]
    rows = [header]
    with Gradebook(course.db_url) as gb:
        found = gb.find_assignment(assignment)
        submissions = {s.student.id: s for s in found.submissions}
        for student in sorted(s.id for s in gb.students):
            scores: dict[str, float] = {}
            submission = submissions.get(student)
            for nb in submission.notebooks if submission else []:
                for grade in nb.grades:
                    manual, auto = grade.manual_score, grade.auto_score
                    scores[grade.cell.name] = float((manual if manual is not None else auto) or 0)
            per_exercise = [sum(scores.get(t, 0.0) for t in tests)
                            for tests in defs.exercises.values()]
            rows.append([student, assignment, format_points(sum(scores.values())),
                         format_points(defs.max_total), *map(format_points, per_exercise),
                         review_note(course, assignment, student)])
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)
    return rows


def review_note(course: Course, assignment: str, student: str) -> str:
    """The autograder's review lines for a student (``grading.json``, written by the trusted
    parent), joined by `` | ``; empty when there is nothing to review."""
    path = course.autograded(student, assignment) / "grading.json"
    try:
        review = json.loads(path.read_text(encoding="utf-8")).get("review", [])
    except (OSError, ValueError, AttributeError):
        return ""
    return " | ".join(str(r) for r in review)
