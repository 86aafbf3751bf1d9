"""Grading: the checks the homework's tests call, the instructor's ``arlab-grade`` workflow
on nbgrader, and the students' self-check.

A hidden test cell calls ``from arlab.grading import grade; grade("test_x", globals())``.
"""


def grade(cell, ns):
    """Run the graded part of test cell ``cell`` on the notebook namespace ``ns`` (the part
    that an assignment's table in :mod:`arlab.grading.homework` lists for it)."""
    from arlab.grading.homework import grade as run

    return run(cell, ns)
