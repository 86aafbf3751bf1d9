"""Proofs for the pixel Transformer: causality by float64 gradients, normalisation by
enumeration, cached generation equal to naive generation, class conditioning that matters."""
import itertools
import math

import pytest
import torch

from arlab.models import model_class, zoo
from arlab.models.transformer import PixelTransformer
from arlab.receptive import causality_violations, receptive_field

POSITIONS = ("learned", "sinusoidal")


def _build(shape, levels, seed=0, **kw) -> PixelTransformer:
    torch.manual_seed(seed)
    return PixelTransformer(shape, levels, dim=16, layers=2, heads=2, **kw).double().eval()


def _nudge(model, scale=0.3, seed=1):
    """Move every parameter off its initial value (zero start vector, small embeddings)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return model


def test_in_the_zoo():
    assert model_class("transformer") is PixelTransformer
    model = zoo()["transformer"](data_shape=(1, 4, 4), levels=2)
    assert model(torch.zeros(2, 1, 4, 4, dtype=torch.long)).shape == (2, 2, 1, 4, 4)


@pytest.mark.parametrize("positions", POSITIONS)
@pytest.mark.parametrize("shape", [(1, 3, 4), (3, 2, 2)])
def test_sees_exactly_the_earlier_elements(shape, positions):
    model = _nudge(_build(shape, 4, positions=positions))
    order = model.order()
    for pos in itertools.product(*[range(s) for s in shape]):
        assert not causality_violations(model, pos).any(), f"{pos} sees a later element"
        seen = receptive_field(model, pos)
        # no blind spot: every earlier element (rank below this one's) is seen
        assert int(seen.sum()) == int(order[pos]), f"{pos} sees {int(seen.sum())} elements"
        assert (order[seen] < order[pos]).all()


@pytest.mark.parametrize("positions", POSITIONS)
def test_normalised_by_enumeration(positions):
    shape, levels = (1, 2, 2), 2          # 16 images
    model = _nudge(_build(shape, levels, positions=positions, num_classes=2))
    grid = torch.tensor(list(itertools.product(range(levels), repeat=math.prod(shape))))
    x = grid.view(-1, *shape)
    for cond in (None, torch.zeros(len(x), dtype=torch.long), torch.ones(len(x), dtype=torch.long)):
        total = model.log_prob(x, cond).logsumexp(0).exp().item()
        assert total == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("positions", POSITIONS)
def test_cached_generation_equals_naive(positions):
    model = _nudge(_build((3, 2, 3), 4, positions=positions, num_classes=3))
    x = torch.randint(0, 4, (5, 3, 2, 3), generator=torch.Generator().manual_seed(0))
    cond = torch.tensor([0, 1, 2, 0, 1])
    # the cache computes the same numbers as the full pass, up to float64 rounding
    torch.testing.assert_close(model.cached_params(x, cond), model(x, cond),
                               rtol=1e-9, atol=1e-9)
    for c in (2, None):
        if c is None:
            model = _nudge(_build((3, 2, 3), 4, positions=positions))
        cached = model.sample(16, cond=c, generator=torch.Generator().manual_seed(7))
        naive = model.sample(16, cond=c, generator=torch.Generator().manual_seed(7), cache=False)
        assert cached.dtype == torch.long and cached.shape == (16, 3, 2, 3)
        assert torch.equal(cached, naive)      # integer samples: exactly the same draws


def test_class_conditioning_changes_outputs():
    model = _nudge(_build((1, 3, 3), 2, num_classes=4))
    x = torch.randint(0, 2, (6, 1, 3, 3), generator=torch.Generator().manual_seed(0))
    a = model(x, torch.zeros(6, dtype=torch.long))
    b = model(x, torch.full((6,), 3))
    assert (a - b).abs().max() > 1e-3
    with pytest.raises(ValueError, match="num_classes"):
        _build((1, 3, 3), 2)(x, torch.zeros(6, dtype=torch.long))


def test_sampling_restores_the_training_mode():
    model = _build((1, 2, 2), 2).train()
    model.sample(2, generator=torch.Generator().manual_seed(0))
    assert model.training


def test_learns_on_digits():
    from arlab import data as D
    from arlab.train import fit

    d = D.digits()
    torch.manual_seed(0)
    model = PixelTransformer(d.data_shape, d.levels, dim=32, layers=2, heads=2)
    hist = fit(model, d.train, d.test[:200], epochs=1, max_steps=30, batch_size=64, lr=3e-3,
               progress=False, device="cpu")
    assert hist.test_nats_per_dim[-1] < 0.85 * hist.test_nats_per_dim[0]
