"""hw2_masked_models: the solution earns every point; each plausible bug loses exactly the
points of the parts it breaks; correct answers written differently earn every point; the
notebook's given code and the grader's twins agree; and, end to end with nbgrader, one
autograde run scores the solution, the untouched starter, a submission with a bug in every
exercise and the different-but-correct answers exactly."""
from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import pytest
import torch

from arlab.grading import contract
from arlab.grading.checks import GradingError, check_causal, check_normalised
from arlab.grading.imports import refusals
from arlab.grading.homework import PARTS, REFERENCES, grade
from arlab.grading.parts import run_probe, swapped
from arlab.grading.homework import hw2_masked_models as hw
from arlab.models.made import made_degrees, made_masks
from arlab.models.wavenet import CausalConv1d, count_positions
from homework_e2e import check_end_to_end, code, expected_points, load, solution_answers

HW = "hw2_masked_models"
ROOT = Path(__file__).resolve().parents[1]
EXERCISES = ["made_masks", "MaskedLinear", "MADE", "CausalConv1d", "wavenet_receptive_field",
             "GatedResidualBlock", "fast_generate"]
H = load(HW)
NOTEBOOK, CELLS, TEST_POINTS, OUR_CELLS = H.notebook, H.cells, H.test_points, H.our_cells
BUGS, COMBINED, DIFFERENT = H.bugs, H.combined, H.different
failures = H.failures


def namespace(answers: dict[str, str] | None = None, tests: bool = False) -> dict:
    """Run the notebook's given code and answer cells (``answers`` replaces some answers;
    ``tests`` runs the test cells too) in a fresh namespace, as a kernel would."""
    answers = answers or {}
    ns: dict = {"__name__": "__main__"}
    with contextlib.redirect_stdout(io.StringIO()):
        for gid, cell in CELLS.items():
            if contract.is_test(cell) and not tests:
                continue
            exec(compile(code(answers.get(gid, cell.source)), f"<cell {gid}>", "exec"), ns)
    return ns


@pytest.fixture(scope="module")
def solution() -> dict:
    return namespace()


# --- the notebook and the parts agree ------------------------------------------------------
def test_every_test_cell_has_its_part_with_its_points():
    H.check_parts(EXERCISES)


def test_answers_use_no_reference():
    assert refusals(NOTEBOOK.cells, EXERCISES) == {}


# --- the solution, the bugs, the different answers -----------------------------------------
def test_solution_passes_every_part_and_its_public_tests(solution):
    assert failures(solution) == {}
    namespace(tests=True)  # every test cell, public and hidden, runs without an error


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("bug", BUGS)
def test_a_bug_loses_exactly_the_parts_it_breaks(bug):
    spec = BUGS[bug]
    failed = failures(namespace({spec["exercise"]: spec["source"]}))
    assert sorted(failed) == sorted(spec["fails"]), failed
    assert all(PARTS[c].exercise == spec["exercise"] for c in failed)


def test_correct_answers_written_differently_earn_every_point():
    assert set(DIFFERENT) == set(EXERCISES)
    assert failures(namespace(DIFFERENT)) == {}


def test_messages_say_what_to_fix():
    masks = failures(namespace({"made_masks": BUGS["made_masks_output_ge"]["source"]}))
    assert "must not see" in masks["test_made_masks_2"] and "strictly" in masks["test_made_masks_2"]
    linear = failures(namespace({"MaskedLinear": BUGS["MaskedLinear_in_place"]["source"]}))
    assert "exactly zero gradient" in linear["test_MaskedLinear"]
    assert "changed its weight" in linear["test_MaskedLinear_2"]
    cached = failures(namespace({"fast_generate": BUGS["fast_generate_no_cache"]["source"]}))
    assert "length-1 input" in cached["test_fast_generate_2"]
    missing = failures({})
    assert set(missing) == set(OUR_CELLS)
    assert "made_masks is not defined" in missing["test_made_masks"]


def test_the_starter_answers_fail_with_the_reason(solution):
    """NotImplementedError in the student's code becomes a GradingError that names it."""
    ns = dict(solution)
    exec("def wavenet_receptive_field(kernel_size, dilations):\n    raise NotImplementedError()",
         ns)
    with pytest.raises(GradingError, match="wavenet_receptive_field raised NotImplementedError"):
        grade("test_wavenet_receptive_field", ns)


def test_judges_use_only_the_arrays_that_probes_return(solution, tmp_path):
    """The trusted split: probe in one place, arrays through .npz, judge from them alone."""
    for cell in OUR_CELLS:
        part = PARTS[cell]
        path = tmp_path / f"{cell}.npz"
        np.savez(path, **run_probe(part, dict(solution)))
        with np.load(path, allow_pickle=False) as data:
            part.judge({k: data[k] for k in data.files})


# --- the grader's twins are the notebook's given code --------------------------------------
def test_tiny_wavenet_and_naive_generator_match_their_twins(solution):
    ns = dict(solution)
    with swapped(ns, ("CausalConv1d", "GatedResidualBlock")):
        given = hw._build_wavenet(ns["TinyWaveNet"], 3, (1, 2), 7)
    twin = hw._build_wavenet(hw.TinyWaveNet, 3, (1, 2), 7)
    assert [n for n, _ in given.named_parameters()] == [n for n, _ in twin.named_parameters()]
    x = torch.randint(0, 2, (4, 9), generator=torch.Generator().manual_seed(0))
    assert torch.equal(given(x), twin(x))
    for generate in (ns["naive_generate"], hw.naive_generate):
        assert torch.equal(generate(given, 3, 9, torch.Generator().manual_seed(1)),
                           hw.naive_generate(twin, 3, 9, torch.Generator().manual_seed(1)))


def test_made_base_matches_the_reference_layout(solution):
    ns = dict(solution)
    with swapped(ns, ("MaskedLinear",)):
        base = ns["MADEBase"](5, [7, 6])
    ref = hw.MADE(5, [7, 6])
    assert [type(m).__name__ for m in base.net] == [type(m).__name__ for m in ref.net]
    assert [tuple(p.shape) for p in base.parameters()] == [tuple(p.shape) for p in ref.parameters()]


# --- the references themselves -------------------------------------------------------------
def test_reference_made_is_causal_normalised_and_follows_the_degree_rule():
    order = torch.tensor([2, 0, 3, 1])
    model = hw.MADE(4, [12, 12], ordering=order, num_masks=3, seed=4)
    inputs, hidden = made_degrees(order, [12, 12], 3, 4)
    for m in range(3):
        want = made_masks(inputs[m], [h[m] for h in hidden])
        assert all(torch.equal(a, b) for a, b in zip(model.masks[m], want))
        model.mask_index = m
        check_causal(lambda v: model(v.float()), (4,), order, what=f"mask {m}", need_some=False)
    check_normalised(model.log_prob, (4,), 2)
    assert model.mask_index == 2  # log_prob leaves the current mask as it found it


def test_reference_fast_generation_equals_naive_and_caches():
    for dilations in [(1, 2, 4), (3, 1), (2,)]:
        model = hw._build_wavenet(hw.TinyWaveNet, 3, dilations, 12)
        with count_positions(model) as lengths:
            fast = hw.fast_generate(model, 5, 12, torch.Generator().manual_seed(2))
        assert all(seen == [1] * 12 for seen in lengths.values()), lengths
        assert torch.equal(fast, hw.naive_generate(model, 5, 12, torch.Generator().manual_seed(2)))
        assert 0 < fast.float().mean() < 1  # the weights give varied samples


@pytest.mark.parametrize("kernel, dilations", hw._FIELD_CASES)
def test_receptive_field_cases_are_gap_free_and_counted(kernel, dilations):
    """Each tested stack reaches exactly the formula's number of inputs, measured by float64
    gradients through real causal convolutions with positive weights."""
    torch.manual_seed(0)
    layers = [CausalConv1d(1, 1, kernel, d).double() for d in dilations]
    for layer in layers:
        torch.nn.init.uniform_(layer.weight, 0.5, 1.0)
    length = 1 + (kernel - 1) * sum(dilations) + 3
    x = torch.randn(1, 1, length, dtype=torch.float64, requires_grad=True)
    h = x
    for layer in layers:
        h = layer(h)
    h[0, 0, -1].backward()
    assert int((x.grad != 0).sum()) == REFERENCES["wavenet_receptive_field"](kernel, dilations)


# --- end to end: nbgrader through the grading tool -----------------------------------------
def _solution_answers() -> dict[str, str]:
    return solution_answers(CELLS)


def _expected(broken: list[str]) -> dict[str, float]:
    """Points per exercise when the test cells in ``broken`` fail."""
    return expected_points(TEST_POINTS, EXERCISES, broken)


@pytest.mark.slow
@pytest.mark.grading_e2e
def test_autograde_scores_every_kind_of_submission_exactly(tmp_path):
    check_end_to_end(tmp_path, HW, CELLS, TEST_POINTS, EXERCISES, BUGS, COMBINED, DIFFERENT,
                     total=22, buggy_total=9)
