"""arlab.viz: analytic receptive fields against gradients, plots, widgets and their static twins.

Headless (Agg). Dependence is decided exactly: float64 gradients of linear stacks with positive
weights (a sum of positive path products is zero exactly when there is no path).
"""
from __future__ import annotations

import io
import itertools

import matplotlib
import pytest
import torch
from matplotlib.figure import Figure

import arlab
from arlab.models import zoo
from arlab.receptive import (blind_spot, dilated_stack_offsets, dilated_stack_receptive_field,
                             dilated_stack_tree, earlier_pixels, masked_conv_stack_receptive_field,
                             pixel_map, receptive_field)
from arlab.train import History
from arlab.units import nats_to_bits
from arlab.viz import (CATEGORIES, DILATION_PATTERNS, EXPLORER_MODELS, HistogramBinsWidget,
                       InverseCDFWidget, MADEWidget, ReceptiveFieldExplorer, SamplingStepper,
                       WaveNetWidget, binned_histogram_probs, density_1d, explorer_model,
                       joint_2d, made_dependence, made_paths, pattern_dilations,
                       receptive_categories, receptive_field_plot, sample_grid, training_curves)

matplotlib.use("Agg")


# -- helpers --------------------------------------------------------------------------------

def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=70)
    return buffer.getvalue()


def _check_labelled(fig: Figure) -> None:
    """Every axis of every plotting panel is labelled (colour bars carry their own label)."""
    for ax in fig.axes:
        if hasattr(ax, "_colorbar"):
            cbar_label = ax.get_xlabel() or ax.get_ylabel()
            assert cbar_label, "a colour bar has no label"
            continue
        assert ax.get_xlabel(), f"axes titled {ax.get_title()!r} has no x label"
        assert ax.get_ylabel(), f"axes titled {ax.get_title()!r} has no y label"


def _check_picture(fig: Figure, min_bytes: int = 5000) -> bytes:
    _check_labelled(fig)
    png = _png(fig)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > min_bytes, len(png)
    return png


def _positive(module: torch.nn.Module) -> torch.nn.Module:
    """float64 copy with weights > 0, so every path contributes with the same sign."""
    module = module.double()
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(p.abs() + 0.1)
    return module


# -- analytic receptive fields --------------------------------------------------------------

@pytest.mark.parametrize("k, dilations", [(2, [1, 2, 4]), (3, [1, 3, 9]), (2, [1, 1, 1]),
                                          (2, [2]), (3, [2, 2]), (2, [1, 2, 1, 2])])
def test_dilated_stack_matches_gradients_of_causal_convs(k, dilations):
    torch.manual_seed(0)
    stack = _positive(torch.nn.Sequential(*[arlab.CausalConv1d(1, 1, k, d) for d in dilations]))
    span = 1 + (k - 1) * sum(dilations)
    length = span + 4
    for position in (length - 1, 2):
        x = torch.randn(1, 1, length, dtype=torch.float64, requires_grad=True)
        (grad,) = torch.autograd.grad(stack(x)[0, 0, position], x)
        seen = grad[0, 0] != 0
        want = torch.zeros(length, dtype=torch.bool)
        for lag in dilated_stack_offsets(k, dilations):
            if position - lag >= 0:
                want[position - lag] = True
        assert torch.equal(seen, want), f"position {position}"
        assert torch.equal(dilated_stack_tree(k, dilations, length, position)[0], seen)
        if position == length - 1:
            assert dilated_stack_receptive_field(k, dilations) == int(seen.sum())
    gapless = dilated_stack_receptive_field(k, dilations) == span
    assert gapless == ((k, dilations) != (2, [2]) and (k, dilations) != (3, [2, 2]))
    if gapless:
        assert dilated_stack_receptive_field(k, dilations) == arlab.wavenet_receptive_field(
            k, dilations)


def test_dilated_stack_rejects_bad_sizes():
    with pytest.raises(ValueError, match="positive"):
        dilated_stack_receptive_field(2, [1, 0])


@pytest.mark.parametrize("kf, kr, layers, shape", [(3, 3, 3, (7, 7)), (5, 3, 2, (8, 6)),
                                                   (7, 5, 1, (6, 9)), (3, 1, 2, (5, 5)),
                                                   (1, 3, 3, (6, 6))])
def test_masked_conv_stack_matches_gradients(kf, kr, layers, shape):
    torch.manual_seed(1)
    convs = [arlab.MaskedConv2d(1, 1, kf, "A")]
    convs += [arlab.MaskedConv2d(1, 1, kr, "B") for _ in range(layers - 1)]
    stack = _positive(torch.nn.Sequential(*convs))
    h, w = shape
    x = torch.randn(1, 1, h, w, dtype=torch.float64, requires_grad=True)
    out = stack(x)
    for i, j in itertools.product(range(h), range(w)):
        (grad,) = torch.autograd.grad(out[0, 0, i, j], x, retain_graph=True)
        analytic = masked_conv_stack_receptive_field(kf, kr, layers, (1, h, w), (i, j))
        assert torch.equal(analytic, grad[0, 0] != 0), f"pixel {(i, j)}"
        assert not (analytic & ~earlier_pixels(h, w, (i, j))).any()


def test_masked_conv_stack_has_the_blind_spot_and_matches_a_pixelcnn():
    seen = masked_conv_stack_receptive_field(3, 3, 3, (7, 7), (4, 3))
    assert blind_spot(seen, (4, 3)).nonzero().tolist() == [[2, 6], [3, 5], [3, 6]]
    # PixelCNN: a type-A k x k conv, then blocks whose only wide conv is 3x3 type B.
    torch.manual_seed(0)
    model = zoo()["pixelcnn"](data_shape=(1, 9, 9), levels=2, layers=2, kernel_size=5)
    for pixel in [(4, 4), (8, 0), (1, 7)]:
        real = pixel_map(receptive_field(model, (0, *pixel)))
        assert torch.equal(real, masked_conv_stack_receptive_field(5, 3, 3, (9, 9), pixel))


# -- plots ----------------------------------------------------------------------------------

@pytest.mark.parametrize("c, levels", [(1, 2), (1, 256), (3, 4)])
def test_sample_grid_shows_each_image(c, levels):
    x = torch.randint(0, levels, (10, c, 6, 5), generator=torch.Generator().manual_seed(0))
    fig = sample_grid(x, levels, nrow=4)
    _check_picture(fig, 2000)
    grid = fig.axes[0].images[0].get_array()
    assert grid.shape == (3 * 7 + 1, 4 * 6 + 1, 3)
    for k in (0, 5, 9):
        r, q = divmod(k, 4)
        img = torch.as_tensor(grid[1 + r * 7:1 + r * 7 + 6, 1 + q * 6:1 + q * 6 + 5])
        want = (x[k].double() / (levels - 1)).permute(1, 2, 0).expand(6, 5, 3)
        assert torch.equal(img, want), f"image {k}"


def test_training_curves_plot_bits_per_dim():
    a = History([1, 2, 3, 4], [2.0, 1.5, 1.2, 1.0], [1, 2], [1.4, 1.1], steps_per_epoch=2)
    b = History([1, 2], [3.0, 2.0], [1], [2.5], steps_per_epoch=2)
    fig = training_curves(a, b, labels=["small", "big"])
    _check_picture(fig)
    lines = fig.axes[0].get_lines()
    assert len(lines) == 4
    assert list(lines[0].get_xdata()) == [0.5, 1.0, 1.5, 2.0]
    assert list(lines[1].get_ydata()) == [nats_to_bits(1.4), nats_to_bits(1.1)]
    assert "bits/dim" in fig.axes[0].get_ylabel()


def test_density_1d_draws_the_model_pmf_over_the_data():
    data = torch.tensor([0, 1, 1, 2, 2, 2, 4, 4])
    model = zoo()["histogram"](data_shape=(1,), levels=5).fit_counts(data, alpha=0.5)
    fig = density_1d(model, data=data.view(-1, 1))
    _check_picture(fig)
    ax = fig.axes[0]
    pmf = torch.as_tensor(ax.get_lines()[0].get_ydata())
    assert torch.allclose(pmf, arlab.histogram_probs(data, 5, 0.5).double(), atol=1e-6)
    heights = [p.get_height() for p in ax.patches]
    assert heights == [1 / 8, 2 / 8, 3 / 8, 0.0, 2 / 8]
    assert "nats/dim" in ax.get_title()


def test_joint_2d_enumerates_a_two_variable_model():
    torch.manual_seed(0)
    model = zoo()["two_variable"](data_shape=(2,), levels=4).double()
    data = torch.tensor([[0, 1], [0, 1], [3, 2], [1, 0]])
    fig = joint_2d(model, data=data)
    _check_picture(fig)
    learned = torch.as_tensor(fig.axes[0].images[0].get_array())
    empirical = torch.as_tensor(fig.axes[1].images[0].get_array())
    assert abs(float(learned.sum()) - 1.0) < 1e-12
    pairs = torch.cartesian_prod(torch.arange(4), torch.arange(4))
    assert torch.allclose(learned.reshape(-1), model.log_prob(pairs).double().exp().detach())
    assert empirical[0, 1] == 0.5 and empirical[3, 2] == 0.25 and empirical.sum() == 1.0


def test_receptive_field_plot_codes_the_blind_spot():
    torch.manual_seed(0)
    model = zoo()["pixelcnn"](data_shape=(1, 10, 10), levels=2, layers=2, kernel_size=3)
    fig = receptive_field_plot(model, (5, 4))
    _check_picture(fig)
    codes = torch.as_tensor(fig.axes[0].images[0].get_array())
    seen = pixel_map(receptive_field(model, (0, 5, 4)))
    assert torch.equal(codes.long(), receptive_categories(seen, (5, 4)))
    assert torch.equal(codes == 3, blind_spot(seen, (5, 4))) and (codes == 3).any()
    assert torch.equal(codes == 2, seen)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "blind spot" in labels and "allowed pixels" in labels
    magnitude = receptive_field_plot(model, (5, 4), magnitude=True)
    _check_picture(magnitude)
    assert len(magnitude.axes) == 2          # the map and its colour bar


def test_receptive_field_plot_of_colour_channels_generated_in_turn():
    torch.manual_seed(0)
    model = zoo()["pixelcnn"](data_shape=(3, 7, 7), levels=4, layers=2, kernel_size=3)
    union = torch.as_tensor(receptive_field_plot(model, (4, 3)).axes[0].images[0].get_array())
    red = torch.as_tensor(receptive_field_plot(model, (4, 3), channel=0)
                          .axes[0].images[0].get_array())
    # G and B at a pixel see its earlier colours: the pixel is seen, and allowed (no violation).
    assert union[4, 3] == CATEGORIES.index("seen") and not (union == 4).any()
    assert red[4, 3] == CATEGORIES.index("later pixel, unseen")
    assert (union == 3).any() and torch.equal(union == 3, red == 3)


def test_receptive_categories_mark_violations_and_orderings():
    seen = torch.zeros(3, 3, dtype=torch.bool)
    seen[0, 0] = seen[2, 2] = True
    codes = receptive_categories(seen, (1, 1))
    assert codes[2, 2] == CATEGORIES.index("seen but not earlier")
    assert codes[0, 0] == CATEGORIES.index("seen")
    assert codes[0, 1] == CATEGORIES.index("earlier pixel, out of reach")
    assert codes[2, 0] == CATEGORIES.index("later pixel, unseen")


# -- widgets --------------------------------------------------------------------------------

def test_inverse_cdf_widget_highlights_the_sampled_level():
    probs = torch.tensor([0.1, 0.3, 0.2, 0.4], dtype=torch.float64)
    w = InverseCDFWidget(probs)
    shown = []
    for u in (0.0, 0.05, 0.1, 0.35, 0.4, 0.61, 0.999):
        w.u.value = u
        want = int(arlab.inverse_cdf_sample(probs, torch.tensor(u, dtype=torch.float64)))
        assert w.current_level() == want, f"u = {u}"
        red = [k for k, bar in enumerate(w.figure().axes[0].patches)
               if bar.get_facecolor()[0] > 0.8 and bar.get_facecolor()[1] < 0.3]
        assert red == [want]
        shown.append(want)
    assert shown == [0, 0, 1, 1, 2, 3, 3]


def test_histogram_bins_widget_fits_merged_bins():
    g = torch.Generator().manual_seed(0)
    train = (torch.randn(300, generator=g) * 5 + 20).round().clamp(0, 39).long()
    test = (torch.randn(300, generator=g) * 5 + 20).round().clamp(0, 39).long()
    w = HistogramBinsWidget(train, test, 40)
    w.bins.value, w.alpha.value = 40, 0.5
    assert torch.allclose(w.current_probs(), arlab.histogram_probs(train, 40, 0.5).double(),
                          rtol=1e-6, atol=0)
    w.bins.value, w.alpha.value = 1, 0.0
    assert torch.equal(w.current_probs(), torch.full((40,), 1 / 40, dtype=torch.float64))
    for bins in range(1, 41):
        p = binned_histogram_probs(train, 40, bins, 0.0)
        assert abs(float(p.sum()) - 1) < 1e-12
        assert len(set(p[torch.arange(40) * bins // 40 == 0].tolist())) == 1  # flat in a bin
    # Nested partitions (5 | 10 | 20 | 40): the finer fit never has higher training NLL.
    train_nll = []
    for bins in (1, 5, 10, 20, 40):
        w.bins.value = bins
        train_nll.append(w.current_nll()["train"])
    assert train_nll == sorted(train_nll, reverse=True) and train_nll[0] > train_nll[-1]
    w.bins.value = 40
    unseen = set(range(40)) - set(train.tolist())
    assert (w.current_nll()["test"] == float("inf")) == bool(unseen & set(test.tolist()))
    w.alpha.value = 1.0
    assert w.current_nll()["test"] < float("inf")


def _path_dependence(masks: list[torch.Tensor]) -> torch.Tensor:
    """Output-by-input dependence of a linear network with these masks and positive weights,
    by float64 gradients (independent of the mask product)."""
    d = masks[0].shape[1]
    layers = []
    for mask in masks:
        layer = arlab.MaskedLinear(mask.shape[1], mask.shape[0]).double()
        layer.set_mask(mask)
        layers.append(_positive(layer))
    x = torch.randn(d, dtype=torch.float64, requires_grad=True)
    y = torch.nn.Sequential(*layers)(x)
    return torch.stack([torch.autograd.grad(y[o], x, retain_graph=True)[0] != 0
                        for o in range(d)])


def test_made_widget_paths_equal_the_mask_dependence():
    from arlab.models.made import ORDERINGS, made_degrees, made_orderings

    w = MADEWidget()
    assert list(w.ordering.options) == list(ORDERINGS)
    for d, hidden, ordering, seed in [(6, "8,8", "raster", 0), (6, "8,8", "random", 3),
                                      (9, "5", "columns", 1), (8, "6, 4, 6", "even_odd", 2),
                                      (7, "", "top_bottom_middle", 0), (4, "3", "random", 5)]:
        w.d.value, w.hidden.value, w.ordering.value, w.seed.value = d, hidden, ordering, seed
        assert list(w.output_unit.options) == list(range(d))
        h = max(f for f in range(1, d + 1) if d % f == 0 and f * f <= d)
        ranks = made_orderings(h, d // h, seed)[ordering]
        sizes = [int(s) for s in hidden.split(",") if s.strip()]
        inputs, hid = made_degrees(ranks, sizes, 1, seed)
        masks = arlab.made_masks(inputs[0], [x[0] for x in hid])
        truth = _path_dependence(masks)
        for out in range(d):
            w.output_unit.value = out
            dep = w.dependence()
            assert torch.equal(dep, truth[out]), (d, hidden, ordering, seed, out)
            assert not (dep & (ranks >= ranks[out])).any(), "depends on a later input"
            units, edges = made_paths(w.network()[2], out)
            assert torch.equal(units[0], dep)
            assert all(not (e & ~m.bool()).any() for e, m in zip(edges, masks))
        assert torch.equal(made_dependence(w.network()[2]), truth)
    w.hidden.value = "8,x"
    with pytest.raises(ValueError, match="whole numbers"):
        w.dependence()


def test_wavenet_widget_receptive_field():
    w = WaveNetWidget(length=40)
    for layers, pattern, k in itertools.product([1, 3, 4], DILATION_PATTERNS, [2, 3]):
        w.layers.value, w.pattern.value, w.kernel_size.value = layers, pattern, k
        dil = pattern_dilations(pattern, layers)
        w.position.value = 39
        assert w.receptive_field() == arlab.wavenet_receptive_field(k, dil)
        tree = w.current_tree()
        assert len(tree) == layers + 1 and tree[-1].nonzero().tolist() == [[39]]
        w.position.value = 2
        assert w.receptive_field() == min(3, arlab.wavenet_receptive_field(k, dil))
    assert pattern_dilations("1,2,4,...", 4) == [1, 2, 4, 8]
    assert pattern_dilations("1,2,1,2", 3) == [1, 2, 1]
    w.layers.value, w.pattern.value, w.kernel_size.value, w.position.value = 4, "1,2,4,...", 2, 39
    title = w.figure().axes[0].get_title()
    assert "1 + (k-1)·Σd = 1 + 1·(1+2+4+8) = 16" in title


def _reference_model(name: str, layers: int, kernel_size: int, seed: int):
    """The explorer's contract: a binary 12x12 zoo model, 8 channels, weights drawn after
    torch.manual_seed(seed); PixelSNAIL's layers are its blocks (one gated layer each)."""
    sizes = ({"blocks": layers, "conv_layers": 1, "heads": 2} if name == "pixelsnail"
             else {"layers": layers})
    torch.manual_seed(seed)
    return zoo()[name](data_shape=(1, 12, 12), levels=2, channels=8, kernel_size=kernel_size,
                       **sizes)


def test_explorer_map_equals_receptive_field():
    w = ReceptiveFieldExplorer(layers=3, kernel_size=5, seed=2)
    w.row.value, w.col.value = 6, 5
    for name in EXPLORER_MODELS:
        w.model.value = name
        want = pixel_map(receptive_field(_reference_model(name, 3, 5, 2), (0, 6, 5), seed=2))
        assert torch.equal(w.current_map(), want), name
        spot = blind_spot(want, (6, 5))
        assert spot.any() == name.startswith("pixelcnn"), name
        if name == "pixelsnail":          # attention reaches every earlier pixel
            assert torch.equal(want, earlier_pixels(12, 12, (6, 5)))
    w.mode.value = "magnitude"
    w.model.value = "gated_pixelcnn"
    w.layers.value, w.kernel_size.value = 2, 3
    model = _reference_model("gated_pixelcnn", 2, 3, 2)
    assert torch.equal(w.current_map(),
                       pixel_map(receptive_field(model, (0, 6, 5), seed=2, magnitude=True)))
    # The explorer draws its weights without touching the caller's random state.
    state = torch.get_rng_state()
    assert torch.equal(explorer_model("pixelcnn", 2, 3, seed=2).first.weight,
                       _reference_model("pixelcnn", 2, 3, 2).first.weight)
    torch.set_rng_state(state)
    ReceptiveFieldExplorer(seed=5).current_map()
    assert torch.equal(torch.get_rng_state(), state)


def test_explorer_caches_models_and_compares_all_four():
    w = ReceptiveFieldExplorer()
    built = w.current_model()
    first = w.current_map()
    w.row.value, w.col.value = 3, 9
    assert w.current_model() is built
    assert not torch.equal(w.current_map(), first)
    w.layers.value = 4
    assert w.current_model() is not built
    w.side_by_side.value, w.mode.value = True, "magnitude"
    maps = w.current_maps()
    assert list(maps) == list(EXPLORER_MODELS)
    fig = w.figure()
    _check_picture(fig)
    assert len([ax for ax in fig.axes if not hasattr(ax, "_colorbar")]) == 4


@pytest.mark.parametrize("name, shape, levels", [("pixelcnn", (1, 4, 4), 2),
                                                 ("gated_pixelcnn", (3, 3, 3), 4),
                                                 ("made_multi", (1, 3, 3), 2)])
def test_sampling_stepper_reproduces_the_sampler(name, shape, levels):
    torch.manual_seed(0)
    kwargs = {"hidden_sizes": (16,)} if name.startswith("made") else {}
    model = zoo()[name](data_shape=shape, levels=levels, **kwargs)
    if name == "made_multi":
        model.set_mask_index(1)           # a random ordering, one mask: the generic sampler
        expected = model.sample(1, generator=torch.Generator().manual_seed(5), mask_index=1)
    else:
        expected = model.sample(1, generator=torch.Generator().manual_seed(5))
    w = SamplingStepper(model, seed=5)
    order = model.order()
    ranks = torch.unique(order)
    w.forward.click()
    w.forward.click()
    assert w.step.value == 2
    w.back.click()
    assert w.step.value == 1
    image = w.current_image()
    done = order < ranks[1]
    assert torch.equal(image[0][done], expected[0][done]) and (image[0][~done] == 0).all()
    probs, drawn = w.current_distribution()
    with torch.no_grad():
        params = model(image).movedim(1, -1)[0][order == ranks[1]]
    assert torch.allclose(probs, model.head.probs(params).double())
    assert torch.equal(drawn, expected[0][order == ranks[1]])
    w.to_end.click()
    assert w.step.value == ranks.numel() and w.current_distribution() is None
    assert torch.equal(w.current_image(), expected)
    assert torch.equal(w.final_sample(), expected)
    w.seed.value = 6
    assert torch.equal(w.final_sample(),
                       SamplingStepper(model, seed=6).final_sample())


def test_sampling_stepper_matches_wavenet_generic_and_cached():
    torch.manual_seed(0)
    model = zoo()["wavenet"](data_shape=(10,), levels=3)
    w = SamplingStepper(model, seed=1)
    for cached in (False, True):
        assert torch.equal(w.final_sample(),
                           model.sample(1, generator=torch.Generator().manual_seed(1),
                                        cached=cached))
    _check_picture(w.figure())


# -- static twins, display --------------------------------------------------------------------

def _widgets_and_twins():
    torch.manual_seed(0)
    stepper_model = zoo()["pixelcnn"](data_shape=(3, 5, 5), levels=4)
    g = torch.Generator().manual_seed(0)
    train, test = torch.randint(0, 12, (80,), generator=g), torch.randint(0, 12, (80,),
                                                                          generator=g)
    probs = torch.tensor([0.2, 0.5, 0.3])
    return [
        (InverseCDFWidget(probs, u=0.6), lambda: InverseCDFWidget.static(probs, 0.6)),
        (HistogramBinsWidget(train, test, 12, bins=4, alpha=0.5),
         lambda: HistogramBinsWidget.static(train, test, 12, 4, 0.5)),
        (MADEWidget(d=6, hidden="8,8", ordering="random", seed=1, output=3),
         lambda: MADEWidget.static(6, "8,8", "random", 1, 3)),
        (WaveNetWidget(layers=3, pattern="1,2,1,2", kernel_size=3, position=20),
         lambda: WaveNetWidget.static(3, "1,2,1,2", 3, 20)),
        (ReceptiveFieldExplorer(model="pixelcnn_skip", pixel=(5, 7), mode="magnitude"),
         lambda: ReceptiveFieldExplorer.static("pixelcnn_skip", pixel=(5, 7),
                                               mode="magnitude")),
        (SamplingStepper(stepper_model, seed=2, step=30),
         lambda: SamplingStepper.static(stepper_model, 30, seed=2)),
    ]


def test_static_twins_draw_the_same_labelled_picture(tmp_path):
    for widget, twin in _widgets_and_twins():
        png = _check_picture(widget.figure())
        assert png == _png(twin()), type(widget).__name__
        (tmp_path / f"{type(widget).__name__}.png").write_bytes(png)
    # A notebook shows a returned figure through _repr_png_, whatever the backend.
    assert InverseCDFWidget.static([0.5, 0.5], 0.2)._repr_png_()[:8] == b"\x89PNG\r\n\x1a\n"


def test_display_redraws_once_per_change(capsys):
    w = MADEWidget(d=5)
    w.show()
    assert w.redraws == 1
    w.d.value = 8                         # also resets the output dropdown: still one redraw
    assert w.redraws == 2 and list(w.output_unit.options) == list(range(8))
    w.hidden.value = "4,oops"             # a bad setting is reported, not raised
    assert w.redraws == 3
    shown = "".join(o.get("text", "") for o in w.output.outputs)
    assert "whole numbers" in shown            # the reason is shown where the figure was


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def test_widget_output_holds_png_as_base64_text():
    # ipywidgets sends bytes in a widget's state as binary buffers, which a browser's image
    # renderer cannot show: the figure must travel as base64 text.
    import base64

    from ipywidgets.widgets.widget import _remove_buffers

    w = WaveNetWidget(layers=2)
    w.show()
    w.position.value = 10
    (out,) = w.output.outputs
    png = out["data"]["image/png"]
    assert isinstance(png, str) and base64.b64decode(png)[:8] == b"\x89PNG\r\n\x1a\n"
    _state, paths, _buffers = _remove_buffers(w.output.get_state())
    assert paths == []                          # nothing travels as a binary buffer
    assert png == w.last_png and w.redraws == 2


def test_show_emits_the_static_twin_apart_from_the_widget(monkeypatch):
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj, raw=False: shown.append(obj))
    w = InverseCDFWidget(torch.tensor([0.2, 0.3, 0.5]))
    w.show()
    twin, live = shown
    assert WIDGET_VIEW not in twin and twin["image/png"] == w.last_png
    assert w.twin_class in twin["text/html"]   # the live view hides this twin by its class
    assert WIDGET_VIEW in live and "image/png" not in live
    assert "run this cell" in live["text/plain"]


def test_small_layout_fixes():
    made_ax = MADEWidget(d=5).figure().axes[0]
    assert list(made_ax.get_xticks()) == []
    model = zoo()["pixelcnn"](data_shape=(1, 3, 3), levels=2, channels=4, layers=1)
    image_ax = SamplingStepper.static(model, 3).axes[0]
    for ticks in (image_ax.get_xticks(), image_ax.get_yticks()):
        assert all(float(t).is_integer() for t in ticks)
    assert HistogramBinsWidget(torch.arange(4), torch.arange(4), 4).alpha.layout.width
