"""MADE: exact masks, the degree-drawing rule, orderings, and the mixture over masks."""
from __future__ import annotations

import copy
import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from arlab.models import zoo
from arlab.models.made import MADE, MaskedLinear, made_degrees, made_masks, made_orderings
from arlab.models.sampling import sample_autoregressive
from arlab.receptive import receptive_field


def test_made_masks_hand_worked_example():
    inputs = torch.tensor([2, 0, 1])
    hidden = [torch.tensor([0, 1, 1, 0]), torch.tensor([1, 0])]
    m0, m1, m2 = made_masks(inputs, hidden)
    assert torch.equal(m0, torch.tensor([[0., 1, 0], [0, 1, 1], [0, 1, 1], [0, 1, 0]]))
    assert torch.equal(m1, torch.tensor([[1., 1, 1, 1], [1, 0, 0, 1]]))
    assert torch.equal(m2, torch.tensor([[1., 1], [0, 0], [0, 1]]))
    assert all(m.dtype == torch.float32 for m in (m0, m1, m2))


def test_made_masks_without_hidden_layers_compare_inputs_strictly():
    (mask,) = made_masks(torch.tensor([1, 0, 2]), [])
    assert torch.equal(mask, torch.tensor([[0., 1, 0], [0, 0, 0], [1, 1, 0]]))


def test_made_masks_reject_non_vector_degrees():
    with pytest.raises(ValueError, match="1-D"):
        made_masks(torch.zeros(2, 2, dtype=torch.long), [])


@pytest.mark.parametrize("seed", range(4))
def test_made_masks_connect_exactly_the_earlier_ranks(seed):
    # With every degree 0..D-2 present in every hidden layer, input d' reaches output d
    # through some path exactly when rank(d') < rank(d).
    g = torch.Generator().manual_seed(seed)
    d = 7
    ranks = torch.randperm(d, generator=g)
    hidden = [torch.cat([torch.arange(d - 1), torch.randint(0, d - 1, (5,), generator=g)])
              [torch.randperm(d + 4, generator=g)] for _ in range(1 + seed % 3)]
    masks = made_masks(ranks, hidden)
    paths = masks[0]
    for m in masks[1:]:
        paths = m @ paths                                    # [D_out, D_in] path counts
    allowed = ranks[None, :] < ranks[:, None]
    assert torch.equal(paths > 0, allowed)


def test_masked_linear_keeps_weight_and_ignores_masked_entries():
    torch.manual_seed(0)
    layer = MaskedLinear(4, 3)
    assert torch.equal(layer.mask, torch.ones(3, 4))          # all ones until set
    weight = layer.weight.detach().clone()
    mask = (torch.rand(3, 4) > 0.5).float()
    layer.set_mask(mask)
    x = torch.randn(5, 4)
    out = layer(x)
    assert torch.equal(layer.weight, weight)
    assert torch.allclose(out, F.linear(x, weight * mask, layer.bias), atol=0, rtol=0)
    out.square().sum().backward()
    assert torch.all(layer.weight.grad[mask == 0] == 0)
    assert torch.all(layer.weight.grad[mask == 1] != 0)
    with torch.no_grad():
        layer.weight[mask == 0] = 1e6                          # masked weights change nothing
    assert torch.equal(layer(x), out)
    with pytest.raises(ValueError, match="shape"):
        layer.set_mask(torch.ones(4, 3))


@pytest.mark.parametrize("ordering", ["raster", "random", "columns"])
def test_made_hidden_degrees_follow_the_drawing_rule(ordering):
    shape, hidden_sizes, masks, seed = (1, 3, 3), (6, 5, 4), 3, 11
    model = MADE(shape, 2, hidden_sizes=hidden_sizes, ordering=ordering, num_masks=masks,
                 seed=seed)
    d = 9
    g = torch.Generator().manual_seed(seed)
    ranks = made_orderings(3, 3, seed)[ordering]
    for m in range(masks):
        if ordering == "random" and m > 0:
            ranks = torch.randperm(d, generator=g)
        expected, low = [], int(ranks.min())
        for h in hidden_sizes:
            expected.append(torch.randint(low, d - 1, (h,), generator=g))
            low = int(expected[-1].min())
        inputs, hidden = model.degrees(m)
        assert torch.equal(inputs, ranks), f"mask {m}: input degrees"
        for layer, (got, want) in enumerate(zip(hidden, expected)):
            assert torch.equal(got, want), f"mask {m}, hidden layer {layer}"
        model.set_mask_index(m)
        built = made_masks(ranks, expected)
        for layer, (lin, want) in enumerate(zip(model.layers, built)):
            if layer == len(built) - 1:
                want = want.repeat(2, 1)                     # K = 2 logits per dimension
            assert torch.equal(lin.mask, want), f"mask {m}, layer {layer}"
    assert model.mask_index == masks - 1
    inputs, hidden = made_degrees(made_orderings(3, 3, seed)[ordering], hidden_sizes, masks, seed,
                                  resample_ordering=ordering == "random")
    assert torch.equal(inputs, model.input_degrees)
    assert all(torch.equal(h, getattr(model, f"hidden_degrees_{l}")) for l, h in enumerate(hidden))


def test_made_needs_two_dimensions():
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        MADE((1,), 2)
    with pytest.raises(ValueError, match="each rank"):
        MADE((3,), 2, ordering=torch.tensor([0, 0, 1]))
    with pytest.raises(ValueError, match="unknown ordering"):
        MADE((3,), 2, ordering="spiral")


def test_orderings_by_hand_and_as_permutations():
    o = made_orderings(3, 3)
    assert o["columns"].tolist() == [0, 3, 6, 1, 4, 7, 2, 5, 8]
    assert made_orderings(2, 3)["columns"].tolist() == [0, 2, 4, 1, 3, 5]
    assert o["even_odd"].tolist() == [0, 5, 1, 6, 2, 7, 3, 8, 4]
    assert made_orderings(4, 2)["top_bottom_middle"].tolist() == [0, 1, 4, 5, 6, 7, 2, 3]
    assert made_orderings(3, 1)["top_bottom_middle"].tolist() == [0, 2, 1]
    assert not torch.equal(made_orderings(4, 4, seed=0)["random"],
                           made_orderings(4, 4, seed=1)["random"])
    for h, w in [(1, 5), (3, 3), (4, 5)]:
        for name, ranks in made_orderings(h, w).items():
            assert torch.equal(ranks.sort().values, torch.arange(h * w)), name
            model = MADE((1, h, w), 2, hidden_sizes=(8,), ordering=name)
            assert torch.equal(model.order(), ranks.view(1, h, w)), name


def test_made_order_puts_channels_inside_a_pixel():
    model = MADE((3, 2, 2), 4, hidden_sizes=(8,))
    c, i, j = torch.meshgrid(torch.arange(3), torch.arange(2), torch.arange(2), indexing="ij")
    assert torch.equal(model.order(), (i * 2 + j) * 3 + c)
    given = torch.randperm(12, generator=torch.Generator().manual_seed(3))
    assert torch.equal(MADE((3, 2, 2), 4, ordering=given).order().reshape(-1), given)


def _enumerate(shape, levels):
    d = math.prod(shape)
    return torch.tensor(list(itertools.product(range(levels), repeat=d))).view(-1, *shape)


def test_log_prob_is_the_log_mean_of_per_mask_joints():
    torch.manual_seed(0)
    model = MADE((1, 2, 2), 2, hidden_sizes=(16, 16), ordering="random", num_masks=3,
                 num_classes=2).double()
    x = _enumerate((1, 2, 2), 2).repeat(2, 1, 1, 1)                    # every image, twice
    cond = torch.arange(32) // 16                                      # once per class
    joints = []
    for m in range(3):
        model.set_mask_index(m)
        logits = model(x, cond)                                        # [N, K, 1, 2, 2]
        lp = F.log_softmax(logits, 1).gather(1, x.unsqueeze(1)).flatten(1).sum(1)
        joints.append(lp.exp())
    model.set_mask_index(1)
    got = model.log_prob(x, cond)
    assert model.mask_index == 1                                       # restored
    want = torch.stack(joints).mean(0).log()
    assert torch.allclose(got, want, rtol=1e-12, atol=0)
    for c in range(2):                                                 # a distribution per class
        assert torch.allclose(got[cond == c].exp().sum(), torch.tensor(1.0, dtype=torch.float64),
                              rtol=1e-12, atol=0)
    # The masks really differ, so averaging joints is not averaging one model three times.
    assert not torch.allclose(joints[0], joints[1])
    got.sum().backward()                                                # graph survives mask swaps
    assert all(p.grad is not None for p in model.layers.parameters())


def test_loss_cycles_masks_in_training_and_uses_the_mixture_in_eval():
    torch.manual_seed(0)
    model = MADE((3,), 3, hidden_sizes=(8,), ordering="random", num_masks=3)
    x = torch.randint(0, 3, (6, 3), generator=torch.Generator().manual_seed(1))
    model.train()
    for step in range(4):
        m = step % 3
        assert model.mask_index == m
        single = -model.mask_log_prob(x).mean() / 3
        assert torch.equal(model.loss(x), single)
        assert model.mask_index == (m + 1) % 3
    model.eval()
    index = model.mask_index
    assert torch.allclose(model.loss(x), -model.log_prob(x).mean() / 3, rtol=1e-6, atol=0)
    assert model.mask_index == index


def test_direct_connections_see_exactly_the_earlier_ranks():
    # The direct layer alone links every earlier rank, so the receptive field is exact.
    model = MADE((1, 3, 3), 2, hidden_sizes=(4,), ordering="columns", direct=True,
                 num_classes=3)
    order = model.order()
    for pos in itertools.product(range(1), range(3), range(3)):
        seen = receptive_field(model, pos, cond=torch.tensor([1]))
        assert torch.equal(seen, order < order[pos]), pos


def test_sample_under_one_mask_is_the_generic_sampler():
    model = MADE((1, 2, 2), 2, hidden_sizes=(8,), ordering="random", num_masks=3)
    model.set_mask_index(1)
    current = model.sample(7, generator=torch.Generator().manual_seed(5))
    got = model.sample(7, generator=torch.Generator().manual_seed(5), mask_index=2)
    assert model.mask_index == 1
    assert torch.equal(current,
                       sample_autoregressive(model, 7, generator=torch.Generator().manual_seed(5)))
    model.set_mask_index(2)
    want = sample_autoregressive(model, 7, generator=torch.Generator().manual_seed(5))
    assert torch.equal(got, want)


def test_mixture_sampling_draws_each_row_under_one_uniformly_chosen_mask():
    torch.manual_seed(0)
    model = MADE((1, 2, 2), 3, hidden_sizes=(8,), ordering="random", num_masks=3,
                 num_classes=2)
    cond = torch.arange(40) % 2
    got = model.sample(40, cond=cond, generator=torch.Generator().manual_seed(2), mixture=True)
    assert got.shape == (40, 1, 2, 2) and model.mask_index == 0
    g = torch.Generator().manual_seed(2)
    choice = torch.randint(3, (40,), generator=g)
    assert len(torch.unique(choice)) == 3
    for m in range(3):
        rows = (choice == m).nonzero().squeeze(1)
        want = model.sample(len(rows), cond=cond[rows], generator=g, mask_index=m)
        assert torch.equal(got[rows], want), f"rows drawn by mask {m}"


def test_state_dict_restores_the_current_mask():
    model = MADE((3,), 2, hidden_sizes=(6,), ordering="random", num_masks=3)
    model.set_mask_index(2)
    other = MADE((3,), 2, hidden_sizes=(6,), ordering="random", num_masks=3, seed=0)
    other.load_state_dict(copy.deepcopy(model.state_dict()))
    assert other.mask_index == 2
    assert torch.equal(other.order(), model.order())


@pytest.mark.parametrize("name", ["made", "made_multi"])
@pytest.mark.parametrize("shape, levels", [((1, 2, 2), 2), ((3,), 3), ((1, 4, 4), 2)])
def test_zoo_entries_construct(name, shape, levels):
    model = zoo()[name](data_shape=shape, levels=levels)
    x = torch.zeros(2, *shape, dtype=torch.long)
    assert model(x).shape == (2, levels, *shape)
