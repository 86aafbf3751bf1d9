"""MultiscalePixelCNN (many pixels per sampling step) and Fisher scores, proved exactly.

Multiscale: the ordering, exact causality (float64 gradients compared with zero, at every
position), normalisation by enumeration, sampling (one network call per rank, the fast path
equal to the generic sampler, frequencies matching exp(log_prob)).
Fisher scores: equal to the autograd gradient of log_prob, zero mean under the model (exact
enumeration), shapes, parameter subsets, normalisation, determinism; the feature helpers.
"""
from __future__ import annotations

import itertools
import math
import warnings

import pytest
import torch
from torch import nn

from arlab.fisher import (fisher_diagonal, fisher_scores, linear_probe_accuracy,
                          nearest_neighbours, select_parameters)
from arlab.models.multiscale import MultiscalePixelCNN
from arlab.models.pixelcnn import PixelCNN
from arlab.receptive import causality_violations


def _build(shape, levels=2, seed=0, nudge=0.0, **kw):
    torch.manual_seed(seed)
    model = MultiscalePixelCNN(shape, levels, **kw).double().eval()
    if nudge:  # move away from the near-uniform initial distribution
        with torch.no_grad():
            for p in model.parameters():
                p.add_(nudge * torch.randn_like(p))
    return model


def _all_configs(shape, levels):
    grid = torch.tensor(list(itertools.product(range(levels), repeat=math.prod(shape))))
    return grid.view(-1, *shape)


def _dependence(model, num_inputs: int = 3, seed: int = 0) -> torch.Tensor:
    """``BoolTensor[*shape, *shape]``: output position (first dims) depends on input position
    (last dims), by the full float64 Jacobian on random inputs (exact zero comparisons)."""
    shape = model.data_shape
    g = torch.Generator().manual_seed(seed)
    dep = torch.zeros(*shape, *shape, dtype=torch.bool)
    for _ in range(num_inputs):
        x = torch.rand(1, *shape, generator=g, dtype=torch.float64) * (model.levels - 1)
        jac = torch.autograd.functional.jacobian(lambda v: model(v), x, vectorize=True)
        dep |= (jac[0] != 0).any(0).reshape(*shape, *shape)  # any logit, [*out, 1, *in]
    return dep


# -- the ordering ----------------------------------------------------------------------------

def test_order_of_a_4x4_image():
    expected = torch.tensor([[0, 4, 1, 4],
                             [5, 6, 5, 6],
                             [2, 4, 3, 4],
                             [5, 6, 5, 6]]).view(1, 4, 4)
    model = MultiscalePixelCNN((1, 4, 4), 2, factor=2)
    assert torch.equal(model.order(), expected)
    assert torch.equal(model.pixel_groups(), torch.tensor([[0, 1, 0, 1], [2, 3, 2, 3]] * 2))


@pytest.mark.parametrize("shape,factor,ranks", [((1, 28, 28), 2, 14 * 14 + 3),
                                                ((1, 28, 28), 4, 7 * 7 + 15),
                                                ((3, 28, 28), 2, 3 * 14 * 14 + 3),
                                                ((1, 5, 6), 2, 3 * 3 + 3),
                                                ((1, 3, 3), 4, 1 + 2 + 2 + 4)])
def test_number_of_ranks(shape, factor, ranks):
    model = MultiscalePixelCNN(shape, 2, factor=factor, channels=4, layers=1)
    order = model.order()
    assert order.shape == shape and order.dtype == torch.long
    assert torch.equal(order.unique(), torch.arange(ranks)), "ranks run 0, 1, ... without gaps"


def test_colour_ranks_follow_pixelcnn_inside_the_low_resolution_image():
    model = MultiscalePixelCNN((3, 4, 4), 4, factor=2)
    order = model.order()
    low = order[:, ::2, ::2]
    assert torch.equal(low, torch.arange(12).view(2, 2, 3).permute(2, 0, 1))
    assert torch.equal(order[:, 0, 1], torch.full((3,), 12))   # one rank for R, G and B


# -- exact causality -------------------------------------------------------------------------

def test_causality_violations_at_every_position():
    model = _build((1, 4, 4), channels=8, layers=1)
    for pos in itertools.product(range(1), range(4), range(4)):
        bad = causality_violations(model, pos)
        assert not bad.any(), f"output at {pos} depends on {bad.nonzero().tolist()}"


@pytest.mark.parametrize("shape,levels,factor", [((1, 4, 4), 2, 2), ((3, 4, 4), 4, 2),
                                                 ((1, 5, 6), 2, 2), ((1, 8, 8), 2, 4),
                                                 ((1, 3, 3), 2, 4)])
def test_exactly_causal_by_full_jacobian(shape, levels, factor):
    model = _build(shape, levels, factor=factor)
    dep = _dependence(model)
    order = model.order()
    later = order.view(*shape, *([1] * len(shape))) <= order.view(*([1] * len(shape)), *shape)
    assert not (dep & later).any(), "an output depends on an input of equal or later rank"
    # and it is not trivially causal: every position after the first sees something
    first = order == order.min()
    assert dep.flatten(len(shape)).any(-1)[~first].all()


def test_a_subimage_sees_every_earlier_subimage():
    model = _build((1, 4, 4), channels=8)
    dep = _dependence(model)[0, :, :, 0]                    # [H, W, H, W]
    groups = model.pixel_groups()
    for i, j in itertools.product(range(4), range(4)):
        g = int(groups[i, j])
        if g == 0:
            continue
        seen_groups = set(groups[dep[i, j]].tolist())
        assert seen_groups == set(range(g)), f"pixel {(i, j)} of group {g} sees {seen_groups}"


# -- normalisation ---------------------------------------------------------------------------

@pytest.mark.parametrize("shape,factor", [((1, 2, 2), 2), ((1, 2, 4), 2), ((3, 1, 2), 2),
                                          ((1, 2, 3), 4)])
def test_normalised_by_enumeration(shape, factor):
    model = _build(shape, factor=factor, nudge=0.3)
    x = _all_configs(shape, 2)
    total = model.log_prob(x).logsumexp(0).exp().item()
    assert total == pytest.approx(1.0, abs=1e-12)


def test_class_conditional_is_normalised_and_uses_the_label():
    model = _build((1, 2, 4), num_classes=3, nudge=0.3)
    x = _all_configs((1, 2, 4), 2)
    lps = [model.log_prob(x, torch.full((len(x),), c)) for c in range(3)]
    for lp in lps:
        assert lp.logsumexp(0).exp().item() == pytest.approx(1.0, abs=1e-12)
    assert not torch.allclose(lps[0], lps[1])


# -- sampling --------------------------------------------------------------------------------

@pytest.mark.parametrize("shape,levels,factor,classes", [((3, 5, 6), 4, 2, 3),
                                                         ((1, 6, 6), 2, 4, None)])
def test_fast_sampling_equals_the_generic_sampler(shape, levels, factor, classes):
    model = _build(shape, levels, factor=factor, num_classes=classes, nudge=0.3)
    cond = torch.arange(7) % 3 if classes else None
    fast = model.sample(7, cond, generator=torch.Generator().manual_seed(3))
    slow = model.sample(7, cond, generator=torch.Generator().manual_seed(3), fast=False)
    assert fast.shape == (7, *shape) and fast.dtype == torch.long
    assert torch.equal(fast, slow)


def _count_calls(modules):
    counts = {name: 0 for name in modules}

    def hook(name):
        def count(*_):
            counts[name] += 1
        return count

    handles = [m.register_forward_hook(hook(name)) for name, m in modules.items()]
    return counts, handles


@pytest.mark.parametrize("factor", [2, 4])
def test_one_network_call_per_rank(factor):
    model = MultiscalePixelCNN((1, 28, 28), 2, factor=factor, channels=4, layers=1)
    ranks = int(model.order().unique().numel())
    assert ranks == {2: 199, 4: 64}[factor]
    counts, handles = _count_calls({"model": model, "base": model.base,
                                    "upsampler": model.upsampler})
    try:
        model.sample(2, generator=torch.Generator().manual_seed(0))
        low = (28 // factor) ** 2
        assert counts == {"model": 0, "base": low, "upsampler": factor ** 2 - 1}
        assert counts["base"] + counts["upsampler"] == ranks
        for k in counts:
            counts[k] = 0
        model.sample(2, generator=torch.Generator().manual_seed(0), fast=False)
        assert counts["model"] == ranks      # the generic sampler: one forward per rank
    finally:
        for h in handles:
            h.remove()


@pytest.mark.parametrize("shape,factor", [((1, 2, 4), 2), ((1, 3, 2), 4)])
def test_samples_follow_log_prob(shape, factor):
    model = _build(shape, factor=factor, seed=1, nudge=0.5)
    n = 6000
    xs = model.sample(n, generator=torch.Generator().manual_seed(0))
    configs = _all_configs(shape, 2)
    p = model.log_prob(configs).exp()
    base = 2 ** torch.arange(math.prod(shape) - 1, -1, -1)
    counts = torch.bincount((xs.view(n, -1) * base).sum(1), minlength=len(configs)).double()
    expected = n * p
    keep = expected > 5
    chi2 = (((counts - expected) ** 2) / expected)[keep].sum().item()
    df = int(keep.sum()) - 1
    crit = df * (1 - 2 / (9 * df) + 3.719 * math.sqrt(2 / (9 * df))) ** 3  # 1e-4 upper tail
    assert chi2 < crit, f"chi-square {chi2:.1f} > {crit:.1f} (df {df})"
    assert counts[~keep].sum() < 0.02 * n


def test_bad_arguments_say_what_to_do():
    with pytest.raises(ValueError, match="factor"):
        MultiscalePixelCNN((1, 4, 4), 2, factor=0)
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        MultiscalePixelCNN((16,), 2)
    with pytest.raises(ValueError, match="expected input"):
        MultiscalePixelCNN((1, 4, 4), 2)(torch.zeros(1, 1, 4, 5, dtype=torch.long))


# -- Fisher scores ---------------------------------------------------------------------------

def _pixelcnn(shape=(1, 3, 3), seed=0, nudge=0.3, **kw):
    torch.manual_seed(seed)
    model = PixelCNN(shape, 2, channels=6, layers=1, **kw).double().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(nudge * torch.randn_like(p))
    return model


def _autograd_score(model, x, cond=None):
    params = [p for p in model.parameters()]
    lp = model.log_prob(x, cond).sum()
    return torch.cat([g.flatten() for g in torch.autograd.grad(lp, params)])


@pytest.mark.parametrize("kind", ["pixelcnn", "multiscale"])
def test_score_is_the_gradient_of_log_prob(kind):
    model = _pixelcnn() if kind == "pixelcnn" else _build((1, 4, 4), nudge=0.3, channels=6)
    x = torch.randint(0, 2, (5, *model.data_shape), generator=torch.Generator().manual_seed(0))
    loop = fisher_scores(model, x, method="loop")
    fast = fisher_scores(model, x, method="vmap", batch_size=3)
    assert loop.shape == (5, sum(p.numel() for p in model.parameters()))
    assert loop.dtype == torch.float64
    for i in range(5):
        exact = _autograd_score(model, x[i:i + 1])
        assert torch.equal(loop[i], exact)
        torch.testing.assert_close(fast[i], exact, rtol=1e-10, atol=1e-12)
    assert loop.abs().max() > 1e-3, "the scores are not trivially zero"


def test_expected_score_under_the_model_is_zero():
    for model, cond in [(_pixelcnn((1, 2, 2)), None),
                        (_build((1, 2, 2), num_classes=2, nudge=0.5, channels=6), 1)]:
        x = _all_configs(model.data_shape, 2)
        c = None if cond is None else torch.full((len(x),), cond)
        p = model.log_prob(x, c).exp().detach()
        assert p.sum().item() == pytest.approx(1.0, abs=1e-12)
        scores = fisher_scores(model, x, c)
        mean = (p[:, None] * scores).sum(0)        # sum_x p(x) d/dθ log p(x) = d/dθ 1 = 0
        assert mean.abs().max().item() < 1e-10
        assert scores.abs().max().item() > 1e-2    # while single scores are far from zero


def test_parameter_subsets():
    model = _pixelcnn()
    x = torch.randint(0, 2, (4, 1, 3, 3), generator=torch.Generator().manual_seed(1))
    full = fisher_scores(model, x)
    names = [n for n, _ in model.named_parameters()]
    assert select_parameters(model, ["out"]) == ["out.weight", "out.bias"]
    sub = fisher_scores(model, x, params=["out_hidden", "out.bias"])
    sizes = {n: p.numel() for n, p in model.named_parameters()}
    starts = dict(zip(names, itertools.accumulate([0] + [sizes[n] for n in names])))
    cols = [torch.arange(starts[n], starts[n] + sizes[n])
            for n in ("out_hidden.weight", "out_hidden.bias", "out.bias")]
    assert torch.equal(sub, full[:, torch.cat(cols)])
    with pytest.raises(ValueError, match="no parameter"):
        fisher_scores(model, x, params=["decoder"])


def test_deterministic_and_independent_of_batch_size():
    model = _build((1, 4, 4), nudge=0.3, channels=6)
    x = torch.randint(0, 2, (7, 1, 4, 4), generator=torch.Generator().manual_seed(2))
    a = fisher_scores(model, x, batch_size=7)
    assert torch.equal(a, fisher_scores(model, x, batch_size=7))
    torch.testing.assert_close(a, fisher_scores(model, x, batch_size=2), rtol=1e-12, atol=1e-14)
    assert model.training is False
    model.train()
    fisher_scores(model, x[:2])
    assert model.training, "the model is left in the mode it was in"


def test_normalised_scores():
    model = _pixelcnn()
    x = torch.randint(0, 2, (6, 1, 3, 3), generator=torch.Generator().manual_seed(3))
    raw = fisher_scores(model, x)
    diag = fisher_diagonal(raw)
    norm = fisher_scores(model, x, normalize=True)
    moved = diag > 0
    assert (~moved).any(), "masked-out weights never move: their diagonal is zero"
    torch.testing.assert_close(norm.pow(2).mean(0)[moved], torch.ones(int(moved.sum()),
                                                                      dtype=torch.float64))
    assert torch.equal(norm[:, ~moved], torch.zeros_like(norm[:, ~moved]))
    # a given diagonal (e.g. the training set's) is used as it is
    other = fisher_scores(model, x[:2], normalize=diag)
    torch.testing.assert_close(other[:, moved], raw[:2, moved] / diag[moved].sqrt())
    with pytest.raises(ValueError, match="diagonal"):
        fisher_scores(model, x, normalize=diag[:3])


class _NotVectorisable(nn.Module):
    """log p(x) = θ·x, computed with a Python branch on a value (which vmap refuses)."""

    def __init__(self):
        super().__init__()
        self.theta = nn.Parameter(torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64))

    def log_prob(self, x, cond=None):
        sign = 1.0 if float(x.sum()) >= 0 else 1.0
        return sign * (x.double() * self.theta).sum(1)


def test_falls_back_to_a_loop_when_vmap_cannot_run():
    model = _NotVectorisable()
    x = torch.tensor([[1, 0, 2], [0, 3, 1]])
    with pytest.raises(Exception):
        fisher_scores(model, x, method="vmap")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scores = fisher_scores(model, x)
    assert any("one example at a time" in str(w.message) for w in caught)
    assert torch.equal(scores, x.double())    # the gradient of θ·x is x


# -- features: neighbours and a linear probe -------------------------------------------------

def test_nearest_neighbours_by_cosine():
    g = torch.Generator().manual_seed(0)
    train = torch.randn(20, 5, generator=g, dtype=torch.float64)
    queries = torch.cat([3.0 * train[[4, 11]], torch.randn(3, 5, generator=g,
                                                             dtype=torch.float64)])
    idx, sims = nearest_neighbours(train, queries, k=3)
    assert idx.shape == (5, 3) and sims.shape == (5, 3)
    assert idx[:2, 0].tolist() == [4, 11]             # scaling does not matter to a cosine
    torch.testing.assert_close(sims[:2, 0], torch.ones(2, dtype=torch.float64))
    cos = (queries @ train.T) / queries.norm(dim=1, keepdim=True) / train.norm(dim=1)
    brute = cos.argsort(dim=1, descending=True)[:, :3]
    assert torch.equal(idx, brute)
    assert (sims[:, :-1] >= sims[:, 1:]).all()
    with pytest.raises(ValueError, match="neighbours"):
        nearest_neighbours(train, queries, k=21)


def test_linear_probe_learns_a_separable_task_and_is_seeded():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 6, generator=g)
    x[:, 5] = 7.0                                     # a constant feature must not break it
    labels = (x[:, 2] > 0).long() + 2 * (x[:, 0] > 0).long()
    acc = linear_probe_accuracy(x[:200], labels[:200], x[200:], labels[200:], steps=200)
    assert acc >= 0.95
    again = linear_probe_accuracy(x[:200], labels[:200], x[200:], labels[200:], steps=200)
    assert acc == again
    # features that carry no information about the labels give a much worse probe
    noise = torch.randn(300, 6, generator=g)
    assert linear_probe_accuracy(noise[:200], labels[:200], noise[200:], labels[200:]) < 0.6
