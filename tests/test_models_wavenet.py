"""WaveNet: causal convolution taps, receptive fields, the gated block, and cached generation."""
from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from arlab.models import zoo
from arlab.models.wavenet import (CausalConv1d, GatedResidualBlock, WaveNet, count_positions,
                                  wavenet_receptive_field)
from arlab.receptive import causality_violations, receptive_field


@pytest.mark.parametrize("k, dilation, include_current",
                         [(1, 1, True), (1, 1, False), (2, 1, True), (2, 3, False),
                          (3, 2, True), (3, 2, False), (4, 1, False)])
def test_causal_conv_taps_by_unit_impulses(k, dilation, include_current):
    torch.manual_seed(0)
    conv = CausalConv1d(2, 3, k, dilation, include_current).double()
    with torch.no_grad():
        conv.bias.zero_()
    shift = 0 if include_current else 1
    length = (k - 1) * dilation + 6
    for ci, s in itertools.product(range(2), range(length)):
        x = torch.zeros(1, 2, length, dtype=torch.float64)
        x[0, ci, s] = 1.0
        y = conv(x)[0]
        assert y.shape == (3, length)
        want = torch.zeros(3, length, dtype=torch.float64)
        for j in range(k):                      # tap j reads t - (k-1-j)*dilation - shift
            t = s + (k - 1 - j) * dilation + shift
            if t < length:
                want[:, t] = conv.weight[:, ci, j]
        assert torch.equal(y, want), f"impulse at channel {ci}, position {s}"


def test_causal_conv_parameters_and_init_match_conv1d():
    conv = CausalConv1d(3, 5, 4, dilation=2)
    assert {n: tuple(p.shape) for n, p in conv.named_parameters()} == {
        "weight": (5, 3, 4), "bias": (5,)}
    torch.manual_seed(7)
    ref = nn.Conv1d(3, 5, 4)
    torch.manual_seed(7)
    conv = CausalConv1d(3, 5, 4, dilation=2)
    assert torch.equal(conv.weight, ref.weight) and torch.equal(conv.bias, ref.bias)
    # Zero input: the output is the bias everywhere (the padding adds nothing), length kept.
    for include in (True, False):
        conv = CausalConv1d(3, 5, 2, include_current=include)
        for length in (1, 4):
            y = conv(torch.zeros(2, 3, length))
            assert torch.equal(y, conv.bias[None, :, None].expand(2, 5, length))


def test_causal_conv_past_must_fit_the_kernel():
    conv = CausalConv1d(2, 2, 3, dilation=2)
    with pytest.raises(ValueError, match="past must have shape"):
        conv(torch.zeros(1, 2, 1), past=torch.zeros(1, 2, 3))


def _dependence(k: int, dilations: list[int], g: torch.Generator) -> torch.Tensor:
    """Positions of the input that the last output of a CausalConv1d stack depends on."""
    stack = nn.Sequential(*(CausalConv1d(1, 1, k, d) for d in dilations)).double()
    with torch.no_grad():                        # positive weights: no cancellation possible
        for p in stack.parameters():
            p.uniform_(0.5, 1.0, generator=g)
    length = wavenet_receptive_field(k, dilations) + 10
    x = torch.rand(1, 1, length, dtype=torch.float64, generator=g, requires_grad=True)
    stack(x)[0, 0, -1].backward()
    seen = (x.grad[0, 0] != 0).nonzero().squeeze(1)
    assert seen.max() == length - 1              # the output's own position, nothing later
    return seen


@pytest.mark.parametrize("seed", range(6))
def test_receptive_field_formula_matches_gradients(seed):
    # Random gap-free stacks (each dilation at most 1 + (k-1)·the sum so far, then shuffled):
    # the formula is the exact count of inputs that influence the output.
    g = torch.Generator().manual_seed(seed)
    k = int(torch.randint(2, 4, (1,), generator=g))
    dilations = [1]
    for _ in range(int(torch.randint(0, 4, (1,), generator=g))):
        dilations.append(int(torch.randint(1, 2 + (k - 1) * sum(dilations), (1,), generator=g)))
    dilations = [dilations[i] for i in torch.randperm(len(dilations), generator=g)]
    seen = _dependence(k, dilations, g)
    assert len(seen) == wavenet_receptive_field(k, dilations), (k, dilations)


@pytest.mark.parametrize("seed", range(4))
def test_receptive_field_formula_is_the_span_for_any_dilations(seed):
    g = torch.Generator().manual_seed(100 + seed)
    k = int(torch.randint(2, 4, (1,), generator=g))
    dilations = torch.randint(1, 6, (int(torch.randint(1, 4, (1,), generator=g)),),
                              generator=g).tolist()
    seen = _dependence(k, dilations, g)
    assert int(seen.max() - seen.min()) + 1 == wavenet_receptive_field(k, dilations)
    assert len(seen) <= wavenet_receptive_field(k, dilations)
    # A gappy stack: kernel 2, dilation 2 reads t-2 and t but not t-1.
    assert len(_dependence(2, [2], g)) == 2 < wavenet_receptive_field(2, [2])


def test_receptive_field_small_cases():
    assert wavenet_receptive_field(2, [1, 2, 4, 8]) == 16
    assert wavenet_receptive_field(3, [1]) == 3
    assert wavenet_receptive_field(1, [5, 5]) == 1


def test_gated_residual_block_by_hand():
    torch.manual_seed(0)
    c, d, length = 3, 2, 6
    block = GatedResidualBlock(c, d).double()
    assert isinstance(block.dilated, CausalConv1d)
    assert block.dilated.weight.shape == (2 * c, c, 2) and block.dilated.dilation == d
    assert block.residual.weight.shape == (c, c, 1) and block.skip.weight.shape == (c, c, 1)
    x = torch.randn(2, c, length, dtype=torch.float64)
    w, b = block.dilated.weight, block.dilated.bias
    pre = torch.zeros(2, 2 * c, length, dtype=torch.float64)
    for t in range(length):
        pre[:, :, t] = b + x[:, :, t] @ w[:, :, 1].T
        if t - d >= 0:
            pre[:, :, t] += x[:, :, t - d] @ w[:, :, 0].T
    a, g = pre[:, :c], pre[:, c:]
    z = torch.tanh(a) * torch.sigmoid(g)

    def one_by_one(conv, v):
        return torch.einsum("oi,nil->nol", conv.weight[:, :, 0], v) + conv.bias[None, :, None]

    out, skip = block(x)
    assert torch.allclose(out, x + one_by_one(block.residual, z), rtol=1e-12, atol=1e-14)
    assert torch.allclose(skip, one_by_one(block.skip, z), rtol=1e-12, atol=1e-14)


def test_wavenet_order_and_exact_dependence_on_a_sequence():
    model = WaveNet((3, 2, 2), 4)
    c, i, j = torch.meshgrid(torch.arange(3), torch.arange(2), torch.arange(2), indexing="ij")
    assert torch.equal(model.order(), (i * 2 + j) * 3 + c)
    # Output t depends on exactly the previous 1 + 1 + sum(dilations) inputs: the input layer's
    # two shifted taps, then every dilated block.
    torch.manual_seed(0)
    model = WaveNet((12,), 3, channels=8, dilations=(1, 2))
    span = wavenet_receptive_field(2, [1, 1, 2])
    for t in range(12):
        want = (torch.arange(12) < t) & (torch.arange(12) >= t - span)
        assert torch.equal(receptive_field(model, (t,), num_inputs=6), want), t


def test_wavenet_with_coords_and_classes_is_causal():
    model = WaveNet((3, 2, 2), 4, channels=8, append_coords=True, num_classes=3)
    for pos in itertools.product(range(3), range(2), range(2)):
        bad = causality_violations(model, pos, cond=torch.tensor([2]))
        assert not bad.any(), f"output {pos} depends on later inputs at {bad.nonzero().tolist()}"


def test_append_coords_changes_the_output_only_through_coord_conv():
    torch.manual_seed(0)
    with_coords = WaveNet((1, 3, 3), 2, channels=8, append_coords=True)
    plain = WaveNet((1, 3, 3), 2, channels=8)
    plain.load_state_dict({k: v for k, v in with_coords.state_dict().items()
                           if not k.startswith("coord_conv")})
    x = torch.randint(0, 2, (4, 1, 3, 3), generator=torch.Generator().manual_seed(1))
    assert not torch.allclose(with_coords(x), plain(x))
    coords = with_coords.coordinates()
    assert coords.shape == (1, 2, 9)
    assert coords[0, 0].tolist() == [0, 0, 0, .5, .5, .5, 1, 1, 1]
    assert coords[0, 1].tolist() == [0, .5, 1] * 3
    with torch.no_grad():
        with_coords.coord_conv.weight.zero_()
        with_coords.coord_conv.bias.zero_()
    assert torch.equal(with_coords(x), plain(x))


def test_coordinates_of_thin_shapes_are_finite():
    coords = WaveNet((4,), 2, append_coords=True).coordinates(dtype=torch.float64)[0]
    assert coords.tolist() == [[0, 0, 0, 0], [0, 1 / 3, 2 / 3, 1]]
    coords = WaveNet((3, 2, 1), 2, append_coords=True).coordinates()[0]
    assert coords.tolist() == [[0, 0, 0, 1, 1, 1], [0] * 6]


CASES = [  # data_shape, levels, kwargs, cond
    ((1, 3, 3), 2, {"append_coords": True}, None),
    ((3, 2, 2), 4, {"num_classes": 3, "dilations": (1, 2, 4, 8)}, torch.tensor([0, 2, 1, 1, 0])),
    ((7,), 3, {"append_coords": True, "num_classes": 2}, torch.tensor([1])),
]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("shape, levels, kwargs, cond", CASES)
def test_cached_sampling_equals_naive_sampling(shape, levels, kwargs, cond, dtype):
    torch.manual_seed(0)
    model = WaveNet(shape, levels, channels=8, **kwargs).to(dtype)
    fast = model.sample(5, cond=cond, generator=torch.Generator().manual_seed(3))
    slow = model.sample(5, cond=cond, generator=torch.Generator().manual_seed(3), cached=False)
    assert fast.shape == (5, *shape) and fast.dtype == torch.long
    assert torch.equal(fast, slow)
    assert len(torch.unique(fast.reshape(5, -1), dim=0)) > 1     # not a degenerate model


def test_cached_sampling_processes_one_new_position_per_step():
    model = WaveNet((2, 2, 2), 3, channels=4, append_coords=True, num_classes=2)
    length = 8
    with count_positions(model) as cached:
        model.sample(3, cond=torch.tensor([1]), generator=torch.Generator().manual_seed(0))
    assert set(cached) >= {"input_conv", "coord_conv", "blocks.0.dilated", "blocks.2.skip",
                           "out_logits"}
    for name, lengths in cached.items():
        assert lengths == [1] * length, f"{name} computed {lengths} positions per step"
    with count_positions(model) as naive:
        model.sample(3, cond=torch.tensor([1]), cached=False)
    assert naive["blocks.0.dilated"] == [length] * length       # the counter can tell them apart
    assert not any(m._forward_hooks for m in model.modules())     # hooks removed


def test_sampling_keeps_training_mode():
    model = WaveNet((3,), 3).train()
    model.sample(2)
    assert model.training


@pytest.mark.parametrize("name", ["wavenet", "wavenet_coords"])
@pytest.mark.parametrize("shape, levels", [((1, 2, 2), 2), ((3,), 3), ((3, 2, 2), 4)])
def test_zoo_entries_construct(name, shape, levels):
    model = zoo()[name](data_shape=shape, levels=levels)
    x = torch.zeros(2, *shape, dtype=torch.long)
    assert model(x).shape == (2, levels, *shape)
    assert model.append_coords == (name == "wavenet_coords")


@pytest.mark.parametrize("size", [1, 3, 8])
def test_layer_queue_window_is_the_last_inputs_in_order(size):
    from arlab.models.wavenet import LayerQueue

    queue = LayerQueue(2, 3, size, torch.device("cpu"), torch.float64)
    pushed = [torch.zeros(2, 3, 1, dtype=torch.float64)] * size    # the zero padding
    for t in range(3 * size + 2):                                   # wraps around several times
        expected = torch.cat(pushed[-size:], dim=-1)
        assert torch.equal(queue.window(), expected), t
        value = torch.randn(2, 3, 1, dtype=torch.float64)
        queue.push(value)
        pushed.append(value)


def test_one_position_step_equals_the_convolution():
    torch.manual_seed(0)
    for include_current in (True, False):
        for k, d in ((2, 1), (2, 4), (3, 2)):
            conv = CausalConv1d(3, 5, k, d, include_current=include_current).double()
            past = torch.randn(4, 3, conv.history, dtype=torch.float64)
            x = torch.randn(4, 3, 1, dtype=torch.float64)
            full = conv(torch.cat([past, x], -1))[..., -1:]      # the long path, last output
            torch.testing.assert_close(conv(x, past=past), full, rtol=1e-12, atol=1e-12)
