"""PixelCNN, Gated PixelCNN and PixelSNAIL: masks, receptive fields, attention.

Dependence is decided exactly (float64 gradients compared with zero, via arlab.receptive).
"""
from __future__ import annotations

import importlib
import itertools
import math
from functools import partial

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from arlab.models import _ZOO, model_class
from arlab.models.gated_pixelcnn import GatedPixelCNN, GatedPixelCNNLayer
from arlab.models.pixelcnn import MaskedConv2d, PixelCNN, pixelcnn_mask
from arlab.models.pixelsnail import CausalSelfAttention, PixelSNAIL, causal_attention_mask
from arlab.receptive import (blind_spot, causality_violations, earlier_pixels, pixel_map,
                             receptive_field)


def _has_dlm() -> bool:
    try:
        return hasattr(importlib.import_module("arlab.models.logistic"), "LogisticMixtureHead")
    except ImportError:
        return False


needs_dlm = pytest.mark.skipif(not _has_dlm(), reason="arlab.models.logistic.LogisticMixtureHead "
                                                      "is not available yet")


def _seen(model, position) -> torch.Tensor:
    """Pixel map ``[H, W]`` of what the outputs at ``position`` depend on."""
    return pixel_map(receptive_field(model, position))


def _all_pixels(h: int, w: int):
    return itertools.product(range(h), range(w))


# -- pixelcnn_mask ---------------------------------------------------------------------------

def test_mask_single_channel_types_a_and_b():
    a = torch.tensor([[1., 1., 1.], [1., 0., 0.], [0., 0., 0.]])
    b = torch.tensor([[1., 1., 1.], [1., 1., 0.], [0., 0., 0.]])
    assert torch.equal(pixelcnn_mask(3, "A", 1, 1), a.view(1, 1, 3, 3))
    assert torch.equal(pixelcnn_mask(3, "B", 1, 1), b.view(1, 1, 3, 3))
    # one colour group: every channel pair gets the same spatial pattern
    assert torch.equal(pixelcnn_mask(3, "A", 2, 4), a.expand(4, 2, 3, 3))
    m5 = pixelcnn_mask(5, "B", 1, 1)[0, 0]
    assert m5[:2].eq(1).all() and m5[2, :3].eq(1).all() and m5[2, 3:].eq(0).all()
    assert m5[3:].eq(0).all()


def _check_colour_mask(mask, centre):
    out_ch, in_ch = centre.shape
    spatial = torch.tensor([[1., 1., 1.], [1., 0., 0.], [0., 0., 0.]])
    off_centre = mask.clone()
    off_centre[:, :, 1, 1] = 0
    assert torch.equal(off_centre, spatial.expand(out_ch, in_ch, 3, 3))
    assert torch.equal(mask[:, :, 1, 1], centre)


def test_mask_colour_groups_three_channels():
    a = torch.tensor([[0., 0., 0.], [1., 0., 0.], [1., 1., 0.]])   # R sees -, G sees R, B sees R G
    b = torch.tensor([[1., 0., 0.], [1., 1., 0.], [1., 1., 1.]])
    _check_colour_mask(pixelcnn_mask(3, "A", 3, 3, color_groups=3), a)
    _check_colour_mask(pixelcnn_mask(3, "B", 3, 3, color_groups=3), b)


def test_mask_colour_groups_six_channels_contiguous():
    # channels 0,1 -> R; 2,3 -> G; 4,5 -> B
    a = torch.tensor([[0, 0, 0, 0, 0, 0],
                      [0, 0, 0, 0, 0, 0],
                      [1, 1, 0, 0, 0, 0],
                      [1, 1, 0, 0, 0, 0],
                      [1, 1, 1, 1, 0, 0],
                      [1, 1, 1, 1, 0, 0]], dtype=torch.float)
    b = torch.tensor([[1, 1, 0, 0, 0, 0],
                      [1, 1, 0, 0, 0, 0],
                      [1, 1, 1, 1, 0, 0],
                      [1, 1, 1, 1, 0, 0],
                      [1, 1, 1, 1, 1, 1],
                      [1, 1, 1, 1, 1, 1]], dtype=torch.float)
    _check_colour_mask(pixelcnn_mask(3, "A", 6, 6, color_groups=3), a)
    _check_colour_mask(pixelcnn_mask(3, "B", 6, 6, color_groups=3), b)
    # image (3 channels) -> 6 hidden channels, the shape of a first layer
    first = torch.tensor([[0, 0, 0], [0, 0, 0], [1, 0, 0], [1, 0, 0], [1, 1, 0], [1, 1, 0]],
                         dtype=torch.float)
    _check_colour_mask(pixelcnn_mask(3, "A", 3, 6, color_groups=3), first)


@pytest.mark.parametrize("args, match", [
    ((3, "C", 1, 1), "mask_type"),
    ((3, "a", 1, 1), "mask_type"),
    ((4, "A", 1, 1), "odd"),
    ((3, "A", 4, 3, 3), "divisible"),
    ((3, "B", 3, 4, 3), "divisible"),
])
def test_mask_errors(args, match):
    with pytest.raises(ValueError, match=match):
        pixelcnn_mask(*args)


# -- MaskedConv2d ----------------------------------------------------------------------------

def test_masked_conv_equals_conv_with_masked_weight_and_keeps_weight():
    torch.manual_seed(0)
    conv = MaskedConv2d(3, 6, 5, "A", color_groups=3)
    assert isinstance(conv, nn.Conv2d)
    assert "mask" in dict(conv.named_buffers())
    assert conv.padding == (2, 2)
    weight = conv.weight.detach().clone()
    x = torch.randn(2, 3, 7, 6)
    out = conv(x)
    expected = F.conv2d(x, weight * pixelcnn_mask(5, "A", 3, 6, 3), conv.bias, padding=2)
    assert out.shape == (2, 6, 7, 6)
    assert torch.equal(out, expected)
    assert torch.equal(conv.weight, weight)            # forward never edits the weight
    out.sum().backward()
    assert torch.equal(conv.weight.grad[conv.mask == 0],
                       torch.zeros(int((conv.mask == 0).sum())))


# -- PixelCNN --------------------------------------------------------------------------------

@pytest.mark.parametrize("layers", [2, 6])
def test_pixelcnn_causal_with_blind_spot(layers):
    torch.manual_seed(0)
    model = PixelCNN((1, 9, 9), 2, channels=8, layers=layers, kernel_size=5)
    pixel = (4, 4)
    assert not causality_violations(model, (0, *pixel)).any()
    seen = _seen(model, (0, *pixel))
    assert not (seen & ~earlier_pixels(9, 9, pixel)).any()
    # the upper right of the cone is never reached, whatever the depth
    spot = blind_spot(seen, pixel)
    assert spot.any(), f"expected a blind spot with {layers} layers, seen map:\n{seen.int()}"
    assert spot[2, 8] and spot[3, 7] and spot[3, 8]


def test_pixelcnn_colour_groups_inside_a_pixel():
    torch.manual_seed(0)
    # wide enough that ReLUs do not silence a whole colour group on the probe inputs
    model = PixelCNN((3, 4, 4), 4, channels=12, layers=1, kernel_size=3)
    order = model.order()
    assert torch.equal(order, torch.arange(16).view(1, 4, 4) * 3 + torch.arange(3).view(3, 1, 1))
    for c in range(3):
        seen = receptive_field(model, (c, 2, 1), num_inputs=8)
        own = seen[:, 2, 1]
        assert own.tolist() == [k < c for k in range(3)], f"channel {c} sees {own.tolist()}"
        assert not causality_violations(model, (c, 2, 1)).any()
        assert seen[:, 1, 1].all()                    # the pixel above, every channel


def test_pixelcnn_colour_causal_everywhere():
    torch.manual_seed(1)
    model = PixelCNN((3, 3, 3), 4, channels=6, layers=1, kernel_size=3)
    for c, i, j in itertools.product(range(3), range(3), range(3)):
        assert not causality_violations(model, (c, i, j)).any(), (c, i, j)


def test_pixelcnn_independent_channels_share_a_rank():
    torch.manual_seed(0)
    model = PixelCNN((3, 4, 4), 4, channels=8, layers=1, kernel_size=3, color="independent")
    assert torch.equal(model.order(), torch.arange(16).view(1, 4, 4).expand(3, 4, 4))
    for c in range(3):
        seen = receptive_field(model, (c, 2, 1))
        assert not seen[:, 2, 1].any()
        assert seen[:, 2, 0].all()
        assert not causality_violations(model, (c, 2, 1)).any()


def test_pixelcnn_rounds_hidden_channels_to_colour_multiple():
    model = PixelCNN((3, 2, 2), 4, channels=16)
    assert model.first.out_channels == 18


@pytest.mark.parametrize("shape", [(1, 6, 6), (3, 4, 4)])
def test_pixelcnn_skip_causal_and_every_block_feeds_output(shape):
    torch.manual_seed(0)
    model = PixelCNN(shape, 4, channels=6, layers=3, kernel_size=3, skip=True)
    c, h, w = shape
    for pos in [(0, h - 1, w - 1), (c - 1, 2, 1), (0, 0, 0)]:
        assert not causality_violations(model, pos).any(), pos
    out = model(torch.randint(0, 4, (2, *shape)))
    out.square().sum().backward()
    for k, conv in enumerate(model.skips):
        assert conv.weight.grad.abs().sum() > 0, f"block {k} does not reach the output"


def test_pixelcnn_argument_errors():
    with pytest.raises(ValueError, match="head"):
        PixelCNN((1, 4, 4), 2, head="gaussian")
    with pytest.raises(ValueError, match="color"):
        PixelCNN((1, 4, 4), 2, color="rgb")
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        PixelCNN((4, 4), 2)
    with pytest.raises(ValueError, match="expected input"):
        PixelCNN((1, 4, 4), 2)(torch.zeros(1, 1, 4, 5, dtype=torch.long))


# -- GatedPixelCNNLayer ----------------------------------------------------------------------

class _LayerStack(nn.Module):
    """v = h = 1x1 embedding of the image, gated layers, output h as ``[N, ch, 1, H, W]``."""

    def __init__(self, height: int, width: int, layers: int, channels: int = 4,
                 kernel_size: int = 3):
        super().__init__()
        self.data_shape, self.levels = (1, height, width), 2
        self.embed = nn.Conv2d(1, channels, 1)
        self.layers = nn.ModuleList(GatedPixelCNNLayer(channels, kernel_size, k == 0)
                                    for k in range(layers))

    def forward(self, x, cond=None):
        v = h = self.embed(x.to(self.embed.weight.dtype))
        for layer in self.layers:
            v, h = layer(v, h)              # the homework signature, no cond_bias
        return h.unsqueeze(2)


@pytest.mark.parametrize("first", [True, False])
def test_gated_layer_reach_of_each_stack(first):
    """One layer (k=5, reach 2): v at (i, j) sees v rows i-2..i, cols j-2..j+2, never h;
    h at (i, j) sees h cols j-2..j-1 (and j unless first) of row i and v rows i-3..i-1."""
    torch.manual_seed(0)
    layer = GatedPixelCNNLayer(3, 5, first).double()
    v = torch.randn(1, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    h = torch.randn(1, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    v_out, h_out = layer(v, h)
    i, j = 5, 4
    gv, gh = torch.autograd.grad(v_out[0, :, i, j].sum(), (v, h), allow_unused=True,
                                 retain_graph=True)
    box = torch.zeros(8, 8, dtype=torch.bool)
    box[i - 2:i + 1, j - 2:j + 3] = True
    assert torch.equal(gv[0].abs().sum(0) != 0, box)
    assert gh is None or not gh.any()
    gv, gh = torch.autograd.grad(h_out[0, :, i, j].sum(), (v, h))
    v_box = torch.zeros(8, 8, dtype=torch.bool)
    v_box[i - 3:i, j - 2:j + 3] = True
    h_row = torch.zeros(8, 8, dtype=torch.bool)
    h_row[i, j - 2:j if first else j + 1] = True
    assert torch.equal(gv[0].abs().sum(0) != 0, v_box)
    assert torch.equal(gh[0].abs().sum(0) != 0, h_row)


def test_gated_stack_causal_without_blind_spot():
    torch.manual_seed(0)
    stack = _LayerStack(6, 6, layers=2)
    for pixel in _all_pixels(6, 6):
        seen = _seen(stack, (0, *pixel))
        earlier = earlier_pixels(6, 6, pixel)
        assert not (seen & ~earlier).any(), f"pixel {pixel} sees a later pixel:\n{seen.int()}"
        assert not blind_spot(seen, pixel).any(), f"blind spot at {pixel}:\n{seen.int()}"
        assert seen.any() == earlier.any()


def test_gated_stack_with_enough_layers_sees_every_earlier_pixel():
    torch.manual_seed(0)
    stack = _LayerStack(5, 5, layers=4)
    for pixel in _all_pixels(5, 5):
        assert torch.equal(_seen(stack, (0, *pixel)), earlier_pixels(5, 5, pixel)), pixel


def test_gated_layer_rejects_even_kernel():
    with pytest.raises(ValueError, match="odd"):
        GatedPixelCNNLayer(4, 4, True)


# -- GatedPixelCNN ---------------------------------------------------------------------------

def test_gated_pixelcnn_causal_no_blind_spot_and_full_view():
    torch.manual_seed(0)
    model = GatedPixelCNN((1, 6, 6), 2, channels=4, layers=2)
    for pixel in _all_pixels(6, 6):
        assert not causality_violations(model, (0, *pixel)).any(), pixel
        assert not blind_spot(_seen(model, (0, *pixel)), pixel).any(), pixel
    # a tiny net can silence a pixel through the output ReLU on every probe input; 8 channels
    # and a fixed seed keep the probe informative
    torch.manual_seed(0)
    deep = GatedPixelCNN((1, 5, 5), 2, channels=8, layers=4)
    for pixel in _all_pixels(5, 5):
        assert torch.equal(_seen(deep, (0, *pixel)), earlier_pixels(5, 5, pixel)), pixel


def test_gated_pixelcnn_colour_channels_independent():
    torch.manual_seed(0)
    model = GatedPixelCNN((3, 3, 3), 4, channels=6, layers=3)
    assert torch.equal(model.order(), torch.arange(9).view(1, 3, 3).expand(3, 3, 3))
    for c, i, j in itertools.product(range(3), range(3), range(3)):
        seen = receptive_field(model, (c, i, j))
        assert torch.equal(seen, earlier_pixels(3, 3, (i, j)).expand(3, 3, 3)), (c, i, j)


# -- attention -------------------------------------------------------------------------------

def test_causal_attention_mask_exact():
    assert torch.equal(causal_attention_mask(3, True),
                       torch.tensor([[1, 0, 0], [1, 1, 0], [1, 1, 1]], dtype=torch.bool))
    assert torch.equal(causal_attention_mask(3, False),
                       torch.tensor([[0, 0, 0], [1, 0, 0], [1, 1, 0]], dtype=torch.bool))
    assert causal_attention_mask(1, False).dtype == torch.bool


def _naive_attention(attn: CausalSelfAttention, x, kv=None):
    """Per-query loops over heads and allowed keys, from the documented layout."""
    kv = x if kv is None else kv
    dim, heads = attn.dim, attn.heads
    d = dim // heads
    w, b = attn.qkv.weight, attn.qkv.bias
    q = x @ w[:dim].T + b[:dim]
    k = kv @ w[dim:2 * dim].T + b[dim:2 * dim]
    v = kv @ w[2 * dim:].T + b[2 * dim:]
    out = torch.zeros_like(x)
    for n, i, hd in itertools.product(range(x.shape[0]), range(x.shape[1]), range(heads)):
        f = slice(hd * d, (hd + 1) * d)
        keys = range(i + 1) if attn.include_self else range(i)
        if not keys:
            continue
        scores = torch.stack([q[n, i, f] @ k[n, j, f] / math.sqrt(d) for j in keys])
        weights = torch.softmax(scores, 0)
        out[n, i, f] = sum(weights[t] * v[n, j, f] for t, j in enumerate(keys))
    return attn.proj(out)


@pytest.mark.parametrize("include_self", [True, False])
def test_attention_matches_naive_loops(include_self):
    torch.manual_seed(0)
    attn = CausalSelfAttention(6, 3, include_self).double()
    x = torch.randn(2, 5, 6, dtype=torch.float64)
    kv = torch.randn(2, 5, 6, dtype=torch.float64)
    torch.testing.assert_close(attn(x), _naive_attention(attn, x), rtol=0, atol=1e-12)
    torch.testing.assert_close(attn(x, kv), _naive_attention(attn, x, kv), rtol=0, atol=1e-12)


@pytest.mark.parametrize("include_self", [True, False])
def test_attention_ignores_later_positions(include_self):
    """Output i is bit-identical when the inputs at positions > i change."""
    torch.manual_seed(0)
    attn = CausalSelfAttention(4, 2, include_self).double()
    x = torch.randn(2, 6, 4, dtype=torch.float64)
    base = attn(x)
    for i in range(6):
        y = x.clone()
        y[:, i + 1:] = torch.randn(2, 5 - i, 4, dtype=torch.float64)
        assert torch.equal(attn(y)[:, :i + 1], base[:, :i + 1]), f"output {i} sees a later input"
        # its own input does matter: as key/value (include_self), or as the query once there
        # are two keys to weigh (a single key gets weight 1 whatever the query)
        if include_self or i >= 2:
            z = x.clone()
            z[:, i] += 1.0
            assert not torch.equal(attn(z)[:, i], base[:, i])


def test_attention_without_self_uses_own_input_only_as_query():
    """include_self=False: output i equals the output whose keys/values come from a copy of x
    with every position >= i (its own included) replaced by noise: x_i enters via q only."""
    torch.manual_seed(0)
    attn = CausalSelfAttention(4, 2, include_self=False).double()
    x = torch.randn(2, 6, 4, dtype=torch.float64)
    base = attn(x)
    for i in range(6):
        kv = x.clone()
        kv[:, i:] = torch.randn(2, 6 - i, 4, dtype=torch.float64)
        # equal up to float64 rounding: the noise gets weight exactly 0, but the kernel may sum
        # the remaining terms in another order (the exact zero is proven by gradients)
        torch.testing.assert_close(attn(x, kv)[:, i], base[:, i], rtol=0, atol=1e-12)


def test_attention_empty_row_is_zero_before_proj_and_gradients_finite():
    torch.manual_seed(0)
    for include_self in (True, False):
        attn = CausalSelfAttention(4, 2, include_self).double()
        x = (1e3 * torch.randn(2, 5, 4, dtype=torch.float64)).requires_grad_(True)
        out = attn(x)
        assert torch.isfinite(out).all()
        if not include_self:
            # proj(0) is its bias: the first query has no key to attend to
            assert torch.equal(out[:, 0], attn.proj.bias.expand(2, 4))
        out.square().sum().backward()
        grads = [x.grad] + [p.grad for p in attn.parameters()]
        assert all(torch.isfinite(g).all() for g in grads), f"include_self={include_self}"
    with pytest.raises(ValueError, match="divisible"):
        CausalSelfAttention(5, 2)


# -- PixelSNAIL ------------------------------------------------------------------------------

@pytest.mark.parametrize("conv_layers", [0, 1])
@pytest.mark.parametrize("attention", ["full", "rows"])
@pytest.mark.parametrize("blocks", [1, 2])
def test_pixelsnail_sees_exactly_the_earlier_pixels(blocks, attention, conv_layers):
    """conv_layers=0 keeps only the first (type-A) gated layer, before the first attention."""
    torch.manual_seed(0)
    model = PixelSNAIL((1, 5, 4), 2, channels=4, blocks=blocks, heads=2,
                       conv_layers=conv_layers, attention=attention)
    assert sum(len(c) for c in model.convs) == max(blocks * conv_layers, 1)
    for pixel in _all_pixels(5, 4):
        assert torch.equal(_seen(model, (0, *pixel)), earlier_pixels(5, 4, pixel)), pixel


def test_row_attention_keys():
    """Query (r, c) may use the summaries of rows < r and the pixels (r, c' < c)."""
    from arlab.models.pixelsnail import _RowAttentionBlock

    allowed = _RowAttentionBlock.allowed(3, 4)           # [H, W, H + W]
    for r, c in itertools.product(range(3), range(4)):
        assert allowed[r, c, :3].tolist() == [k < r for k in range(3)]
        assert allowed[r, c, 3:].tolist() == [k < c for k in range(4)]
    assert not allowed[0, 0].any()                       # the first pixel has no key


def test_pixelsnail_colour_channels_independent():
    torch.manual_seed(0)
    model = PixelSNAIL((3, 3, 3), 4, channels=4, blocks=1)
    assert torch.equal(model.order(), torch.arange(9).view(1, 3, 3).expand(3, 3, 3))
    for c, i, j in itertools.product(range(3), range(3), range(3)):
        seen = receptive_field(model, (c, i, j))
        assert torch.equal(seen, earlier_pixels(3, 3, (i, j)).expand(3, 3, 3)), (c, i, j)


# -- class conditioning ----------------------------------------------------------------------

@pytest.mark.parametrize("make", [
    partial(PixelCNN, channels=6, layers=1, kernel_size=3),
    partial(PixelCNN, channels=6, layers=1, kernel_size=3, skip=True),
    partial(GatedPixelCNN, channels=4, layers=2),
    partial(PixelSNAIL, channels=4, blocks=1),
    partial(PixelSNAIL, channels=4, blocks=1, attention="rows"),
])
def test_class_label_changes_output_and_keeps_causality(make):
    torch.manual_seed(0)
    model = make((3, 4, 4), 4, num_classes=3)
    x = torch.randint(0, 4, (2, 3, 4, 4))
    out0, out1 = model(x, torch.tensor([0, 0])), model(x, torch.tensor([1, 1]))
    assert out0.shape == out1.shape == (2, 4, 3, 4, 4)
    assert not torch.equal(out0, out1)
    # the label changes even the first pixel, which sees no input
    assert not torch.equal(out0[:, :, :, 0, 0], out1[:, :, :, 0, 0])
    for pos in [(0, 2, 2), (2, 3, 1)]:
        assert not causality_violations(model, pos, cond=torch.tensor(2)).any(), pos
    with pytest.raises(ValueError, match="num_classes"):
        make((3, 4, 4), 4)(x, torch.tensor([0, 0]))


# -- zoo entries and the logistic-mixture head -------------------------------------------------

_MINE = {"pixelcnn", "pixelcnn_skip", "pixelcnn_dlm", "gated_pixelcnn", "gated_pixelcnn_dlm",
         "pixelsnail"}


def _entry(name):
    _, _, kwargs = _ZOO[name]
    return partial(model_class(name), **kwargs)


@pytest.mark.parametrize("name", sorted(_MINE - {"pixelcnn_dlm", "gated_pixelcnn_dlm"}))
@pytest.mark.parametrize("shape, levels", [((1, 2, 2), 2), ((3, 2, 2), 4), ((1, 8, 8), 2)])
def test_zoo_entries_construct(name, shape, levels):
    model = _entry(name)(data_shape=shape, levels=levels)
    x = torch.randint(0, levels, (2, *shape))
    assert model(x).shape == (2, model.head.num_params, *shape)
    assert model.log_prob(x).shape == (2,)


@needs_dlm
@pytest.mark.parametrize("name", ["pixelcnn_dlm", "gated_pixelcnn_dlm"])
@pytest.mark.parametrize("shape", [(1, 2, 2), (3, 2, 2), (1, 8, 8)])
def test_zoo_dlm_entries_construct(name, shape):
    model = _entry(name)(data_shape=shape, levels=4)
    x = torch.randint(0, 4, (2, *shape))
    assert model(x).shape == (2, model.head.num_params, *shape)
    assert torch.isfinite(model.log_prob(x)).all()


@needs_dlm
@pytest.mark.parametrize("make", [partial(PixelCNN, layers=1, kernel_size=3),
                                  partial(GatedPixelCNN, layers=2),
                                  partial(PixelSNAIL, blocks=1)])
def test_dlm_head_normalised_and_causal(make):
    torch.manual_seed(0)
    model = make((1, 1, 3), 4, channels=6, head="dlm", num_mixtures=2).double()
    assert model.head.num_params == 6
    xs = torch.tensor(list(itertools.product(range(4), repeat=3))).view(-1, 1, 1, 3)
    total = model.log_prob(xs).exp().sum()
    torch.testing.assert_close(total, torch.tensor(1.0, dtype=torch.float64), rtol=0, atol=1e-9)
    for j in range(3):
        assert not causality_violations(model, (0, 0, j)).any(), j
