"""PixelRNN: generation order, exact causality, normalisation, coordinates, and the O(L) cached
sampler against the generic one."""
from __future__ import annotations

import itertools

import pytest
import torch

from arlab.models.rnn import PixelRNN
from arlab.models.sampling import sample_autoregressive
from arlab.receptive import causality_violations, receptive_field

CONFIGS = {
    "lstm_binary": dict(data_shape=(1, 2, 2), levels=2),
    "gru_coords": dict(data_shape=(1, 2, 2), levels=2, cell="gru", append_coords=True),
    "chars": dict(data_shape=(3,), levels=3, append_coords=True),
    "colour_class": dict(data_shape=(2, 1, 2), levels=3, layers=2, num_classes=2),
    "colour_scaled": dict(data_shape=(3, 1, 2), levels=2, append_coords=True, embed=False),
}


def build(name: str, seed: int = 0) -> PixelRNN:
    torch.manual_seed(seed)
    model = PixelRNN(**CONFIGS[name]).double()
    with torch.no_grad():                        # sharper outputs than the near-uniform init
        model.out.weight.normal_()
    return model


def all_inputs(model: PixelRNN) -> torch.Tensor:
    grid = itertools.product(range(model.levels), repeat=model.num_dims)
    return torch.tensor(list(grid)).view(-1, *model.data_shape)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_normalises_by_enumeration(name):
    model = build(name)
    x = all_inputs(model)
    conds = [None] + ([torch.ones(len(x), dtype=torch.long)] if model.num_classes else [])
    for cond in conds:
        total = torch.logsumexp(model.log_prob(x, cond).detach(), 0)
        assert abs(float(total)) < 1e-12, f"total probability {float(total.exp())} != 1"


@pytest.mark.parametrize("name", list(CONFIGS))
def test_sees_exactly_the_earlier_positions(name):
    model = build(name)
    order = model.order()
    for pos in itertools.product(*map(range, model.data_shape)):
        assert not causality_violations(model, pos).any(), f"position {pos} sees itself or later"
        seen = receptive_field(model, pos)
        assert torch.equal(seen, order < order[pos]), f"position {pos} misses earlier inputs"


@pytest.mark.parametrize("name", ["chars", "colour_class", "colour_scaled"])
def test_perturbing_later_positions_changes_nothing(name):
    model = build(name).eval()
    order = model.order()
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, model.levels, (8, *model.data_shape), generator=g)
    base = model(x)
    for rank in range(model.num_dims):
        later = order >= rank
        y = torch.where(later, (x + torch.randint(1, model.levels, x.shape, generator=g))
                        % model.levels, x)
        here = order == rank
        assert torch.equal(model(y).movedim(1, -1)[:, here], base.movedim(1, -1)[:, here])
        if rank > 0:  # ...while changing the position just before does change it
            prev = order == rank - 1
            z = torch.where(prev, (x + 1) % model.levels, x)
            assert not torch.equal(model(z).movedim(1, -1)[:, here], base.movedim(1, -1)[:, here])


def test_order_puts_channels_inside_a_pixel():
    model = PixelRNN((3, 2, 2), 4)
    c, i, j = torch.meshgrid(torch.arange(3), torch.arange(2), torch.arange(2), indexing="ij")
    assert torch.equal(model.order(), (i * 2 + j) * 3 + c)
    assert torch.equal(PixelRNN((5,), 3).order(), torch.arange(5))


@pytest.mark.parametrize("name", list(CONFIGS))
def test_cached_sampler_equals_generic(name):
    model = build(name)
    cond = torch.tensor([0, 1] * 20) if model.num_classes else None
    fast = model.sample(40, cond=cond, generator=torch.Generator().manual_seed(7))
    slow = sample_autoregressive(model, 40, cond=cond, generator=torch.Generator().manual_seed(7))
    assert fast.shape == (40, *model.data_shape) and fast.dtype == torch.long
    assert torch.equal(fast, slow)
    assert len(torch.unique(fast.flatten(1), dim=0)) > 1     # really random


def test_coordinates_of_predicted_positions():
    model = PixelRNN((2, 2, 3), 2, append_coords=True)
    coords = model.coordinates()
    pixels = [(0, 0), (0, 0.5), (0, 1), (1, 0), (1, 0.5), (1, 1)]
    want = torch.tensor([p for p in pixels for _ in range(2)])   # two channels per pixel
    torch.testing.assert_close(coords, want)
    # A single row (or a sequence) has row coordinate 0, never a division by zero.
    torch.testing.assert_close(PixelRNN((3,), 3, append_coords=True).coordinates(),
                               torch.tensor([[0.0, 0.0], [0.0, 0.5], [0.0, 1.0]]))


def test_append_coords_enters_only_through_its_inputs():
    torch.manual_seed(0)
    with_coords = PixelRNN((1, 3, 3), 2, append_coords=True).double()
    plain = PixelRNN((1, 3, 3), 2).double()
    w = with_coords.rnn.weight_ih_l0        # input columns: value, row, column
    with torch.no_grad():
        plain.rnn.weight_ih_l0.copy_(w[:, :1])
        for name in ("weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
            getattr(plain.rnn, name).copy_(getattr(with_coords.rnn, name))
        plain.out.load_state_dict(with_coords.out.state_dict())
    x = torch.randint(0, 2, (4, 1, 3, 3))
    assert not torch.equal(with_coords(x), plain(x)), "the coordinates must change the output"
    with torch.no_grad():
        w[:, 1:].zero_()
    assert torch.equal(with_coords(x), plain(x))


def test_input_encoding_defaults():
    assert not PixelRNN((1, 2, 2), 2).embed and PixelRNN((4,), 27).embed
    # Scaled values are differentiable in a float input; the gradient reaches earlier pixels.
    model = PixelRNN((1, 2, 2), 2).double()
    grad = receptive_field(model, (0, 1, 1), magnitude=True)
    assert (grad.flatten()[:3] > 0).all() and grad.flatten()[3] == 0


def test_class_changes_the_output():
    model = build("colour_class")
    x = torch.randint(0, 3, (4, 2, 1, 2))
    assert not torch.equal(model(x, torch.zeros(4, dtype=torch.long)),
                           model(x, torch.ones(4, dtype=torch.long)))
    with pytest.raises(ValueError, match="num_classes"):
        build("lstm_binary")(torch.zeros(1, 1, 2, 2), torch.zeros(1, dtype=torch.long))


def test_bad_arguments():
    with pytest.raises(ValueError, match="cell"):
        PixelRNN((1, 2, 2), 2, cell="rnn")
    with pytest.raises(ValueError, match="data"):
        PixelRNN((1, 1, 2, 2), 2)
