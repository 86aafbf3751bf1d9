"""hw1_foundations (walkthrough 01–04): the graded parts of histograms, inverse-CDF sampling,
discretised logistic mixtures, bits per dimension, the two-variable chain-rule model and the
raster-scan RNN, and the assignment's ``TABLE`` (exercise, points, parts). The references
they are judged against are in :mod:`arlab.grading.references`.

The contract leaves the layout of both models free, so they are judged by behaviour: the
grader enumerates every input of a tiny problem (normalisation), perturbs one pixel at a time
(causality), fits a known joint with its own optimiser loop (each factor of the chain rule is
learnable), and compares the RNN across image sizes with equal weights (the coordinates fed
are those of the predicted pixel). Every input comes from a fixed seed; ``probe`` runs the
student's code and returns arrays, ``judge`` recomputes what is expected from the same seeds.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from arlab.data import smiley_2d
from arlab.grading.checks import all_configs, check_close, check_shape, fail
from arlab.grading.parts import Assignment, Check, Exercise, student
from arlab.grading.probes import from_np, gen, randomise, returned
from arlab.grading.references import CoordinateRNN, TwoVariableModel, train_two_variable
from arlab.models.histogram import histogram_probs, inverse_cdf_sample
from arlab.models.logistic import dlogistic_mixture_log_prob
from arlab.receptive import Dependence, dependence
from arlab.units import bits_per_dim

# =============================================================================================
# Helpers shared by the parts
# =============================================================================================


def _number(value, what: str) -> float:
    """A Python number or a one-element tensor, as a float."""
    if isinstance(value, Tensor) and value.numel() == 1:
        return float(value.detach())
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return float(value)
    fail(f"{what} should return a float, got {type(value).__name__}.")


def _integer_levels(t: Tensor, what: str) -> None:
    if t.is_floating_point() or t.dtype == torch.bool or t.is_complex():
        fail(f"{what} has dtype {t.dtype}; return a LongTensor of levels (e.g. with .long()).")


def _log_prob(model: nn.Module, x: Tensor, n: int, what: str) -> Tensor:
    """``model.log_prob(x)`` checked to be a tensor of shape ``[n]``, as float64."""
    if not callable(getattr(model, "log_prob", None)):
        fail(f"{what} has no method log_prob(x); the contract asks for one.")
    lp = returned(model.log_prob(x), f"{what}.log_prob(x)")
    check_shape(lp, (n,), f"{what}.log_prob(x) for x of shape {tuple(x.shape)} (one "
                "log-probability per example)")
    return lp.detach().double()


def _judge_normalised(lp: Tensor, count: int, what: str, tol: float = 1e-4) -> None:
    """The log-probabilities of all ``count`` possible inputs are finite and sum to 1."""
    check_shape(lp, (count,), f"the log-probabilities of {what}")
    if not torch.isfinite(lp).all():
        bad = int((~torch.isfinite(lp)).nonzero()[0])
        fail(f"{what}: log_prob is not finite ({lp[bad].item()}) for input number {bad} of the "
             f"{count} possible inputs; a log-probability is finite wherever p > 0.")
    total = float(lp.logsumexp(0).exp())
    if abs(total - 1) > tol:
        fail(f"{what} is not normalised: the probabilities of all {count} possible inputs sum "
             f"to {total:.6f}, not 1. Every factor of the chain rule must be a distribution "
             "(a log-softmax over the levels, or a log-sigmoid of ± the logit for a binary "
             "pixel), and step t may only use the values before it.")


def _judge_batch_free(lp: Tensor, again: Tensor, what: str) -> None:
    """Each input's log-probability does not depend on the rest of the batch."""
    check_shape(again, tuple(lp.shape), f"the log-probabilities of {what} in another order")
    gap = (lp - again).abs()
    if not (gap <= 1e-4).all():
        i = int(gap.argmax())
        fail(f"{what}: the log-probability of input {i} changes from {lp[i].item():.6g} to "
             f"{again[i].item():.6g} when the batch is given in reverse order. Each example's "
             "log_prob must depend on that example only (softmax over the levels, never over "
             "the batch dimension).")


# =============================================================================================
# histogram_probs (2 points): maximum likelihood (1), pseudo-counts (1)
# =============================================================================================

_HIST_CASES = {  # smoothing? -> [(d, number of samples, highest level drawn + 1, alpha, seed)]
    False: [(5, 40, 5, None, 1), (10, 25, 7, 0.0, 2), (3, 1, 3, None, 3), (1, 6, 1, 0.0, 4),
            (32, 300, 20, None, 5)],
    True: [(5, 40, 5, 1.0, 11), (10, 25, 7, 0.5, 12), (3, 1, 3, 2.5, 13), (32, 300, 20, 0.1, 14),
           (4, 8, 2, 100.0, 15)],
}


def _hist_samples(n: int, top: int, seed: int) -> Tensor:
    return torch.randint(0, top, (n,), generator=gen(seed))


def _hist_call(d: int, n: int, alpha) -> str:
    return (f"histogram_probs(samples [{n}], d={d}" +
            (")" if alpha is None else f", alpha={alpha:g})"))


def _probe_hist(ns, smooth: bool) -> dict[str, Tensor]:
    fn, out = student(ns, "histogram_probs"), {}
    for c, (d, n, top, alpha, seed) in enumerate(_HIST_CASES[smooth]):
        samples = _hist_samples(n, top, seed)
        probs = fn(samples.clone(), d) if alpha is None else fn(samples.clone(), d, alpha)
        out[f"p_{c}"] = returned(probs, _hist_call(d, n, alpha))
    return out


def _judge_hist(out, smooth: bool) -> None:
    for c, (d, n, top, alpha, seed) in enumerate(_HIST_CASES[smooth]):
        samples = _hist_samples(n, top, seed)
        want = histogram_probs(samples, d, alpha or 0.0).double()
        what = _hist_call(d, n, alpha)
        got = from_np(out[f"p_{c}"])
        check_shape(got, (d,), f"{what} (one probability per level, unseen levels included)")
        if smooth:
            hint = (f"with pseudo-counts every level gets (count + alpha) / (N + alpha * d): "
                    f"here (count + {alpha:g}) / ({n} + {alpha:g} * {d}).")
        else:
            hint = ("the maximum-likelihood histogram is count / N for every level 0..d-1, "
                    "0 for levels never seen (torch.bincount(samples, minlength=d) counts them).")
        check_close(got.double(), want, what, atol=1e-6, rtol=1e-5, hint=hint)


# =============================================================================================
# inverse_cdf_sample (3 points): random u, batched (1); u on a bin edge (1); rounding (1)
# =============================================================================================

_BATCH_SHAPES = [((), 6, torch.float32, 21), ((7,), 4, torch.float32, 22),
                 ((3, 5), 8, torch.float64, 23), ((40,), 3, torch.float32, 24)]


def _random_case(c: int):
    lead, d, dtype, seed = _BATCH_SHAPES[c]
    g = gen(seed)
    probs = torch.softmax(torch.randn(*lead, d, generator=g, dtype=torch.float64) * 1.5, -1)
    u = torch.rand(lead, generator=g, dtype=torch.float64)
    return probs.to(dtype), u.to(dtype)


# Dyadic probabilities: their running sums are exact in any float type and any order, so a u
# equal to a CDF value is the same number for the grader and for the student's cumsum.
_EDGE_CASES = [
    ([0.25, 0.0, 0.125, 0.5, 0.125], [0.0, 0.25, 0.375, 0.875, 0.5, 0.25 + 2 ** -20]),
    ([0.0, 0.5, 0.0, 0.5], [0.0, 0.5, 0.25, 0.75]),
    ([0.5, 0.5], [0.5, 0.0]),
]
_ROUNDING_CASES = [
    ([0.5, 0.25, 0.125], [0.875, 0.9, 0.999, 0.6]),
    ([0.25, 0.25, 0.25, 0.2490234375], [0.9990234375, 0.99951171875, 0.9992, 0.7]),
]
_EDGE_HINT = ("When u equals CDF[k] exactly, k is not chosen: the comparison is strict "
              "(CDF[k] > u), so u = CDF[k] falls in the next bin, and a level of probability 0 "
              "is never drawn.")
_ROUNDING_HINT = ("When rounding leaves the CDF's last value at or below u, no k has CDF[k] > u: "
                  "return the last level d-1 (never d, which is not a level), e.g. with "
                  ".clamp(max=d - 1).")


def _probe_icdf_random(ns) -> dict[str, Tensor]:
    fn, out = student(ns, "inverse_cdf_sample"), {}
    for c, (lead, d, dtype, _) in enumerate(_BATCH_SHAPES):
        probs, u = _random_case(c)
        k = returned(fn(probs.clone(), u.clone()),
                    f"inverse_cdf_sample(probs {list(probs.shape)}, u {list(u.shape)})")
        out[f"k_{c}"] = k
    return out


def _probe_icdf_scalars(ns, cases, hint: str) -> dict[str, Tensor]:
    """One call per u (probs [d], u a 0-dim tensor): the batching is graded elsewhere
    (``hint`` is the judge's)."""
    fn, out = student(ns, "inverse_cdf_sample"), {}
    for c, (probs, us) in enumerate(cases):
        got = []
        for u in us:
            k = fn(torch.tensor(probs, dtype=torch.float32), torch.tensor(u, dtype=torch.float32))
            k = torch.as_tensor(k)
            check_shape(k, (), f"inverse_cdf_sample(probs [{len(probs)}], u) for a 0-dim u")
            _integer_levels(k, "inverse_cdf_sample(probs, u)")
            got.append(k.long())
        out[f"k_{c}"] = torch.stack(got)
    return out


def _judge_icdf_scalars(out, cases, hint: str) -> None:
    for c, (probs, us) in enumerate(cases):
        want = inverse_cdf_sample(torch.tensor(probs, dtype=torch.float32),
                                  torch.tensor(us, dtype=torch.float32))
        got = from_np(out[f"k_{c}"])
        check_shape(got, (len(us),), "the levels drawn")
        cdf = torch.tensor(probs, dtype=torch.float64).cumsum(0).tolist()
        for k, e, u in zip(got.tolist(), want.tolist(), us):
            if k != e:
                fail(f"inverse_cdf_sample(probs={probs}, u={u:.10g}) returned {k}; expected {e} "
                     f"(the CDF is {[round(v, 10) for v in cdf]}). {hint}")


def _judge_inverse_cdf_random(out) -> None:
    for c, (lead, d, dtype, _) in enumerate(_BATCH_SHAPES):
        probs, u = _random_case(c)
        want = inverse_cdf_sample(probs, u)
        got = from_np(out[f"k_{c}"])
        what = f"inverse_cdf_sample(probs {list(probs.shape)}, u {list(u.shape)})"
        check_shape(got, tuple(lead), f"{what} (one level per u: the leading dims of probs)")
        _integer_levels(got, what)
        check_close(got.long(), want, what, atol=0, rtol=0,
                    hint="the sample is the smallest k with CDF[k] > u, the CDF being the "
                         "running sum of probs over the last dim (torch.cumsum(probs, -1)); "
                         "every leading dim is a separate distribution with its own u.")


# =============================================================================================
# dlogistic_mixture_log_prob (4 points): interior bins (1), open edge bins (1), extremes (2)
# =============================================================================================

# Moderate mixtures: every bin holds at least about 1e-4 of the mass, so float32 is plenty.
_MODERATE = [(8, 2, 31), (12, 3, 32), (16, 5, 33), (6, 1, 34), (10, 4, 35)]   # d, M, seed
_EDGE_SETS = [(2, 1, 41), (5, 2, 42), (9, 3, 43), (4, 2, 44), (7, 1, 45)]


def _moderate_params(d: int, m: int, seed: int, spread: float) -> tuple[Tensor, ...]:
    """Float32 mixture parameters: means over [-spread, d-1+spread], scales 0.7..4.5."""
    g = gen(seed)
    logits = torch.randn(m, generator=g)
    means = torch.rand(m, generator=g) * (d - 1 + 2 * spread) - spread
    log_scales = torch.rand(m, generator=g) * 1.85 - 0.35
    return logits, means, log_scales


def _interior_x(d: int, seed: int) -> Tensor:
    return torch.randint(1, d - 1, (30,), generator=gen(seed + 500))


def _f32(values) -> Tensor:
    return torch.tensor(values, dtype=torch.float32)


# Extremes (d, logits, means, log_scales): far tails on both sides, bin masses down to
# exp(-1e5), scales e^-10 and e^10, means outside the range, mixtures whose every component
# is far away.
_EXTREMES = [
    (10, [0.0], [-30.0], [0.0]),
    (10, [0.0], [40.0], [0.0]),
    (10, [0.0], [3.3], [-10.0]),
    (10, [0.0], [4.6], [10.0]),
    (16, [0.0, 1.0], [2.0, 12.0], [-5.3, -5.3]),
    (16, [-30.0, 0.0, 5.0], [-20.0, 40.0, 60.0], [-1.0, 0.5, -2.0]),
    (16, [1.0, -2.0, 0.5, 3.0], [-5.0, 7.25, 22.0, 8.0], [10.0, -10.0, -10.0, 1.0]),
    (3, [2.0, -1.0], [1.0, -200.0], [-10.0, 2.0]),
]


def _logistic_call(d: int, m: int) -> str:
    return f"dlogistic_mixture_log_prob(x, logits [{m}], means [{m}], log_scales [{m}], d={d})"


def _reference_lp(x: Tensor, params: Sequence[Tensor], d: int) -> Tensor:
    """The reference in float64 (from the float32 parameters the student was given)."""
    return dlogistic_mixture_log_prob(x, *(p.double() for p in params), d)


def _run_logistic(fn, x: Tensor, params: Sequence[Tensor], d: int) -> Tensor:
    m = params[0].numel()
    lp = returned(fn(x.clone(), *(p.clone() for p in params), d), _logistic_call(d, m))
    check_shape(lp, (x.numel(),), f"{_logistic_call(d, m)} for x of shape {tuple(x.shape)}")
    return lp


def _probe_logistic_interior(ns) -> dict[str, Tensor]:
    fn, out = student(ns, "dlogistic_mixture_log_prob"), {}
    for c, (d, m, seed) in enumerate(_MODERATE):
        out[f"lp_{c}"] = _run_logistic(fn, _interior_x(d, seed),
                                       _moderate_params(d, m, seed, 0.0), d)
    return out


def _judge_logistic_interior(out) -> None:
    for c, (d, m, seed) in enumerate(_MODERATE):
        x, params = _interior_x(d, seed), _moderate_params(d, m, seed, 0.0)
        check_close(from_np(out[f"lp_{c}"]).double(), _reference_lp(x, params, d),
                    f"{_logistic_call(d, m)} on interior levels 1..{d - 2}",
                    atol=1e-4, rtol=1e-4,
                    hint="bin k covers [k - 0.5, k + 0.5]: its mass under one logistic is "
                         "sigmoid((k + 0.5 - mean) / s) - sigmoid((k - 0.5 - mean) / s), "
                         "s = exp(log_scale), not the density at k; the mixture weights are "
                         "softmax(logits).")


def _probe_logistic_edges(ns) -> dict[str, Tensor]:
    fn, out = student(ns, "dlogistic_mixture_log_prob"), {}
    for c, (d, m, seed) in enumerate(_EDGE_SETS):
        out[f"lp_{c}"] = _run_logistic(fn, torch.arange(d),
                                       _moderate_params(d, m, seed, 2.0), d)
    return out


def _judge_logistic_edges(out) -> None:
    for c, (d, m, seed) in enumerate(_EDGE_SETS):
        params = _moderate_params(d, m, seed, 2.0)
        want = _reference_lp(torch.arange(d), params, d)
        got = from_np(out[f"lp_{c}"]).double()
        what = f"{_logistic_call(d, m)} on x = 0..{d - 1}"
        check_shape(got, (d,), what)
        hint = ("bin 0 extends to -inf (its mass is sigmoid((0.5 - mean) / s)) and bin d-1 "
                "to +inf (1 - sigmoid((d - 1.5 - mean) / s)), so the d bins hold all the "
                "mass.")
        if torch.isfinite(got).all():
            total = float(got.logsumexp(0).exp())
            if abs(total - 1) > 1e-4:
                fail(f"{what}: the probabilities of the {d} levels sum to {total:.6f}, "
                     f"not 1 (means {params[1].tolist()}). {hint}")
        check_close(got[[0, d - 1]], want[[0, d - 1]],
                    f"{what}: the log-probabilities of the edge bins 0 and {d - 1}",
                    atol=1e-4, rtol=1e-4, hint=hint)


def _probe_logistic_extremes(ns) -> dict[str, Tensor]:
    fn, out = student(ns, "dlogistic_mixture_log_prob"), {}
    for c, (d, logits, means, log_scales) in enumerate(_EXTREMES):
        params = (_f32(logits), _f32(means), _f32(log_scales))
        out[f"lp_{c}"] = _run_logistic(fn, torch.arange(d), params, d)
    return out


def _judge_logistic_extremes(out) -> None:
    """Every bin finite; the interior bins exact (the edge bins' values are the second
    test's business, so an edge mistake is charged there only)."""
    for c, (d, logits, means, log_scales) in enumerate(_EXTREMES):
        params = (_f32(logits), _f32(means), _f32(log_scales))
        want = _reference_lp(torch.arange(d), params, d)
        got = from_np(out[f"lp_{c}"]).double()
        what = (f"dlogistic_mixture_log_prob(x = 0..{d - 1}, logits={logits}, means={means}, "
                f"log_scales={log_scales}, d={d})")
        check_shape(got, (d,), what)
        if not torch.isfinite(got).all():
            k = int((~torch.isfinite(got)).nonzero()[0])
            fail(f"{what} gives {got[k].item()} at x = {k}, where the exact value is "
                 f"{want[k].item():.6g}: a tiny bin mass underflowed, or 1 - 1 cancelled in "
                 "a tail. Stay in log space: sigmoid(b) - sigmoid(a) = sigmoid(b) * "
                 "sigmoid(-a) * (1 - exp(-(b - a))) with b - a = 1/s, each factor by "
                 "F.logsigmoid or log(-expm1(.)), and logsumexp over the components.")
        # float32 rounding of values near -1e5 costs ~1e-2 in absolute terms: relative part
        check_close(got[1:d - 1], want[1:d - 1], f"{what} on the interior levels 1..{d - 2}",
                    atol=5e-3, rtol=1e-4,
                    hint="compute each bin's mass exactly (no density-at-the-centre "
                         "approximation), in log space, and combine the components with "
                         "logsumexp of log_softmax(logits) + the components' log-masses.")


# =============================================================================================
# bits_per_dim (1 point)
# =============================================================================================

_BITS_CASES = [(5, 784, 51), (1, 1, 52), (64, 3072, 53), (10, 2, 54)]  # N, num_dims, seed


def _nll_case(n: int, seed: int) -> Tensor:
    return torch.rand(n, generator=gen(seed)) * 500 + 1


def _probe_bits_per_dim(ns) -> dict[str, Tensor]:
    fn, values = student(ns, "bits_per_dim"), []
    for n, dims, seed in _BITS_CASES:
        values.append(_number(fn(_nll_case(n, seed), dims),
                              f"bits_per_dim(nll_nats [{n}], {dims})"))
    return {"values": torch.tensor(values, dtype=torch.float64)}


def _judge_bits_per_dim(out) -> None:
    got = from_np(out["values"])
    check_shape(got, (len(_BITS_CASES),), "the values of bits_per_dim")
    for value, (n, dims, seed) in zip(got.tolist(), _BITS_CASES):
        nll = _nll_case(n, seed)
        want = bits_per_dim(nll, dims)
        if not math.isclose(value, want, rel_tol=1e-5):
            fail(f"bits_per_dim(nll_nats, num_dims={dims}) for {n} example(s) with mean NLL "
                 f"{float(nll.double().mean()):.4f} nats returned {value:.6g}; expected "
                 f"{want:.6g}: the mean over examples, divided by num_dims, divided by "
                 "ln 2 (1 bit = ln 2 nats).")


# =============================================================================================
# TwoVariableModel (3 points): normalised (1), p(x2 | x1) depends on x1 and learns (1),
# p(x1) learns (1)
# =============================================================================================

_TV_CASES = [(3, 4, 61), (5, 8, 62), (7, 16, 63)]     # d, hidden, seed of the random weights
_FIT = dict(d=5, hidden=16, seed=64, steps=150, lr=0.05)
_FIT_CONDITIONAL_KL = 0.05   # nats; correct models ~3e-5; a p(x2 | x1) that ignores x1: 0.60
_FIT_MARGINAL_KL = 0.02      # nats; correct models ~1e-9; a p(x1) that never trains: 0.25
_ROWS_DIFFER = 1e-3          # total variation of two rows of p(x2 | x1), random weights (~0.06+)


def _fit_target() -> tuple[Tensor, Tensor]:
    """The joint the grader fits: p(x1) ``[d]`` and p(x2 | x1) ``[d, d]`` (float64)."""
    d, g = _FIT["d"], gen(_FIT["seed"])
    p1 = torch.softmax(torch.randn(d, generator=g, dtype=torch.float64) * 1.2, 0)
    cond = torch.softmax(torch.randn(d, d, generator=g, dtype=torch.float64) * 2.0, 1)
    return p1, cond


def _new_two_variable(ns, d: int, hidden: int) -> nn.Module:
    model = student(ns, "TwoVariableModel")(d, hidden)
    if not isinstance(model, nn.Module):
        fail(f"TwoVariableModel({d}, {hidden}) should be an nn.Module, got "
             f"{type(model).__name__}.")
    return model


def _pair_table(lp: Tensor, d: int) -> tuple[Tensor, Tensor]:
    """log p over all pairs (``all_configs`` order) -> (log p(x1) [d], log p(x2 | x1) [d, d]),
    each normalised by the judge itself."""
    joint = lp.double().view(d, d)
    joint = joint - joint.logsumexp((0, 1))
    marginal = joint.logsumexp(1)
    return marginal, joint - marginal[:, None]


def _probe_tv_random(ns) -> dict[str, Tensor]:
    out = {}
    for c, (d, hidden, seed) in enumerate(_TV_CASES):
        model = _new_two_variable(ns, d, hidden)
        randomise(model, gen(seed), gain=2.0)
        pairs = all_configs((2,), d)
        what = f"TwoVariableModel({d}, {hidden})"
        with torch.no_grad():
            out[f"lp_{c}"] = _log_prob(model, pairs, d * d, what)
            out[f"rev_{c}"] = _log_prob(model, pairs.flip(0), d * d, what).flip(0)
    return out


def _probe_tv_fit(ns) -> dict[str, Tensor]:
    """Fit the student's model with the grader's loop: Adam on the cross-entropy from the
    target joint (exact, over all pairs: no sampling noise)."""
    d, hidden = _FIT["d"], _FIT["hidden"]
    model = _new_two_variable(ns, d, hidden)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        fail(f"TwoVariableModel({d}, {hidden}) has no trainable parameters: hold the logits "
             "vector in an nn.Parameter and the MLP in nn.Linear layers of the module.")
    p1, cond = _fit_target()
    weights = (p1[:, None] * cond).reshape(-1)
    pairs = all_configs((2,), d)
    opt = torch.optim.Adam(params, lr=_FIT["lr"])
    what = f"TwoVariableModel({d}, {hidden})"
    for _ in range(_FIT["steps"]):
        lp = model.log_prob(pairs)
        check_shape(returned(lp, f"{what}.log_prob(x)"), (d * d,), f"{what}.log_prob(x)")
        loss = -(weights.to(lp.dtype) * lp).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return {"lp": _log_prob(model, pairs, d * d, what)}


def _fitted(out) -> tuple[Tensor, Tensor]:
    lp = from_np(out["lp"]).double()
    d = _FIT["d"]
    check_shape(lp, (d * d,), "the log-probabilities of all pairs after fitting")
    fit = (f"the grader's fit (Adam, lr {_FIT['lr']}, {_FIT['steps']} steps on the NLL of a "
           "known joint)")
    if not torch.isfinite(lp).all():
        fail(f"after {fit}, log_prob is no longer finite; make it a normalised log-probability "
             "(see the first test).")
    total = float(lp.logsumexp(0).exp())
    if abs(total - 1) > 1e-3:
        fail(f"after {fit}, the probabilities of all {d * d} pairs sum to {total:.4g}, not 1, so "
             "the factors p(x1) and p(x2 | x1) cannot be read from log_prob; make each factor "
             "a log_softmax over the d levels (see the first test).")
    return _pair_table(lp, d)


def _judge_two_variable_normalised(out) -> None:
    for c, (d, hidden, _) in enumerate(_TV_CASES):
        what = f"TwoVariableModel({d}, {hidden}) with random weights"
        lp = from_np(out[f"lp_{c}"]).double()
        _judge_normalised(lp, d * d, f"{what}, over all {d}x{d} pairs")
        _judge_batch_free(lp, from_np(out[f"rev_{c}"]).double(), what)


def _probe_two_variable_conditional(ns) -> dict[str, Tensor]:
    return {**_probe_tv_random(ns), **_probe_tv_fit(ns)}


def _judge_two_variable_conditional(out) -> None:
    for c, (d, hidden, _) in enumerate(_TV_CASES):
        lp = from_np(out[f"lp_{c}"]).double()
        check_shape(lp, (d * d,), "the log-probabilities of all pairs")
        if not torch.isfinite(lp).all():
            fail(f"TwoVariableModel({d}, {hidden}) gives a non-finite log_prob for some "
                 "pair (see the first test).")
        _, cond = _pair_table(lp, d)
        probs = cond.exp()
        spread = (probs[:, None, :] - probs[None, :, :]).abs().sum(-1).max() / 2
        if spread < _ROWS_DIFFER:
            fail(f"TwoVariableModel({d}, {hidden}) with random weights gives the same "
                 "p(x2 | x1) for every value of x1: the MLP for p(x2 | x1) must read x1 "
                 "(as the one-hot F.one_hot(x[:, 0], d)), never x2 or a constant.")
    p1, cond = _fit_target()
    _, got = _fitted(out)
    kl = float((p1[:, None] * cond * (cond.log() - got)).sum())
    if kl > _FIT_CONDITIONAL_KL:
        fail(f"fitted to a known joint (Adam on your model's parameters, lr {_FIT['lr']}, "
             f"{_FIT['steps']} steps), TwoVariableModel({_FIT['d']}, {_FIT['hidden']})'s "
             f"p(x2 | x1) stays {kl:.3f} nats (mean KL) from the target's; a correct model "
             f"gets below {_FIT_CONDITIONAL_KL}. The MLP must read the one-hot of x1, its "
             "layers must be registered modules (nn.Linear attributes or nn.Sequential, not "
             "a plain list), and its output must go through log_softmax over the d levels.")


def _judge_two_variable_marginal(out) -> None:
    p1, _ = _fit_target()
    got, _ = _fitted(out)
    kl = float((p1 * (p1.log() - got)).sum())
    if kl > _FIT_MARGINAL_KL:
        fail(f"fitted to a known joint (Adam on your model's parameters, lr {_FIT['lr']}, "
             f"{_FIT['steps']} steps), TwoVariableModel({_FIT['d']}, {_FIT['hidden']})'s "
             f"p(x1) stays {kl:.3f} nats (KL) from the target's; a correct model gets below "
             f"{_FIT_MARGINAL_KL}. p(x1) is log_softmax of a logits vector that must be an "
             "nn.Parameter (a plain tensor attribute is never trained), used for every "
             "pair whatever x2.")


# =============================================================================================
# CoordinateRNN (4 points): normalised (1), causal and consistent (2), coordinates (1)
# =============================================================================================

_RNN_HIDDEN = 8
_NORM_SHAPE = (2, 3)                   # 2^6 = 64 images, enumerated
_CAUSAL_SHAPE = (3, 4)
_CAUSAL_TRIALS = 3
_SAME, _CHANGED = 1e-5, 1e-3           # logit differences read as "equal" / "changed"
# (H, W) pairs with equal weights, and the raster positions compared: the first positions whose
# predicted pixel has equal coordinates in both, then the first one whose coordinates differ.
_COORD_PAIRS = [((2, 3), (3, 3), 3), ((3, 3), (3, 5), 1), ((2, 4), (2, 3), 1)]


def _new_rnn(ns, append: bool, h: int, w: int, seed: int) -> nn.Module:
    model = student(ns, "CoordinateRNN")(_RNN_HIDDEN, append, h, w)
    if not isinstance(model, nn.Module):
        fail(f"CoordinateRNN({_RNN_HIDDEN}, {append}, {h}, {w}) should be an nn.Module, got "
             f"{type(model).__name__}.")
    randomise(model, gen(seed), gain=1.5)
    return model.eval()


def _rnn_call(append: bool, h: int, w: int) -> str:
    return f"CoordinateRNN({_RNN_HIDDEN}, append_coords={append}, height={h}, width={w})"


def _logits(model: nn.Module, x: Tensor, what: str) -> Tensor:
    y = returned(model(x), f"{what}(x)")
    check_shape(y, tuple(x.shape), f"{what}(x) for x of shape {tuple(x.shape)} (one Bernoulli "
                "logit per pixel)")
    return y.detach().double()


def _probe_rnn_normalised(ns) -> dict[str, Tensor]:
    out = {}
    h, w = _NORM_SHAPE
    images = all_configs((1, h, w), 2)
    for append in (False, True):
        model = _new_rnn(ns, append, h, w, 70 + append)
        what = _rnn_call(append, h, w)
        with torch.no_grad():
            out[f"lp_{append:d}"] = _log_prob(model, images.float(), len(images), what)
            out[f"rev_{append:d}"] = _log_prob(model, images.flip(0), len(images),
                                               what).flip(0)   # LongTensor input
    return out


def _judge_rnn_normalised(out) -> None:
    h, w = _NORM_SHAPE
    for append in (False, True):
        what = f"{_rnn_call(append, h, w)} with random weights"
        lp = from_np(out[f"lp_{append:d}"]).double()
        _judge_normalised(lp, 2 ** (h * w), f"{what}, over all {2 ** (h * w)} binary images")
        _judge_batch_free(lp, from_np(out[f"rev_{append:d}"]).double(),
                          f"{what} (the reverse order given as a LongTensor)")


def _probe_rnn_causal(ns) -> dict[str, Tensor]:
    out = {}
    h, w = _CAUSAL_SHAPE
    n = h * w
    g = gen(80)
    for append in (False, True):
        model = _new_rnn(ns, append, h, w, 81 + append)
        what = _rnn_call(append, h, w)
        inputs = torch.randint(0, 2, (_CAUSAL_TRIALS, 1, h, w), generator=g).double()

        def call(mod, v, what=what):
            y = returned(mod(v), f"{what}(x)")
            check_shape(y, tuple(v.shape), f"{what}(x) for x of shape {tuple(v.shape)} "
                        "(one Bernoulli logit per pixel)")
            return y

        found = dependence(model, inputs, call=call, levels=2)
        out[f"seen_{append:d}"], out[f"how_{append:d}"] = found.seen, found.how()
        x = inputs[0].reshape(1, n).float()
        variants = x.repeat(n + 1, 1)
        variants[torch.arange(1, n + 1), torch.arange(n)] = 1 - x[0]
        variants = variants.view(n + 1, 1, h, w)
        with torch.no_grad():
            out[f"x_{append:d}"] = variants
            out[f"logits_{append:d}"] = _logits(model, variants, what)
            out[f"lp_{append:d}"] = _log_prob(model, variants, n + 1, what)
    return out


def _judge_rnn_causal(out) -> None:
    h, w = _CAUSAL_SHAPE
    n = h * w
    for append in (False, True):
        what = _rnn_call(append, h, w)
        seen = from_np(out[f"seen_{append:d}"]).bool()
        check_shape(seen, (n, n), "the dependence table")
        how = f" (Decided by {Dependence.described(out[f'how_{append:d}'])}.)"
        leak = (seen & torch.ones(n, n, dtype=torch.bool).triu()).nonzero()
        if len(leak):
            p, q = (divmod(int(v), w) for v in leak[0].tolist())
            where = "itself" if p == q else f"pixel {q}, which comes later in raster order"
            fail(f"{what}: the logit of pixel {p} changes when {where} changes. Step t must "
                 "be fed the PREVIOUS pixel x[t-1] (0 before the first), never x[t]: shift "
                 "the raster sequence right by one." + how)
        for p in range(1, n):
            if not seen[p, :p].any():
                fail(f"{what}: the logit of pixel {divmod(p, w)} depends on no earlier "
                     "pixel; the LSTM must carry what it read through its state." + how)
        x = from_np(out[f"x_{append:d}"]).double()
        logits = from_np(out[f"logits_{append:d}"]).double()
        lp = from_np(out[f"lp_{append:d}"]).double()
        want = -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum((1, 2, 3))
        check_close(lp, want, f"{what}.log_prob(x)", atol=1e-4, rtol=1e-5,
                    hint="log_prob(x) must be the sum over pixels of log sigmoid(logit) "
                         "where x = 1 and log sigmoid(-logit) where x = 0, with the logits "
                         "of forward(x) (logits, not probabilities).")


_FED_SHAPES = [(3, 4), (4, 3)]  # not square: rows and columns cannot be swapped unseen


def _recurrent_inputs(model: nn.Module, x: Tensor, what: str) -> Tensor | None:
    """What the model's recurrent layer is fed for ``x [N, 1, H, W]``: ``[N, H*W, F]``, read
    with hooks on its nn.LSTM (batch first or not) or nn.LSTMCell (one call per step); None
    when it has neither (the other checks still judge it)."""
    steps, seen = x.shape[-2] * x.shape[-1], []
    hooks = [m.register_forward_pre_hook(lambda mod, args: seen.append((mod, args[0])))
             for m in model.modules() if isinstance(m, (nn.LSTM, nn.LSTMCell))]
    try:
        with torch.no_grad():
            _logits(model, x, what)
    finally:
        for hook in hooks:
            hook.remove()
    calls = [(m, a) for m, a in seen if isinstance(a, Tensor)]
    for module, fed in calls:
        if isinstance(module, nn.LSTM) and fed.dim() == 3:
            fed = fed if module.batch_first else fed.transpose(0, 1)
            if fed.shape[:2] == (x.shape[0], steps):
                return fed.detach().double()
    cells = [a for m, a in calls if isinstance(m, nn.LSTMCell) and a.dim() == 2]
    if len(cells) == steps:
        return torch.stack(cells, 1).detach().double()
    return None


def _fed_columns(h: int, w: int, x: Tensor) -> dict[str, Tensor]:
    """The coordinates the contract feeds step t, ``[N, H*W]`` each: the row/(H-1) and
    column/(W-1) of the pixel t it predicts (how the previous pixel enters is left free)."""
    flat = x.reshape(x.shape[0], -1).double()
    t = torch.arange(h * w, dtype=torch.float64)
    return {"row/(H-1)": ((t // w) / (h - 1)).expand_as(flat),
            "column/(W-1)": ((t % w) / (w - 1)).expand_as(flat)}


def _probe_rnn_coordinates(ns) -> dict[str, Tensor]:
    out = {}
    for k, (h, w) in enumerate(_FED_SHAPES):
        model = _new_rnn(ns, True, h, w, 95 + k)
        x = torch.randint(0, 2, (2, 1, h, w), generator=gen(96 + k)).float()
        fed = _recurrent_inputs(model, x, _rnn_call(True, h, w))
        if fed is not None:
            out[f"fed_{k}"], out[f"fed_x_{k}"] = fed, x
    g = gen(90)
    for c, (first, second, _) in enumerate(_COORD_PAIRS):
        size = max(first[0] * first[1], second[0] * second[1])
        seq = torch.randint(0, 2, (3, size), generator=g).float()
        for append in (False, True):
            for k, (h, w) in enumerate((first, second)):
                model = _new_rnn(ns, append, h, w, 91)   # equal weights for both sizes
                x = seq[:, :h * w].reshape(3, 1, h, w)
                with torch.no_grad():
                    y = _logits(model, x, _rnn_call(append, h, w))
                out[f"y_{c}_{append:d}_{k}"] = y.reshape(3, -1)
    return out


def _judge_rnn_coordinates(out) -> None:
    for k, (h, w) in enumerate(_FED_SHAPES):
        if f"fed_{k}" not in out:
            continue
        fed, x = from_np(out[f"fed_{k}"]), from_np(out[f"fed_x_{k}"])
        for name, want in _fed_columns(h, w, x).items():
            match = [(fed[..., f] - want).abs().max() < 1e-5 for f in range(fed.shape[-1])]
            if not any(match):
                t = h * w - 1
                fail(f"{_rnn_call(True, h, w)}: no input of the LSTM equals {name} at "
                     f"every step; step {t} predicts pixel {divmod(t, w)}, so it should be "
                     f"fed {want[0, t].item():.4g} as {name}, but its inputs there are "
                     f"{[round(v, 4) for v in fed[0, t].tolist()]}. Feed step t the "
                     "coordinates of the pixel it PREDICTS (not of the pixel before it), "
                     "row by H-1 and column by W-1.")
    for c, (first, second, pos) in enumerate(_COORD_PAIRS):
        for append in (False, True):
            a = from_np(out[f"y_{c}_{append:d}_0"]).double()
            b = from_np(out[f"y_{c}_{append:d}_1"]).double()
            shared = min(a.shape[1], b.shape[1])
            gap = (a[:, :shared] - b[:, :shared]).abs().amax(0)    # per raster position
            w1, w2 = first[1], second[1]
            px = divmod(pos, w1)
            # without coordinates every shared position must agree; with them, those before
            # the first pixel whose coordinates differ between the two sizes
            moved = (gap[:pos] if append else gap) > _SAME
            if moved.any():
                t = int(moved.nonzero()[0])
                sizes = f"a {first[0]}x{w1} and a {second[0]}x{w2} image"
                fail(f"with append_coords=True and equal weights, the logit of pixel "
                     f"{divmod(t, w1)} differs between {sizes}, although that pixel has the "
                     "same (row/(H-1), column/(W-1)) in both and the pixels before it are "
                     "equal." if append else
                     f"with append_coords=False and equal weights, the logit of raster "
                     f"position {t} differs between {sizes} with the same pixels: without "
                     "coordinates the model must not depend on the image size.")
            if not append:
                continue
            if gap[pos] < _CHANGED:
                h1, h2 = first[0], second[0]
                fail(f"with append_coords=True and equal weights, the logit of pixel {px} "
                     f"is the same in a {h1}x{w1} and a {h2}x{w2} image, although its "
                     f"coordinates (row/(H-1), column/(W-1)) differ: "
                     f"{(px[0] / (h1 - 1), px[1] / (w1 - 1))} and "
                     f"{(px[0] / (h2 - 1), px[1] / (w2 - 1))}. Feed step t the coordinates "
                     "of the pixel it PREDICTS (pixel t, not pixel t-1), scaled by H-1 and "
                     "W-1.")


# =============================================================================================
# train_two_variable (3 points): normalised, then the NLL of held-back pairs below a threshold
# =============================================================================================

_TRAIN_D = 8
_TRAIN = dict(d=_TRAIN_D, n_train=2000, n_test=500, seed=41)      # what the student trains on
_HELD = dict(d=_TRAIN_D, n_train=1, n_test=4000, seed=42)         # what the grader keeps back
# nats per pair on the held-back pairs: the reference ~2.56 (the picture's entropy 2.54), the
# best model that ignores the dependence of x2 on x1 3.21, untrained ~4.1, uniform ln 64 = 4.16
_NLL_THRESHOLD = 2.9


def _train_data() -> tuple[Tensor, Tensor]:
    data = smiley_2d(**_TRAIN)
    return data.train, data.test


def _held_data() -> Tensor:
    return smiley_2d(**_HELD).test


def held_out_nll(lp_pairs: Tensor, held: Tensor, d: int) -> float:
    """Mean NLL (nats per pair) of ``held [M, 2]`` read from the log-probabilities of all
    ``d * d`` pairs in ``all_configs`` order (row x1, column x2)."""
    return float(-lp_pairs.double()[held[:, 0] * d + held[:, 1]].mean())


def _probe_train_two_variable(ns) -> dict[str, Tensor]:
    train, test = _train_data()
    model = student(ns, "train_two_variable")(train.clone(), test.clone(), _TRAIN_D)
    if not isinstance(model, nn.Module):
        fail(f"train_two_variable should return the trained model (a TwoVariableModel), "
             f"got {type(model).__name__}.")
    model = model.cpu().eval()
    pairs = all_configs((2,), _TRAIN_D)
    with torch.no_grad():
        return {"lp": _log_prob(model, pairs, len(pairs), "the trained model")}


def _judge_train_two_variable(out) -> None:
    d = _TRAIN_D
    lp = from_np(out["lp"]).double()
    _judge_normalised(lp, d * d, f"the trained model, over all {d}x{d} pairs")
    nll = held_out_nll(lp, _held_data(), d)
    if nll > _NLL_THRESHOLD:
        fail(f"the trained model reaches {nll:.3f} nats per pair on the grader's held-back "
             f"pairs; it must reach {_NLL_THRESHOLD} or less (untrained: about "
             f"{2 * math.log(d):.2f}; the best model in which x2 ignores x1: about 3.2). "
             "Minimise the mean of -log_prob over the training pairs with Adam (lr about "
             "0.01-0.05, a hundred or more full-batch steps) and return the model itself.")


__all__ = ["TwoVariableModel", "CoordinateRNN", "train_two_variable", "held_out_nll"]


# =============================================================================================
# The assignment as data: exercise, points, the parts (one per hidden test cell) that grade it
# =============================================================================================

TABLE = Assignment("hw1_foundations", (
    Exercise("histogram_probs", 2, (
        Check("histogram_probs", "test_histogram_probs", 1, _probe_hist, _judge_hist, (False,)),
        Check("histogram_probs", "test_histogram_probs_2", 1, _probe_hist, _judge_hist, (True,)),
    )),
    Exercise("inverse_cdf_sample", 3, (
        Check("inverse_cdf_sample", "test_inverse_cdf_sample", 1, _probe_icdf_random,
              _judge_inverse_cdf_random),
        Check("inverse_cdf_sample", "test_inverse_cdf_sample_2", 1, _probe_icdf_scalars,
              _judge_icdf_scalars, (_EDGE_CASES, _EDGE_HINT)),
        Check("inverse_cdf_sample", "test_inverse_cdf_sample_3", 1, _probe_icdf_scalars,
              _judge_icdf_scalars, (_ROUNDING_CASES, _ROUNDING_HINT)),
    )),
    Exercise("dlogistic_mixture_log_prob", 4, (
        Check("dlogistic_mixture_log_prob", "test_dlogistic_mixture_log_prob", 1,
              _probe_logistic_interior, _judge_logistic_interior),
        Check("dlogistic_mixture_log_prob", "test_dlogistic_mixture_log_prob_2", 1,
              _probe_logistic_edges, _judge_logistic_edges),
        Check("dlogistic_mixture_log_prob", "test_dlogistic_mixture_log_prob_3", 2,
              _probe_logistic_extremes, _judge_logistic_extremes),
    )),
    Exercise("bits_per_dim", 1, (
        Check("bits_per_dim", "test_bits_per_dim", 1, _probe_bits_per_dim, _judge_bits_per_dim),
    )),
    Exercise("TwoVariableModel", 3, (
        Check("TwoVariableModel", "test_TwoVariableModel", 1, _probe_tv_random,
              _judge_two_variable_normalised),
        Check("TwoVariableModel", "test_TwoVariableModel_2", 1, _probe_two_variable_conditional,
              _judge_two_variable_conditional),
        Check("TwoVariableModel", "test_TwoVariableModel_3", 1, _probe_tv_fit,
              _judge_two_variable_marginal),
    )),
    Exercise("CoordinateRNN", 4, (
        Check("CoordinateRNN", "test_CoordinateRNN", 1, _probe_rnn_normalised,
              _judge_rnn_normalised),
        Check("CoordinateRNN", "test_CoordinateRNN_2", 2, _probe_rnn_causal, _judge_rnn_causal),
        Check("CoordinateRNN", "test_CoordinateRNN_3", 1, _probe_rnn_coordinates,
              _judge_rnn_coordinates),
    )),
    Exercise("train_two_variable", 3, (
        Check("train_two_variable", "test_train_two_variable", 3, _probe_train_two_variable,
              _judge_train_two_variable, uses=("TwoVariableModel",)),
    )),
))
