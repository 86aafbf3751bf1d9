"""Widgets that draw networks unit by unit: MADE's masked MLP and WaveNet's causal tree."""
from __future__ import annotations

import math

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from torch import Tensor

import ipywidgets as widgets
from arlab.receptive import dilated_stack_tree
from arlab.viz.plots import new_figure
from arlab.viz.widgets import LABEL_STYLE, FigureWidget

_FAINT, _HOT, _UNIT = "#c8c8c8", "#d62728", "#5b8fc7"


# -- 2. MADE ----------------------------------------------------------------------------------

def _made_orderings() -> tuple[str, ...]:
    from arlab.models.made import ORDERINGS

    return ORDERINGS


def parse_hidden_sizes(text: str) -> list[int]:
    """``"8,8"`` -> ``[8, 8]``; an empty string gives no hidden layer."""
    parts = [t.strip() for t in str(text).replace(";", ",").split(",") if t.strip()]
    try:
        sizes = [int(t) for t in parts]
    except ValueError:
        raise ValueError(f"hidden sizes must be whole numbers separated by commas, like "
                         f"'8,8'; got {text!r}.") from None
    if any(s < 1 for s in sizes):
        raise ValueError(f"every hidden layer needs at least one unit; got {sizes}.")
    return sizes


def _grid_shape(d: int) -> tuple[int, int]:
    """The most square ``h x w = d``: the D inputs read as a small image for the orderings."""
    h = max(f for f in range(1, int(math.isqrt(d)) + 1) if d % f == 0)
    return h, d // h


def made_network(d: int, hidden_sizes: list[int], ordering: str, seed: int
                 ) -> tuple[Tensor, list[Tensor], list[Tensor]]:
    """Degrees and masks of a one-mask MADE by the homework's rules.

    The ``d`` inputs are read as an ``h x w`` image (the most square factorisation) for the
    named ordering (``arlab.models.made.made_orderings``); hidden degrees are drawn by
    ``arlab.models.made.made_degrees`` with ``seed``. Returns ``(input_degrees [d],
    [hidden_degrees [h_l]], masks)`` with ``masks = arlab.made_masks(...)``, each ``[out, in]``."""
    from arlab.models.made import made_degrees, made_masks, made_orderings

    if d < 2:
        raise ValueError(f"MADE needs at least 2 inputs, got D = {d}.")
    orderings = made_orderings(*_grid_shape(d), seed=seed)
    if ordering not in orderings:
        raise ValueError(f"unknown ordering {ordering!r}; use one of {tuple(orderings)}.")
    inputs, hidden = made_degrees(orderings[ordering], hidden_sizes, 1, seed)
    hidden = [h[0] for h in hidden]
    return inputs[0], hidden, made_masks(inputs[0], hidden)


def made_dependence(masks: list[Tensor]) -> Tensor:
    """``BoolTensor[D_out, D_in]``: output d depends on input e when some path connects them,
    i.e. the product of the masks (last layer first) is positive."""
    product = masks[0].double()
    for mask in masks[1:]:
        product = mask.double() @ product
    return product > 0


def made_paths(masks: list[Tensor], output: int) -> tuple[list[Tensor], list[Tensor]]:
    """The units and edges on paths into ``output``.

    Returns ``(units, edges)``: ``units[l]`` is a ``BoolTensor`` over the units of level l
    (0 = inputs, last = outputs) that reach the output; ``edges[l]`` a ``BoolTensor[out, in]``
    of the connections from level l to level l+1 that lie on such a path."""
    level = torch.zeros(masks[-1].shape[0], dtype=torch.bool)
    level[output] = True
    units, edges = [level], []
    for mask in reversed(masks):
        on_path = mask.bool() & level[:, None]
        level = on_path.any(0)
        units.append(level)
        edges.append(on_path)
    return units[::-1], edges[::-1]


def _positions(n: int) -> np.ndarray:
    return np.arange(n) - (n - 1) / 2


def _draw_made(ax: Axes, inputs: Tensor, hidden: list[Tensor], masks: list[Tensor],
               output: int) -> None:
    degrees = [inputs, *hidden, inputs]
    units, edges = made_paths(masks, output)
    xs = [_positions(len(deg)) for deg in degrees]
    for level, (mask, on_path) in enumerate(zip(masks, edges)):
        for style, which in (({"colors": _FAINT, "linewidths": 0.6}, mask.bool() & ~on_path),
                             ({"colors": _HOT, "linewidths": 1.6}, on_path)):
            segs = [[(xs[level][i], level), (xs[level + 1][o], level + 1)]
                    for o, i in which.nonzero().tolist()]
            ax.add_collection(LineCollection(segs, zorder=1, **style))
    for level, deg in enumerate(degrees):
        hot = units[level].numpy()
        face = np.where(hot, _HOT, _UNIT) if level < len(degrees) - 1 else \
            np.where(np.arange(len(deg)) == output, _HOT, _UNIT)
        ax.scatter(xs[level], np.full(len(deg), level), s=330, c=face, edgecolors="black",
                   zorder=2)
        for x, value in zip(xs[level], deg.tolist()):
            ax.text(x, level, str(value), ha="center", va="center", color="white",
                    fontsize=8, fontweight="bold", zorder=3)
    top = len(degrees) - 1
    for x, d in zip(xs[0], range(len(inputs))):
        ax.text(x, -0.38, f"x{d}", ha="center", va="top", fontsize=8)
        ax.text(x, top + 0.38, f"p(x{d}|.)", ha="center", va="bottom", fontsize=7)
    ax.set_yticks(range(top + 1), ["inputs\n(degree = rank)"]
                  + [f"hidden {l + 1}" for l in range(len(hidden))] + ["outputs\n(rank)"])
    width = max(len(deg) for deg in degrees)
    ax.set_xlim(-width / 2 - 0.2, width / 2 + 0.2)
    ax.set_ylim(-0.9, top + 0.9)
    ax.set_xticks([])  # units have no x coordinate worth reading
    ax.set_xlabel("units (the number on a unit is its degree)")
    ax.set_ylabel("layer")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


class MADEWidget(FigureWidget):
    """A MADE drawn with only its allowed connections; the paths into one output in red.

    Controls: ``d`` (number of inputs), ``hidden`` (text such as ``"8,8"``), ``ordering``
    (``arlab.models.made.ORDERINGS``), ``seed`` (hidden-degree draws and the random ordering)
    and ``output`` (which output's paths to highlight)."""

    def __init__(self, d: int = 6, hidden: str = "8,8", ordering: str = "raster",
                 seed: int = 0, output: int | None = None):
        self.d = widgets.IntSlider(value=d, min=2, max=12, description="D (inputs)",
                                   style=LABEL_STYLE)
        self.hidden = widgets.Text(value=hidden, description="hidden sizes", style=LABEL_STYLE,
                                   continuous_update=False)
        self.ordering = widgets.Dropdown(options=list(_made_orderings()), value=ordering,
                                         description="ordering", style=LABEL_STYLE)
        self.seed = widgets.BoundedIntText(value=seed, min=0, max=10**6, description="seed",
                                           style=LABEL_STYLE, layout=widgets.Layout(width="130px"))
        self.output_unit = widgets.Dropdown(options=list(range(d)), description="output",
                                            style=LABEL_STYLE)
        self._networks: dict[tuple, tuple[Tensor, list[Tensor], list[Tensor]]] = {}
        self._setup([self.d, self.hidden, self.ordering, self.seed, self.output_unit])
        with self._hold():
            self._sync()
            if output is not None:
                self.output_unit.value = output

    def _sync(self) -> None:
        d = self.d.value
        if list(self.output_unit.options) != list(range(d)):
            keep = self.output_unit.value
            self.output_unit.options = list(range(d))
            self.output_unit.value = keep if keep is not None and keep < d else d - 1

    def network(self) -> tuple[Tensor, list[Tensor], list[Tensor]]:
        """``(input_degrees, hidden_degrees, masks)`` for the current settings (kept per
        setting: choosing another output redraws without rebuilding the network)."""
        key = (self.d.value, tuple(parse_hidden_sizes(self.hidden.value)),
               self.ordering.value, self.seed.value)
        if key not in self._networks:
            self._networks[key] = made_network(key[0], list(key[1]), key[2], key[3])
        return self._networks[key]

    def dependence(self) -> Tensor:
        """``BoolTensor[D]``: the inputs the chosen output depends on (product of masks)."""
        return made_dependence(self.network()[2])[self.output_unit.value]

    def figure(self) -> Figure:
        return self.static(self.d.value, self.hidden.value, self.ordering.value,
                           self.seed.value, self.output_unit.value, network=self.network())

    @classmethod
    def static(cls, d: int, hidden: str | list[int], ordering: str, seed: int,
               output: int, network: tuple[Tensor, list[Tensor], list[Tensor]] | None = None
               ) -> Figure:
        """The network for these settings, paths into ``output`` highlighted; ``network``
        is ``made_network(...)`` of these settings when already built."""
        sizes = parse_hidden_sizes(hidden) if isinstance(hidden, str) else list(hidden)
        inputs, hidden_deg, masks = network or made_network(d, sizes, ordering, seed)
        dep = made_dependence(masks)[output]
        rank = int(inputs[output])
        earlier = int((inputs < rank).sum())
        width = max([d, *sizes])
        fig = new_figure(max(6.0, 0.55 * width + 2.5), 1.3 * (len(sizes) + 2) + 1.2)
        ax = fig.add_subplot()
        _draw_made(ax, inputs, hidden_deg, masks, output)
        seen = ", ".join(f"x{e}" for e in dep.nonzero().flatten().tolist()) or "nothing"
        ax.set_title(f"{ordering} ordering: output x{output} (rank {rank})\ndepends on "
                     f"{int(dep.sum())} of its {earlier} earlier inputs: {seen}",
                     fontsize="medium")
        return fig


# -- 3. WaveNet ---------------------------------------------------------------------------------

DILATION_PATTERNS = ("1,2,4,...", "all 1", "1,2,1,2")


def pattern_dilations(pattern: str, layers: int) -> list[int]:
    """The dilations of ``layers`` layers for a pattern of :data:`DILATION_PATTERNS`."""
    if pattern == "1,2,4,...":
        return [2 ** l for l in range(layers)]
    if pattern == "all 1":
        return [1] * layers
    if pattern == "1,2,1,2":
        return [1 + l % 2 for l in range(layers)]
    raise ValueError(f"unknown dilation pattern {pattern!r}; use one of {DILATION_PATTERNS}.")


def _draw_tree(ax: Axes, tree: list[Tensor], kernel_size: int, dilations: list[int]) -> None:
    length = tree[0].numel()
    for level, d in enumerate(dilations, start=1):
        faint, hot = [], []
        for t in range(length):
            for j in range(kernel_size):
                src = t - j * d
                if src >= 0:
                    (hot if tree[level][t] else faint).append([(src, level - 1), (t, level)])
        ax.add_collection(LineCollection(faint, colors=_FAINT, linewidths=0.5, zorder=1))
        ax.add_collection(LineCollection(hot, colors=_HOT, linewidths=1.5, zorder=2))
    for level, units in enumerate(tree):
        on = units.numpy()
        t = np.arange(length)
        ax.scatter(t[~on], np.full((~on).sum(), level), s=14, c="#9a9a9a", zorder=3)
        ax.scatter(t[on], np.full(on.sum(), level), s=30, c=_HOT, edgecolors="black",
                   linewidths=0.5, zorder=4)
    first = int(tree[0].nonzero().min())
    ax.axvspan(first - 0.5, int(tree[0].nonzero().max()) + 0.5, ymax=0.12, color=_HOT,
               alpha=0.12, zorder=0)
    ax.set_yticks(range(len(tree)), ["inputs"] + [f"layer {l} (d={d})"
                                                  for l, d in enumerate(dilations, start=1)])
    ax.set_xlim(-0.8, length - 0.2)
    ax.set_ylim(-0.5, len(tree) - 0.5)
    ax.set_xlabel("time step t")
    ax.set_ylabel("layer")


class WaveNetWidget(FigureWidget):
    """A stack of causal dilated convolutions over time, the units and edges that feed one
    output in red, and its receptive field 1 + (k-1)·Σd.

    Controls: ``layers``, ``pattern`` (:data:`DILATION_PATTERNS`), ``kernel_size``,
    ``position`` (the output's time step, 0..length-1)."""

    def __init__(self, layers: int = 4, pattern: str = "1,2,4,...", kernel_size: int = 2,
                 position: int | None = None, length: int = 40):
        self.length = int(length)
        self.layers = widgets.IntSlider(value=layers, min=1, max=6, description="layers",
                                        style=LABEL_STYLE)
        self.pattern = widgets.Dropdown(options=list(DILATION_PATTERNS), value=pattern,
                                        description="dilations", style=LABEL_STYLE)
        self.kernel_size = widgets.IntSlider(value=kernel_size, min=2, max=4,
                                             description="kernel size", style=LABEL_STYLE)
        self.position = widgets.IntSlider(value=self.length - 1 if position is None else position,
                                          min=0, max=self.length - 1,
                                          description="output position t", style=LABEL_STYLE)
        self._setup([self.layers, self.pattern, self.kernel_size, self.position])

    def dilations(self) -> list[int]:
        return pattern_dilations(self.pattern.value, self.layers.value)

    def current_tree(self) -> list[Tensor]:
        """One ``BoolTensor[length]`` per level (inputs first): the units feeding the output."""
        return dilated_stack_tree(self.kernel_size.value, self.dilations(), self.length,
                                  self.position.value)

    def receptive_field(self) -> int:
        """Inputs that reach the chosen output inside this sequence (fewer than the formula
        when the tree is cut off by the sequence start)."""
        return int(self.current_tree()[0].sum())

    def figure(self) -> Figure:
        return self.static(self.layers.value, self.pattern.value, self.kernel_size.value,
                           self.position.value, self.length)

    @classmethod
    def static(cls, layers: int, pattern: str, kernel_size: int, position: int,
               length: int = 40) -> Figure:
        """The causal tree of these settings with the receptive-field formula in the title."""
        dil = pattern_dilations(pattern, layers)
        tree = dilated_stack_tree(kernel_size, dil, length, position)
        formula = 1 + (kernel_size - 1) * sum(dil)
        inside = int(tree[0].sum())
        fig = new_figure(11, 1.0 + 0.55 * (layers + 1) + 0.9)
        ax = fig.add_subplot()
        _draw_tree(ax, tree, kernel_size, dil)
        title = (f"receptive field = 1 + (k-1)·Σd = 1 + {kernel_size - 1}·"
                 f"({'+'.join(map(str, dil))}) = {formula} inputs")
        if inside != formula:
            title += f"; {inside} of them inside the sequence (the start cuts it off)"
        ax.set_title(f"{title}\noutput t = {position}", fontsize="medium")
        return fig
