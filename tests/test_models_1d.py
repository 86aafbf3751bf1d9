"""The one- and two-variable reference models: histograms, inverse-CDF sampling, discretised
logistic mixtures (exact log-space numerics), and the two-variable chain-rule model."""
from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from arlab.models.histogram import Histogram, histogram_probs, inverse_cdf_sample
from arlab.models.logistic import (DiscretizedLogisticMixture, LogisticMixtureHead,
                                   discretized_logistic_log_probs, dlogistic_mixture_log_prob)
from arlab.models.two_variable import TwoVariable
from arlab.receptive import causality_violations, receptive_field


def chi2_upper(dof: int, z: float = 4.75) -> float:
    """Wilson-Hilferty upper quantile of chi-square (z = 4.75: about 1e-6 in the tail)."""
    c = 2.0 / (9.0 * dof)
    return dof * (1.0 - c + z * math.sqrt(c)) ** 3


def chi2_stat(draws: torch.Tensor, probs: torch.Tensor) -> tuple[float, int]:
    counts = torch.bincount(draws, minlength=probs.numel()).double()
    expected = probs.double() * draws.numel()
    keep = expected > 5.0                      # bins too small for the approximation are pooled
    obs = torch.cat([counts[keep], counts[~keep].sum().view(1)])
    exp = torch.cat([expected[keep], expected[~keep].sum().view(1)])
    valid = exp > 0
    stat = ((obs[valid] - exp[valid]) ** 2 / exp[valid]).sum()
    return float(stat), int(valid.sum()) - 1


# -- histogram_probs ----------------------------------------------------------------------
def test_histogram_probs_counts_and_alpha():
    samples = torch.tensor([0, 2, 2, 3, 2, 0])
    torch.testing.assert_close(histogram_probs(samples, 5),
                               torch.tensor([2, 0, 3, 1, 0]) / 6.0)
    torch.testing.assert_close(histogram_probs(samples, 5, alpha=0.5),
                               (torch.tensor([2, 0, 3, 1, 0]) + 0.5) / (6 + 2.5))
    big = torch.randint(0, 7, (1000,), generator=torch.Generator().manual_seed(0))
    by_loop = torch.tensor([float((big == k).sum()) for k in range(7)])
    torch.testing.assert_close(histogram_probs(big, 7, alpha=2.0), (by_loop + 2) / (1000 + 14))


def test_histogram_probs_errors():
    with pytest.raises(ValueError, match="0..2"):
        histogram_probs(torch.tensor([0, 3]), 3)
    with pytest.raises(ValueError, match="0..2"):
        histogram_probs(torch.tensor([-1, 1]), 3)
    with pytest.raises(ValueError, match="alpha"):
        histogram_probs(torch.tensor([0, 1]), 3, alpha=-0.1)


# -- inverse_cdf_sample -------------------------------------------------------------------
def test_inverse_cdf_exact_edges():
    probs = torch.tensor([0.25, 0.25, 0.0, 0.5], dtype=torch.float64)   # CDF .25 .5 .5 1
    u = torch.tensor([0.0, 0.1, 0.25, 0.4999, 0.5, 0.75, 0.999999], dtype=torch.float64)
    # u equal to CDF[k] goes to the next bin; the empty bin 2 is never chosen.
    assert inverse_cdf_sample(probs, u).tolist() == [0, 0, 1, 1, 3, 3, 3]


def test_inverse_cdf_rounding_below_one_gives_last_level():
    probs = torch.tensor([0.3, 0.3, 0.3999], dtype=torch.float64)       # sums to 0.9999
    u = torch.tensor([0.99995, 0.9999, 0.5])
    assert inverse_cdf_sample(probs, u).tolist() == [2, 2, 1]
    assert inverse_cdf_sample(probs, u).dtype == torch.long


def test_inverse_cdf_batched_matches_loop():
    g = torch.Generator().manual_seed(1)
    probs = F.softmax(torch.randn(3, 4, 6, generator=g), dim=-1)
    u = torch.rand(3, 4, generator=g)
    got = inverse_cdf_sample(probs, u)
    assert got.shape == (3, 4)
    for i, j in itertools.product(range(3), range(4)):
        cdf = probs[i, j].cumsum(0)
        assert got[i, j] == int((cdf <= u[i, j]).sum().clamp(max=5))


# -- Histogram model ----------------------------------------------------------------------
def test_histogram_model_fit_counts_and_sample():
    data = torch.tensor([[0], [1], [1], [4], [1]])
    model = Histogram(levels=5).fit_counts(data, alpha=1.0)
    torch.testing.assert_close(model.probs(), histogram_probs(data, 5, alpha=1.0))
    assert model(data).shape == (5, 5, 1)
    torch.testing.assert_close(model.log_prob(data), histogram_probs(data, 5, 1.0).log()[data[:, 0]])
    # Unseen levels get probability exactly 0 without smoothing.
    assert Histogram(levels=5).fit_counts(data).probs()[2] == 0
    # Sampling is inverse-CDF sampling of the generator's uniforms.
    draws = model.sample(50, generator=torch.Generator().manual_seed(3))
    u = torch.rand(50, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    assert torch.equal(draws[:, 0], inverse_cdf_sample(model.probs().double(), u))


def test_histogram_model_per_class_counts():
    data = torch.tensor([0, 0, 1, 2, 2, 2])
    cond = torch.tensor([0, 0, 0, 1, 1, 1])
    model = Histogram(levels=3, num_classes=2).fit_counts(data, alpha=0.5, cond=cond)
    torch.testing.assert_close(model.probs(torch.tensor([0, 1])),
                               torch.stack([histogram_probs(data[:3], 3, 0.5),
                                            histogram_probs(data[3:], 3, 0.5)]))
    torch.testing.assert_close(model.probs(), histogram_probs(data, 3, 0.5))


# -- the logistic core --------------------------------------------------------------------
def brute_force_probs(levels, logits, means, log_scales):
    """float64 sum over components of weight * (sigmoid(b) - sigmoid(a)), every level
    (probabilities: the subtraction loses relative precision in the tails, not absolute)."""
    k = torch.arange(levels, dtype=torch.float64).unsqueeze(-1)
    s = log_scales.exp()
    upper = torch.where(k == levels - 1, torch.tensor(1.0, dtype=torch.float64),
                        torch.sigmoid((k + 0.5 - means) / s))
    lower = torch.where(k == 0, torch.tensor(0.0, dtype=torch.float64),
                        torch.sigmoid((k - 0.5 - means) / s))
    return ((upper - lower) * F.softmax(logits, -1)).sum(-1)


def test_logistic_core_matches_brute_force():
    g = torch.Generator().manual_seed(0)
    for levels in (2, 3, 8, 256):
        for _ in range(5):
            logits = torch.randn(4, generator=g, dtype=torch.float64)
            means = torch.rand(4, generator=g, dtype=torch.float64) * (levels + 4) - 2
            log_scales = torch.rand(4, generator=g, dtype=torch.float64) * 3 - 1
            x = torch.arange(levels)
            got = dlogistic_mixture_log_prob(x, logits, means, log_scales, levels)
            want = brute_force_probs(levels, logits, means, log_scales)
            torch.testing.assert_close(got.exp(), want, rtol=1e-9, atol=1e-15)


def test_logistic_core_normalises():
    g = torch.Generator().manual_seed(1)
    for levels in (2, 5, 256):
        logits = torch.randn(200, 1, 3, generator=g, dtype=torch.float64) * 3
        means = torch.randn(200, 1, 3, generator=g, dtype=torch.float64) * levels
        log_scales = torch.rand(200, 1, 3, generator=g, dtype=torch.float64) * 30 - 15
        x = torch.arange(levels).expand(200, levels)
        lp = discretized_logistic_log_probs(x, logits, means, log_scales, levels)
        assert lp.shape == (200, levels)
        total = torch.logsumexp(lp, dim=-1)
        assert total.abs().max() < 1e-6, f"log of total mass off by {total.abs().max()}"
        lp32 = discretized_logistic_log_probs(x, logits.float(), means.float(),
                                              log_scales.float(), levels)
        assert torch.logsumexp(lp32, dim=-1).abs().max() < 1e-5


def test_logistic_core_tails_are_exact():
    # Mean far above the range: every interior bin is deep in the lower tail, where
    # sigmoid(b) - sigmoid(a) = e^b (1 - e^-1) to far beyond float64 precision.
    mu, levels = 1e4, 5
    lp = dlogistic_mixture_log_prob(torch.arange(levels), torch.zeros(1, dtype=torch.float64),
                                    torch.tensor([mu], dtype=torch.float64),
                                    torch.zeros(1, dtype=torch.float64), levels)
    k = torch.arange(levels, dtype=torch.float64)
    want = k + 0.5 - mu + math.log1p(-math.exp(-1.0))
    want[0] = 0.5 - mu                           # bin 0 reaches -inf: log sigmoid(0.5 - mu)
    want[-1] = 0.0                               # the last bin holds almost everything
    torch.testing.assert_close(lp, want, rtol=1e-12, atol=1e-12)
    # A huge scale spreads the mass thin: the middle bin holds 1/(4s), the edge bins 1/2 each.
    lp = dlogistic_mixture_log_prob(torch.arange(3), torch.zeros(1), torch.tensor([1.0]),
                                    torch.tensor([20.0]), 3)
    torch.testing.assert_close(lp, torch.tensor([-math.log(2), -20 - math.log(4), -math.log(2)]),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_logistic_core_finite_values_and_gradients_at_extremes(dtype):
    levels = 256
    means = torch.tensor([-1e4, 1e4, 127.3, 0.0, 255.0, 127.5], dtype=dtype)
    log_scales = torch.tensor([-20.0, 20.0, -20.0, 20.0, -20.0, 0.0], dtype=dtype)
    grid = torch.cartesian_prod(torch.arange(6), torch.arange(6))
    means = means[grid[:, 0]].unsqueeze(-1).requires_grad_(True)          # [36, 1]
    log_scales = log_scales[grid[:, 1]].unsqueeze(-1).requires_grad_(True)
    logits = torch.zeros(36, 1, dtype=dtype, requires_grad=True)
    x = torch.tensor([0, 1, 127, 128, 254, 255])
    lp = discretized_logistic_log_probs(x.view(6, 1), logits.unsqueeze(0), means.unsqueeze(0),
                                        log_scales.unsqueeze(0), levels)  # [6, 36]
    assert torch.isfinite(lp).all(), "log-probabilities must stay finite in the far tails"
    assert (lp <= 0).all()
    lp.sum().backward()
    for p in (logits, means, log_scales):
        assert torch.isfinite(p.grad).all()
    # Tiny masses are resolved, not rounded to zero: mean 127.3, scale e^-20, bin 0.
    tail = lp[0, grid.tolist().index([2, 0])]
    assert tail < -1e10


def test_dlogistic_mixture_signature_errors():
    with pytest.raises(ValueError, match="0..3"):
        dlogistic_mixture_log_prob(torch.tensor([4]), torch.zeros(2), torch.zeros(2),
                                   torch.zeros(2), 4)
    with pytest.raises(ValueError, match="shape"):
        dlogistic_mixture_log_prob(torch.tensor([1]), torch.zeros(2), torch.zeros(3),
                                   torch.zeros(2), 4)


# -- the head -----------------------------------------------------------------------------
def test_head_network_units():
    head = LogisticMixtureHead(levels=9, num_mixtures=2)
    params = torch.tensor([[0.3, -0.2, 0.0, 0.5, -3.0, -2.0]])       # logits | means | log-scales
    probs = head.probs(params)
    assert probs.shape == (1, 9)
    torch.testing.assert_close(probs.sum(-1), torch.ones(1))
    # network mean 0 is the middle level (4), mean 0.5 is level 6; log-scale + log 4.
    want = dlogistic_mixture_log_prob(torch.arange(9), params[0, :2], torch.tensor([4.0, 6.0]),
                                      torch.tensor([-3.0, -2.0]) + math.log(4.0), 9)
    torch.testing.assert_close(probs[0].log(), want)
    # The log-scale floor: far below it behaves as at the floor.
    low = params.clone()
    low[0, 4:] = -50.0
    at_floor = params.clone()
    at_floor[0, 4:] = head.min_log_scale
    torch.testing.assert_close(head.probs(low), head.probs(at_floor))


def test_head_log_prob_on_images():
    head = LogisticMixtureHead(levels=4, num_mixtures=3)
    g = torch.Generator().manual_seed(0)
    params = torch.randn(2, 9, 3, 2, 2, generator=g)
    x = torch.randint(0, 4, (2, 3, 2, 2), generator=g)
    lp = head.log_prob(params, x)
    assert lp.shape == (2, 3, 2, 2)
    flat = params.movedim(1, -1).reshape(-1, 9)
    want = head.probs(flat).log().gather(1, x.reshape(-1, 1)).view(2, 3, 2, 2)
    torch.testing.assert_close(lp, want)


def test_head_sampling_matches_probabilities():
    head = LogisticMixtureHead(levels=6, num_mixtures=2)
    params = torch.tensor([[0.5, -0.5, -0.6, 0.7, -1.0, -1.8],
                           [0.0, 0.0, 2.0, -3.0, -0.5, -0.5]])   # second: means beyond the range
    n = 20000
    draws = head.sample(params.repeat_interleave(n, 0), torch.Generator().manual_seed(0))
    assert draws.dtype == torch.long and draws.shape == (2 * n,)
    for row in range(2):
        stat, dof = chi2_stat(draws[row * n:(row + 1) * n], head.probs(params[row:row + 1])[0])
        assert stat < chi2_upper(dof), f"row {row}: chi-square {stat:.1f} with {dof} dof"
    # Deterministic for a seed.
    again = head.sample(params.repeat_interleave(n, 0), torch.Generator().manual_seed(0))
    assert torch.equal(draws, again)


def test_logistic_mixture_model_normalises():
    model = DiscretizedLogisticMixture(levels=5, num_mixtures=3, num_classes=2)
    x = torch.arange(5).view(5, 1)
    assert model(x).shape == (5, 9, 1)
    for cond in (None, torch.ones(5, dtype=torch.long)):
        total = torch.logsumexp(model.log_prob(x, cond), 0)
        assert abs(float(total.detach())) < 1e-5
    # Initial means are spread over the range, in network units.
    assert model.means.min() > -1 and model.means.max() < 1 and model.means.diff().min() > 0


# -- two variables ------------------------------------------------------------------------
def test_two_variable_normalises_and_is_causal():
    torch.manual_seed(0)
    model = TwoVariable(levels=3, hidden=8, num_classes=2).double()
    with torch.no_grad():
        model.x1_logits.normal_()
        model.class_x1.weight.normal_()
    pairs = torch.cartesian_prod(torch.arange(3), torch.arange(3))
    for cond in (None, torch.ones(9, dtype=torch.long)):
        lp = model.log_prob(pairs, cond)
        assert abs(float(torch.logsumexp(lp.detach(), 0))) < 1e-12
        # The marginal of x1 is softmax of its logits.
        marginal = lp.view(3, 3).logsumexp(1)
        torch.testing.assert_close(marginal, model(pairs, cond)[::3, :, 0].log_softmax(1)[0])
    assert model(pairs).shape == (9, 3, 2)
    for pos in [(0,), (1,)]:
        assert not causality_violations(model, pos).any()
    assert receptive_field(model, (1,)).tolist() == [True, False]
    assert receptive_field(model, (0,)).tolist() == [False, False]


def test_one_d_models_reject_other_shapes():
    for cls, shape in ((Histogram, (2,)), (DiscretizedLogisticMixture, (1, 2)), (TwoVariable, (3,))):
        with pytest.raises(ValueError, match="data_shape"):
            cls(data_shape=shape, levels=3)
