"""The homework as the contract says (../shared/HOMEWORK.md): three assignments, every
exercise an answer cell of that grade id, test cells whose points add up, and the committed
starter equal to a fresh release of the solutions."""
from pathlib import Path

import nbformat
import pytest

from arlab.grading.contract import exercises, grade_id, nbgrader_meta

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = {
    "hw1_foundations": {"histogram_probs": 2, "inverse_cdf_sample": 3,
                        "dlogistic_mixture_log_prob": 4, "bits_per_dim": 1,
                        "TwoVariableModel": 3, "CoordinateRNN": 4, "train_two_variable": 3},
    "hw2_masked_models": {"made_masks": 4, "MaskedLinear": 2, "MADE": 4, "CausalConv1d": 3,
                          "wavenet_receptive_field": 2, "GatedResidualBlock": 3,
                          "fast_generate": 4},
    "hw3_pixel_models": {"pixelcnn_mask": 4, "MaskedConv2d": 2, "receptive_field_map": 3,
                         "GatedPixelCNNLayer": 5, "causal_attention_mask": 2,
                         "CausalSelfAttention": 4, "train_pixelcnn": 3},
}


def _cells(folder: str, hw: str):
    paths = sorted((ROOT / folder / hw).glob("*.ipynb"))
    assert paths, f"{folder}/{hw} has no notebook"
    return [c for p in paths for c in nbformat.read(p, as_version=4).cells]


@pytest.mark.parametrize("hw", CONTRACT)
def test_exercises_and_points_follow_the_contract(hw):
    cells = _cells("solutions", hw)
    found = exercises(cells)
    assert set(CONTRACT[hw]) <= set(found), f"missing exercises: {set(CONTRACT[hw]) - set(found)}"
    points = {}
    for cell in cells:
        meta = nbgrader_meta(cell)
        if meta.get("grade") and not meta.get("solution"):
            points[grade_id(cell)] = meta.get("points", 0)
    for name, total in CONTRACT[hw].items():
        got = sum(points[t] for t in found[name])
        assert got == total, f"{hw}.{name}: test cells give {got} points, the contract {total}"
        answer = [c for c in cells if grade_id(c) == name]
        assert len(answer) == 1 and "### BEGIN SOLUTION" in answer[0].source


@pytest.mark.parametrize("hw", CONTRACT)
def test_every_exercise_has_hidden_tests_that_call_the_grader(hw):
    cells = _cells("solutions", hw)
    for name, tests in exercises(cells).items():
        for t in tests:
            src = next(c.source for c in cells if grade_id(c) == t)
            assert "### BEGIN HIDDEN TESTS" in src and f'grade("{t}"' in src, t


@pytest.mark.slow
def test_committed_starter_equals_a_fresh_release(tmp_path):
    from arlab.grading.release import generate_starter

    generate_starter(ROOT / "solutions", tmp_path)
    for hw in CONTRACT:
        fresh = sorted(p.name for p in (tmp_path / hw).glob("*.ipynb"))
        committed = sorted(p.name for p in (ROOT / "starter" / hw).glob("*.ipynb"))
        assert fresh == committed, f"starter/{hw} differs in its notebooks"
        for name in fresh:
            a = (tmp_path / hw / name).read_text()
            b = (ROOT / "starter" / hw / name).read_text()
            assert a == b, (f"starter/{hw}/{name} is out of date: regenerate it with "
                            "`arlab-grade starter` (see grader/README.md)")
        for cell in _cells("starter", hw):
            assert "### BEGIN HIDDEN TESTS" not in cell.source
            assert "### BEGIN SOLUTION" not in cell.source


def test_import_rules_are_stated_once_and_agree_with_the_check():
    """One table (arlab.grading.imports) says what answers may import; every homework
    introduction and the grader's README carry the same words, generated from it, and the
    check does what the words say."""
    import re

    from arlab.grading.imports import (ALLOWED_MODULES, RULES_BEGIN, RULES_END,
                                       forbidden_imports, rules_text)

    block = re.compile(re.escape(RULES_BEGIN) + "(.*?)" + re.escape(RULES_END), re.S)
    texts = {f"solutions/{hw}": nbformat.read(ROOT / "solutions" / hw / f"{hw}.ipynb",
                                               as_version=4).cells[0].source for hw in CONTRACT}
    texts["grader/README.md"] = (ROOT / "grader" / "README.md").read_text()
    for where, text in texts.items():
        assert block.findall(text) == [rules_text()], f"{where} states other import rules"
    for module in ALLOWED_MODULES:
        assert f"`arlab.{module}`" in rules_text() or module == "budget"
        assert forbidden_imports(f"from arlab.{module} import *".replace("*", "x")) == []
    assert forbidden_imports("import arlab.models") and forbidden_imports("import arlab.grading")
    assert forbidden_imports("from arlab.receptive import dependence")
    assert forbidden_imports("from arlab.units import bits_per_dim", "bits_per_dim")
    assert not forbidden_imports("from arlab.units import bits_per_dim", "CoordinateRNN")
