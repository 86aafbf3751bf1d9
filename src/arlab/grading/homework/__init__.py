"""The graded parts and the references of each assignment, one module per assignment.

Importing this package registers every part in ``arlab.grading.parts.PARTS`` and every
reference in ``arlab.grading.parts.REFERENCES``.
"""
from arlab.grading.homework import hw1_foundations, hw2_masked_models, hw3_pixel_models  # noqa: F401

ASSIGNMENTS = ("hw1_foundations", "hw2_masked_models", "hw3_pixel_models")
