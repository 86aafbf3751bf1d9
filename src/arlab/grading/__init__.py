"""Grading: the checks the homework's tests call, the instructor's ``arlab-grade`` workflow
on nbgrader, and the students' self-check."""
