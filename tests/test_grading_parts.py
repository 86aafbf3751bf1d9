"""The probe/judge protocol: student errors are explained, references swapped in, outputs
carried as plain numeric arrays."""
import numpy as np
import pytest
import torch

from arlab.grading.checks import GradingError, check_close
from arlab.grading.parts import Assignment, Exercise, Part, run, run_probe, student, to_arrays
from arlab.grading.references import REFERENCES


class _Square(Part):
    exercise = "square_plus"
    cell = "test_square_plus_demo"
    points = 2
    uses = ("square",)

    def probe(self, ns):
        x = torch.arange(4.0)
        return {"y": student(ns, "square_plus")(x)}

    def judge(self, out):
        check_close(torch.from_numpy(out["y"]), torch.arange(4.0) ** 2 + 1, "square_plus(x)")


REFERENCES["square"] = lambda x: x ** 2
DEMO = Assignment("demo", (Exercise("square_plus", 2, (_Square(),)),))


def grade(cell, ns):
    return run(DEMO.parts[cell], ns)


def test_grade_passes_with_the_reference_swapped_in(capsys):
    ns = {"square": lambda x: x * 0, "square_plus": None}
    exec("def square_plus(x):\n    return square(x) + 1", ns)
    assert grade("test_square_plus_demo", ns) == 2
    assert "passed (2 points)" in capsys.readouterr().out
    assert ns["square"](torch.tensor(3.0)) == 0  # the student's own version is back


def test_wrong_answer_and_raising_answer_are_explained():
    ns = {}
    exec("def square_plus(x):\n    return x + 1", ns)
    with pytest.raises(GradingError, match="differs from the expected"):
        grade("test_square_plus_demo", ns)
    exec("def square_plus(x):\n    raise ValueError('boom')", ns)
    with pytest.raises(GradingError, match="square_plus raised ValueError: boom"):
        grade("test_square_plus_demo", ns)
    with pytest.raises(GradingError, match="square_plus is not defined"):
        run_probe(DEMO.parts["test_square_plus_demo"], {"square_plus_typo": 1} | {})  # noqa


def test_to_arrays_refuses_objects_and_keeps_numbers():
    out = to_arrays({"a": torch.ones(2, dtype=torch.bfloat16), "b": 3, "c": np.zeros(2)})
    assert out["a"].dtype == np.float32 and out["b"] == 3
    with pytest.raises(GradingError, match="not numeric"):
        to_arrays({"m": object()})
    with pytest.raises(GradingError, match="not numeric"):
        to_arrays({"s": "text"})


def test_a_cell_is_claimed_once():
    with pytest.raises(ValueError, match="two parts claim"):
        Assignment("demo", (Exercise("square_plus", 4, (_Square(), _Square())),))


def test_a_table_row_holds_its_own_parts_and_points():
    with pytest.raises(ValueError, match="give 2 points, the table 3"):
        Assignment("demo", (Exercise("square_plus", 3, (_Square(),)),))
    with pytest.raises(ValueError, match="grades 'square_plus', listed under 'square'"):
        Assignment("demo", (Exercise("square", 2, (_Square(),)),))


def test_the_registry_lists_each_assignment_once_and_each_cell_once():
    from arlab.grading import homework

    assert list(homework.ASSIGNMENTS) == ["hw1_foundations", "hw2_masked_models",
                                          "hw3_pixel_models"]
    cells = [c for table in homework.ASSIGNMENTS.values() for c in table.parts]
    assert len(cells) == len(set(cells)) == len(homework.PARTS)
    assert homework.parts_for("hw1_foundations", {"test_histogram_probs", "test_MADE"}) == \
        {"test_histogram_probs": homework.PARTS["test_histogram_probs"]}
    assert homework.parts_for("not_an_assignment", set(cells)) == {}
    with pytest.raises(KeyError, match="no assignment's table grades"):
        homework.grade("test_square_plus_demo", {})
