"""hw1_foundations: the solution earns every point; each plausible bug loses exactly the
points of the parts it breaks; correct answers written differently earn every point; the
grader's cases, references and threshold are what they claim; and, end to end with nbgrader,
one autograde run scores the solution, the untouched starter, a submission with a bug in every
exercise and the different-but-correct answers exactly."""
from __future__ import annotations

import contextlib
import io
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from arlab.grading import contract
from arlab.grading.checks import GradingError, all_configs, check_causal, check_normalised
from arlab.grading.homework import hw1_foundations as hw
from arlab.grading.imports import refusals
import arlab.grading.parts as parts
from arlab.grading.homework import PARTS, REFERENCES, grade
from arlab.grading.parts import run_probe
from arlab.grading.probes import randomise
from arlab.models.logistic import dlogistic_mixture_log_prob
from homework_e2e import check_end_to_end, code, expected_points, load, solution_answers

HW = "hw1_foundations"
ROOT = Path(__file__).resolve().parents[1]
EXERCISES = ["histogram_probs", "inverse_cdf_sample", "dlogistic_mixture_log_prob",
             "bits_per_dim", "TwoVariableModel", "CoordinateRNN", "train_two_variable"]
TRAIN_CELL = "test_train_two_variable"
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
    """A copy of a run notebook's namespace with some answer cells run with other code (the
    given cells read no answer, so they need not run again)."""
    ns = dict(base)
    with contextlib.redirect_stdout(io.StringIO()):
        for source in answers.values():
            exec(compile(code(source), "<answer>", "exec"), ns)
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
    assert sum(TEST_POINTS.values()) == 20


def test_answers_use_no_reference():
    assert refusals(NOTEBOOK.cells, EXERCISES) == {}


# --- the solution, the bugs, the different answers -----------------------------------------
def test_solution_passes_every_part_and_its_public_tests(run):
    _, printed = run  # a failing test cell would have raised while the notebook ran
    for cell in OUR_CELLS:
        assert f"{cell}: passed" in printed, cell


def test_the_references_earn_every_point_and_are_refused_as_answers(solution, monkeypatch):
    ns = answered(solution, {})
    ns.update({name: REFERENCES[name] for name in EXERCISES})
    refused = failures(ns)  # handed in as answers, the course's own code earns nothing
    assert sorted(refused) == sorted(OUR_CELLS)
    assert all("arlab's own reference implementation" in m for m in refused.values()), refused
    monkeypatch.setattr(parts, "forbidden_codes", lambda *args: set())
    assert failures(ns) == {}  # and they are right by every part's judge
    assert public_failures(ns) == {}


def test_training_is_charged_once_only():
    """The training part runs with the course's TwoVariableModel, so a bug there cannot
    change its result: the bug tests below leave it out for the other exercises."""
    assert PARTS[TRAIN_CELL].uses == ("TwoVariableModel",)


_BUG_RUNS: dict[str, tuple[dict[str, str], dict[str, str]]] = {}


def _bug_run(bug: str, solution: dict) -> tuple[dict[str, str], dict[str, str]]:
    """(failing hidden parts, failing public tests) of the bug's exercise (computed once)."""
    if bug not in _BUG_RUNS:
        spec = BUGS[bug]
        ns = answered(solution, {spec["exercise"]: spec["source"]})
        cells = [c for c in OUR_CELLS
                 if c != TRAIN_CELL or spec["exercise"] in ("train_two_variable",
                                                            *PARTS[TRAIN_CELL].uses)]
        _BUG_RUNS[bug] = failures(ns, cells), public_failures(ns, cells)
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
        return _bug_run(bug, solution)[0]

    assert "(count + alpha) / (N + alpha * d)" in \
        fails("histogram_ignores_alpha")["test_histogram_probs_2"]
    assert "strict" in fails("inverse_cdf_ge")["test_inverse_cdf_sample_2"]
    assert "never d" in fails("inverse_cdf_no_clamp")["test_inverse_cdf_sample_3"]
    assert "not the density at k" in \
        fails("logistic_density_at_centre")["test_dlogistic_mixture_log_prob"]
    assert "extends to -inf" in fails("logistic_closed_edges")["test_dlogistic_mixture_log_prob_2"]
    assert "Stay in log space" in \
        fails("logistic_naive_subtraction")["test_dlogistic_mixture_log_prob_3"]
    assert "ln 2" in fails("bits_per_dim_in_nats")["test_bits_per_dim"]
    assert "same p(x2 | x1) for every value of x1" in \
        fails("two_variable_ignores_x1")["test_TwoVariableModel_2"]
    assert "nn.Parameter" in fails("two_variable_logits_not_a_parameter")["test_TwoVariableModel_3"]
    assert "not normalised" in fails("two_variable_unnormalised")["test_TwoVariableModel"]
    assert "PREVIOUS pixel" in fails("rnn_sees_current_pixel")["test_CoordinateRNN_2"]
    assert "coordinates of the pixel it PREDICTS" in \
        fails("rnn_previous_pixel_coordinates")["test_CoordinateRNN_3"]
    assert "nats per pair" in fails("train_never_steps")[TRAIN_CELL]
    missing = failures({}, [c for c in OUR_CELLS if c != TRAIN_CELL])
    assert set(missing) == set(OUR_CELLS) - {TRAIN_CELL}
    assert "histogram_probs is not defined" in missing["test_histogram_probs"]


def test_the_starter_answers_fail_with_the_reason(solution):
    ns = answered(solution, {"bits_per_dim": "def bits_per_dim(nll_nats, num_dims):\n"
                                             "    raise NotImplementedError()"})
    with pytest.raises(GradingError, match="bits_per_dim raised NotImplementedError"):
        grade("test_bits_per_dim", ns)


def test_judges_use_only_the_arrays_that_probes_return(solution, tmp_path):
    """The trusted split: probe in one place, arrays through .npz, judge from them alone."""
    for cell in OUR_CELLS:
        part = PARTS[cell]
        path = tmp_path / f"{cell}.npz"
        np.savez(path, **run_probe(part, dict(solution)))
        with np.load(path, allow_pickle=False) as data:
            part.judge({k: data[k] for k in data.files})


# --- the grader's cases and references -----------------------------------------------------
def test_random_u_never_sits_near_a_cdf_value():
    """Part 1 of inverse_cdf_sample must not hinge on rounding: every random u is at least
    1e-4 from every CDF value, whatever precision or summation order the student uses."""
    for c in range(len(hw._BATCH_SHAPES)):
        probs, u = hw._random_case(c)
        gap = (probs.double().cumsum(-1) - u.double().unsqueeze(-1)).abs().min()
        assert gap > 1e-4, c


def test_edge_cases_put_u_exactly_on_cdf_values():
    """The dyadic probabilities make CDF values exact in float32, so u = CDF[k] is exact."""
    for probs, us in hw._EDGE_CASES:
        cdf = torch.tensor(probs, dtype=torch.float32).cumsum(0)
        assert any(torch.tensor(u, dtype=torch.float32) in cdf for u in us)
    for probs, us in hw._ROUNDING_CASES:
        total = torch.tensor(probs, dtype=torch.float32).sum()
        assert total < 1 and any(u >= float(total) for u in us)


def test_moderate_logistic_cases_keep_every_bin_above_1e_minus_2():
    """Parts 1 and 2 of dlogistic_mixture_log_prob are about the formula, not the numerics:
    every bin there holds at least 1% of the mass (float32 is plenty), and the edge cases
    put real mass in the edge bins."""
    for sets, spread in ((hw._MODERATE, 0.0), (hw._EDGE_SETS, 2.0)):
        for d, m, seed in sets:
            params = hw._moderate_params(d, m, seed, spread)
            lp = dlogistic_mixture_log_prob(torch.arange(d), *(p.double() for p in params), d)
            assert float(lp.exp().min()) > 1e-2, (d, m, seed)
            assert math.isclose(float(lp.exp().sum()), 1.0, abs_tol=1e-12)
    edge_mass = [dlogistic_mixture_log_prob(torch.tensor([0, d - 1]),
                                            *(p.double() for p in hw._moderate_params(
                                                d, m, seed, 2.0)), d).exp().sum()
                 for d, m, seed in hw._EDGE_SETS]
    assert min(edge_mass) > 0.3


def test_extreme_logistic_cases_reach_the_tails():
    """The extremes hold bin masses below exp(-1e4) (no float type holds them as
    probabilities) and bins whose two sigmoids both round to 1 in float64."""
    lowest = min(float(hw._reference_lp(torch.arange(d), [hw._f32(v) for v in p], d).min())
                 for d, *p in hw._EXTREMES)
    assert lowest < -1e4
    upper_tail = [k for d, _, means, scales in hw._EXTREMES for k in range(1, d - 1)
                  if all((k - 0.5 - mu) / math.exp(s) > 37 for mu, s in zip(means, scales))]
    assert upper_tail


def test_reference_two_variable_model_is_normalised_and_its_x2_reads_x1():
    model = hw.TwoVariableModel(5, 8)
    randomise(model, torch.Generator().manual_seed(0), gain=2.0)
    check_normalised(model.log_prob, (2,), 5)
    table = model.log_prob(all_configs((2,), 5)).detach()
    _, cond = hw._pair_table(table, 5)
    assert (cond[0] - cond[1]).abs().max() > 0.01


def test_reference_rnn_is_causal_normalised_and_reads_the_predicted_coordinates():
    for append in (False, True):
        model = hw.CoordinateRNN(6, append, 2, 3)
        check_normalised(model.log_prob, (1, 2, 3), 2)
        check_causal(lambda v: model(v.float()), (1, 2, 3), torch.arange(6).view(1, 2, 3))
        x = torch.randint(0, 2, (3, 1, 2, 3))
        want = -torch.nn.functional.binary_cross_entropy_with_logits(
            model(x), x.float(), reduction="none").sum((1, 2, 3))
        assert torch.allclose(model.log_prob(x), want, atol=1e-5)
    coords = hw.CoordinateRNN(6, True, 2, 3).rnn.coordinates()
    assert coords.tolist() == [[0, 0], [0, 0.5], [0, 1], [1, 0], [1, 0.5], [1, 1]]


def test_fit_thresholds_sit_between_correct_and_broken_models(monkeypatch):
    """The fitted target: KL(p(x1) || uniform) ~0.25 and I(x1; x2) ~0.60 nats, far above the
    thresholds that a correct model meets with room to spare (its KLs are ~1e-6)."""
    p1, cond = hw._fit_target()
    uniform_kl = float((p1 * (p1 * len(p1)).log()).sum())
    p2 = (p1[:, None] * cond).sum(0)
    mutual = float((p1[:, None] * cond * (cond.log() - p2.log())).sum())
    assert uniform_kl > 10 * hw._FIT_MARGINAL_KL
    assert mutual > 10 * hw._FIT_CONDITIONAL_KL
    monkeypatch.setattr(parts, "forbidden_codes", lambda *args: set())  # the reference as answer
    out = run_probe(PARTS["test_TwoVariableModel_3"], {"TwoVariableModel": hw.TwoVariableModel})
    marginal, conditional = hw._fitted(out)
    assert float((p1 * (p1.log() - marginal)).sum()) < hw._FIT_MARGINAL_KL / 100
    assert float((p1[:, None] * cond * (cond.log() - conditional)).sum()) < \
        hw._FIT_CONDITIONAL_KL / 100


def test_training_threshold_sits_between_untrained_and_reference():
    """Held-back NLL (nats per pair): the reference ~2.56, the best model in which x2 ignores
    x1 (the product of the training marginals) ~3.21, untrained ~4.1; the threshold 2.9
    leaves at least 0.3 on both sides."""
    d = hw._TRAIN_D
    train, test = hw._train_data()
    held = hw._held_data()
    pairs = all_configs((2,), d)
    model = hw.train_two_variable(train, test, d)
    with torch.no_grad():
        trained = hw.held_out_nll(model.log_prob(pairs), held, d)
        torch.manual_seed(0)
        untrained = hw.held_out_nll(hw.TwoVariableModel(d, 32).log_prob(pairs), held, d)
    p1 = torch.bincount(train[:, 0], minlength=d).double() / len(train)
    p2 = torch.bincount(train[:, 1], minlength=d).double() / len(train)
    product = hw.held_out_nll((p1[:, None] * p2[None, :]).log().reshape(-1), held, d)
    assert trained < hw._NLL_THRESHOLD - 0.3
    assert min(untrained, product) > hw._NLL_THRESHOLD + 0.3
    assert math.isclose(product, 3.21, abs_tol=0.01)


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
                     total=20, buggy_total=9)
