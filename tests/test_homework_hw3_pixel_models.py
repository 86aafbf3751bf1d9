"""hw3_pixel_models: the solution earns every point; each plausible bug loses exactly the
points of the parts it breaks; correct answers written differently earn every point; the
grader's models and threshold are what they claim; and, end to end with nbgrader, one
autograde run scores the solution, the untouched starter, a submission with a bug in every
exercise and the different-but-correct answers exactly."""
from __future__ import annotations

import contextlib
import copy
import io
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from arlab.grading import contract
from arlab.grading.checks import GradingError
from arlab.grading.homework import hw3_pixel_models as hw
from arlab.grading.imports import refusals
from arlab.grading.homework import PARTS, grade
from arlab.grading.parts import run_probe
from arlab.models.gated_pixelcnn import GatedPixelCNNLayer
from arlab.receptive import masked_conv_stack_receptive_field, pixel_map, receptive_field
from homework_e2e import check_end_to_end, code, expected_points, load, solution_answers

HW = "hw3_pixel_models"
ROOT = Path(__file__).resolve().parents[1]
EXERCISES = ["pixelcnn_mask", "MaskedConv2d", "receptive_field_map", "GatedPixelCNNLayer",
             "causal_attention_mask", "CausalSelfAttention", "train_pixelcnn"]
TRAIN_CELL = "test_train_pixelcnn"
H = load(HW)
NOTEBOOK, CELLS, TEST_POINTS, OUR_CELLS = H.notebook, H.cells, H.test_points, H.our_cells
BUGS, COMBINED, DIFFERENT = H.bugs, H.combined, H.different
failures, public_failures = H.failures, H.public_failures


def namespace(tests: bool = False) -> tuple[dict, str]:
    """Run the notebook's given code and answer cells (``tests``: the test cells too, public
    and hidden) in a fresh namespace, as a kernel would. Returns it and what it printed."""
    ns: dict = {"__name__": "__main__"}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        for gid, cell in CELLS.items():
            if contract.is_test(cell) and not tests:
                continue
            exec(compile(code(cell.source), f"<cell {gid}>", "exec"), ns)
    return ns, printed.getvalue()


def answered(base: dict, answers: dict[str, str]) -> dict:
    """A copy of a run notebook's namespace with some answer cells run with other code, and
    the given cells after the first of them run again, as "run all" would (a given cell that
    raises is passed over, as in a kernel). The given training cell runs again only for a new
    ``train_pixelcnn``: it trains with the course's versions of every other exercise."""
    ns = dict(base)
    with contextlib.redirect_stdout(io.StringIO()):
        for source in answers.values():
            exec(compile(code(source), "<answer>", "exec"), ns)
        order = list(CELLS)
        first = min((order.index(name) for name in answers if name in CELLS), default=len(order))
        for gid in order[first + 1:]:
            cell = CELLS[gid]
            if contract.is_test(cell) or contract.is_answer(cell):
                continue
            if gid == "train_run" and "train_pixelcnn" not in answers:
                continue
            try:
                exec(compile(code(cell.source), f"<cell {gid}>", "exec"), ns)
            except Exception:  # noqa: BLE001 (a kernel goes on after an error)
                pass
    return ns


@pytest.fixture(scope="module")
def run() -> tuple[dict, str]:
    """The solution notebook run once, test cells included (every hidden part graded)."""
    return namespace(tests=True)


@pytest.fixture(scope="module")
def solution(run) -> dict:
    return run[0]


# --- the notebook and the parts agree ------------------------------------------------------
def test_every_test_cell_has_its_part_with_its_points():
    H.check_parts(EXERCISES)


def test_answers_use_no_reference():
    assert refusals(NOTEBOOK.cells, EXERCISES) == {}


# --- the solution, the bugs, the different answers -----------------------------------------
def test_solution_passes_every_part_and_its_public_tests(run):
    _, printed = run  # a failing test cell would have raised while the notebook ran
    for cell in OUR_CELLS:
        assert f"{cell}: passed" in printed, cell


def test_training_is_charged_once_only():
    """The training part swaps every other exercise for its reference, so a bug elsewhere
    cannot change its result: the bug tests below may leave it out (it trains a model)."""
    others = set(EXERCISES) - {"train_pixelcnn"}
    assert others <= set(PARTS[TRAIN_CELL].uses)


_BUG_RUNS: dict[str, tuple[dict[str, str], dict[str, str]]] = {}


def bug_failures(bug: str, solution: dict) -> dict[str, str]:
    """The hidden parts that fail with ``bug`` in place of its exercise's answer."""
    return _bug_run(bug, solution)[0]


def _bug_run(bug: str, solution: dict) -> tuple[dict[str, str], dict[str, str]]:
    """(failing hidden parts, failing public tests) with ``bug`` in place (computed once)."""
    if bug not in _BUG_RUNS:
        spec = BUGS[bug]
        ns = answered(solution, {spec["exercise"]: spec["source"]})
        cells = [c for c in OUR_CELLS if c != TRAIN_CELL or spec["exercise"] == "train_pixelcnn"]
        _BUG_RUNS[bug] = failures(ns, cells), public_failures(ns)
    return _BUG_RUNS[bug]


@pytest.mark.parametrize("bug", BUGS)
def test_a_bug_loses_exactly_the_parts_it_breaks(bug, solution):
    """The hidden parts it fails are exactly those listed; its public tests fail nowhere else
    (they may pass where only the hidden part sees the bug)."""
    spec = BUGS[bug]
    failed, public = _bug_run(bug, solution)
    assert sorted(failed) == sorted(spec["fails"]), failed
    assert all(PARTS[c].exercise == spec["exercise"] for c in failed)
    assert set(public) <= set(spec["fails"]), public


def test_correct_answers_written_differently_earn_every_point(solution):
    assert set(DIFFERENT) == set(EXERCISES)
    ns = answered(solution, DIFFERENT)
    assert failures(ns) == {}
    assert public_failures(ns) == {}


def test_messages_say_what_to_fix(solution):
    def fails(bug: str) -> dict[str, str]:
        return bug_failures(bug, solution)

    centre = fails("pixelcnn_mask_le_for_A")["test_pixelcnn_mask_2"]
    assert "(the centre tap) is 1" in centre and "input group < output group" in centre
    assert "lies left of the centre" in \
        fails("pixelcnn_mask_right_of_centre")["test_pixelcnn_mask"]
    assert "changed its weight" in fails("MaskedConv2d_in_place")["test_MaskedConv2d_2"]
    assert "ANY input channel" in \
        fails("receptive_field_map_channel_0")["test_receptive_field_map_2"]
    assert "shift down by one row" in \
        fails("GatedPixelCNNLayer_unshifted")["test_GatedPixelCNNLayer"]
    assert "must not see the current pixel" in \
        fails("GatedPixelCNNLayer_first_sees_current")["test_GatedPixelCNNLayer"]
    assert "does not see the earlier pixel" in \
        fails("GatedPixelCNNLayer_no_vertical_link")["test_GatedPixelCNNLayer_2"]
    assert "row i is the query" in \
        fails("causal_attention_mask_transposed")["test_causal_attention_mask"]
    assert "never attend to itself" in \
        fails("CausalSelfAttention_sees_itself")["test_CausalSelfAttention_2"]
    assert "non-finite" in \
        fails("CausalSelfAttention_nan_on_empty_rows")["test_CausalSelfAttention_2"]
    assert "not autoregressive" in fails("train_pixelcnn_type_B_first")[TRAIN_CELL]
    assert "0.992 bits/dim" in fails("train_pixelcnn_no_step")[TRAIN_CELL]
    missing = failures({}, [c for c in OUR_CELLS if c != TRAIN_CELL])
    assert set(missing) == set(OUR_CELLS) - {TRAIN_CELL}
    assert "pixelcnn_mask is not defined" in missing["test_pixelcnn_mask"]


def test_the_starter_answers_fail_with_the_reason(solution):
    ns = answered(solution, {"receptive_field_map": "def receptive_field_map(model, image_shape, pixel):\n"
                                  "    raise NotImplementedError()"})
    with pytest.raises(GradingError, match="receptive_field_map raised NotImplementedError"):
        grade("test_receptive_field_map", ns)


def test_judges_use_only_the_arrays_that_probes_return(solution, tmp_path):
    """The trusted split: probe in one place, arrays through .npz, judge from them alone."""
    for cell in OUR_CELLS:
        part = PARTS[cell]
        path = tmp_path / f"{cell}.npz"
        np.savez(path, **run_probe(part, dict(solution)))
        with np.load(path, allow_pickle=False) as data:
            part.judge({k: data[k] for k in data.files})


# --- the grader's twins and models ---------------------------------------------------------
def test_gated_stack_is_the_notebooks_given_stack(solution):
    given = solution["GatedStack"](GatedPixelCNNLayer, 1, 4, 3, 2)
    twin = hw.GatedStack(GatedPixelCNNLayer, 1, 4, 3, 2)
    assert [(n, p.shape) for n, p in given.named_parameters()] == \
        [(n, p.shape) for n, p in twin.named_parameters()]
    twin.load_state_dict(given.state_dict())
    x = torch.rand(2, 1, 6, 7)
    assert torch.equal(given(x), twin(x))


@pytest.mark.parametrize("name", ["pixelcnn", "gated", "colour"])
def test_reference_maps_are_arlab_receptive_maps(name):
    """For the grader's image models the reference map is arlab.receptive's, joined over the
    output channels; for the grey PixelCNN also the analytic footprint of its masks."""
    model, shape, _ = hw._field_model(name)
    for _, pixels in [case for part in hw._FIELD_CASES.values() for case in part
                      if case[0] == name]:
        for pixel in pixels:
            want = torch.zeros(shape[1:], dtype=torch.bool)
            for c in range(shape[0]):
                want |= pixel_map(receptive_field(model, (c, *pixel)))
            assert torch.equal(hw.receptive_field_map(model, shape, pixel), want), pixel
            if name == "pixelcnn":  # 5x5 type A, then 2 blocks of one 3x3 type B each
                assert torch.equal(want, masked_conv_stack_receptive_field(5, 3, 3, shape,
                                                                           pixel))


@pytest.mark.parametrize("name", ["pixelcnn", "gated", "conv", "colour", "later"])
def test_field_models_give_one_map_whatever_the_inputs(name):
    """The student's random inputs are not the grader's: on these models every input draw a
    student might use (uniform, wide Gaussian, levels) finds the same map."""
    model, shape, _ = hw._field_model(name)
    m = copy.deepcopy(model).double()
    g = torch.Generator().manual_seed(9)
    draws = [torch.rand((1, *shape), generator=g, dtype=torch.float64),
             3.0 * torch.randn((1, *shape), generator=g, dtype=torch.float64),
             torch.randint(0, 2, (1, *shape), generator=g).double()]
    pixels = [p for part in hw._FIELD_CASES.values() for n, ps in part if n == name for p in ps]
    for pixel in pixels:
        want = hw.receptive_field_map(model, shape, pixel)
        for x in draws:
            x = x.clone().requires_grad_(True)
            at = m(x)[..., pixel[0], pixel[1]]
            (grad,) = torch.autograd.grad((at * torch.randn_like(at)).sum(), x)
            assert torch.equal((grad[0] != 0).any(0), want), (pixel, x.std())


def test_the_later_channels_model_ignores_channel_zero():
    model, shape, _ = hw._field_model("later")
    x = torch.rand(1, *shape)
    y = x.clone()
    y[:, 0] = torch.rand(shape[1:])
    assert torch.equal(model(x), model(y))


def test_training_threshold_sits_between_untrained_and_reference():
    """Reference (smoke): about 0.30 bits/dim; untrained: about 1.0; the best model without
    context (one probability per pixel, fitted on the training set): 0.83. The threshold
    0.55 leaves at least 0.2 bits/dim on both sides."""
    train, test = hw._train_data()
    held = hw._held_data()
    model = hw.train_pixelcnn(train, test)
    with torch.no_grad():
        trained = hw.held_out_bits_per_dim(model(held), held)
        torch.manual_seed(0)
        untrained = hw.held_out_bits_per_dim(hw.TinyPixelCNN()(held), held)
    per_pixel = train.mean(0).clamp(1e-4, 1 - 1e-4).logit().expand_as(held)
    context_free = hw.held_out_bits_per_dim(per_pixel, held)
    assert trained < hw._BITS_THRESHOLD - 0.2
    assert min(untrained, context_free) > hw._BITS_THRESHOLD + 0.2
    assert math.isclose(context_free, 0.8337, abs_tol=1e-3)


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
                     total=23, buggy_total=11)
