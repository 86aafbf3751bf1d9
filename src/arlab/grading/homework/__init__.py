"""The graded parts and the references of each assignment, one module per assignment.

Importing this package registers every part in ``arlab.grading.parts.PARTS`` and every
reference in ``arlab.grading.parts.REFERENCES``.
"""
import importlib

ASSIGNMENTS = ("hw1_foundations", "hw2_masked_models", "hw3_pixel_models")

for _name in ASSIGNMENTS:
    try:
        importlib.import_module(f"arlab.grading.homework.{_name}")
    except ModuleNotFoundError as err:  # an assignment still being written
        if err.name != f"arlab.grading.homework.{_name}":
            raise
