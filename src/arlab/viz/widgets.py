"""ipywidgets explorers (core widgets only, so they run in Colab): the base class, and the
widgets of the first lessons (inverse-CDF sampling, histogram bins).

Every widget keeps its controls as attributes (``w.u.value = 0.3``), computes what it shows in
pure methods (``w.current_level()``), draws the current state with ``w.figure()`` and has a
``static(...)`` classmethod, its static twin, that draws the same figure from plain arguments
(for exported HTML pages and terminals). ``display(w)`` or ``w.show()`` shows the controls and
the figure, redrawn on every change.
"""
from __future__ import annotations

import base64
import io
import math
import uuid
from contextlib import contextmanager
from typing import Iterator

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor

import ipywidgets as widgets
from arlab.viz.plots import new_figure

# every widget control: the label takes the width it needs, so long descriptions are not cut
LABEL_STYLE = {"description_width": "initial"}


def png_base64(fig: Figure) -> str:
    """``fig`` as a PNG, base64-encoded text: the form a notebook output holds an image in.

    Raw ``bytes`` would not do inside a widget: ipywidgets sends every ``bytes`` value of a
    widget's state as a binary buffer, and the front end's image renderer then gets an
    object where it wants base64 text (a broken image)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _enable_colab_widgets() -> None:
    """Colab shows third-party widget output only through its custom widget manager."""
    try:
        from google.colab import output  # type: ignore[import-not-found]
    except ImportError:
        return
    output.enable_custom_widget_manager()


def _layout_key(fig: Figure) -> tuple:
    """What a constrained layout depends on, roughly: the size, the axes, their title lines."""
    size = tuple(round(float(v), 3) for v in fig.get_size_inches())
    titles = tuple(ax.get_title().count("\n") for ax in fig.axes)
    suptitle = fig.get_suptitle().count("\n")
    return size, titles, suptitle


LIVE_NOTE = "Live widget: run this cell (with its kernel) to get the controls."


class FigureWidget:
    """Base class: ``controls`` above an ``ipywidgets.Output`` holding ``figure()``.

    Subclasses build their controls, call ``_setup(controls)``, implement ``figure()`` and
    may override ``_sync()`` to keep dependent controls consistent (e.g. the range of a
    position slider when the length changes) before a redraw."""

    def _setup(self, controls: list[widgets.Widget]) -> None:
        self.controls = controls
        self.output = widgets.Output()
        self.redraws = 0
        self.last_png: str | None = None
        self._layouts: dict[tuple, tuple[list, float | None]] = {}
        self._live = False
        self._holding = False
        for control in controls:
            if hasattr(control, "value") and not isinstance(control, widgets.Button):
                control.observe(self._changed, names="value")
        row = widgets.HBox(controls, layout=widgets.Layout(flex_flow="row wrap"))
        # The static twin beside the widget carries this class; the live view hides it
        # (a <style> rendered only where the widget itself renders), so a page shows one
        # figure: the live one with a kernel, the twin without.
        self.twin_class = f"arlab-twin-{uuid.uuid4().hex[:12]}"
        hide = widgets.HTML(f"<style>.{self.twin_class} {{ display: none !important; }}</style>",
                            layout=widgets.Layout(display="none"))
        self.ui = widgets.VBox([row, self.output, hide])

    @contextmanager
    def _hold(self) -> Iterator[None]:
        """Change several controls with one redraw at the end."""
        held, self._holding = self._holding, True
        try:
            yield
        finally:
            self._holding = held

    def _changed(self, _change=None) -> None:
        if self._holding:
            return
        with self._hold():
            self._sync()
        if self._live:
            self.redraw()

    def _sync(self) -> None:
        """Adjust dependent controls after a change (default: nothing)."""

    def figure(self) -> Figure:
        raise NotImplementedError

    def redraw(self) -> None:
        """Replace the figure in the output area by the current one."""
        # Set the output's contents directly rather than capturing displays with
        # ``with self.output:``: headless runners (nbclient) can stall on captured output.
        # The PNG goes in as base64 text (see png_base64), in one assignment (no flicker).
        self.last_png = None
        try:
            self.last_png = self._render(self.figure())
            out = {"output_type": "display_data", "metadata": {},
                   "data": {"image/png": self.last_png,
                            "text/plain": f"<{type(self).__name__} figure>"}}
        except ValueError as err:  # a setting the user can fix, e.g. "8,x" hidden sizes
            out = {"output_type": "stream", "name": "stdout",
                   "text": f"Cannot draw this setting: {err}\n"}
        self.output.outputs = (out,)
        self.redraws += 1

    def _render(self, fig: Figure) -> str:
        """``png_base64(fig)``, reusing the constrained layout computed for the last figure
        of the same shape: the layout is about half the time of a redraw, and a slider move
        rarely changes it."""
        laid = self._layouts.get(_layout_key(fig))
        if laid is not None:
            try:
                fig.set_layout_engine("none")
            except RuntimeError:  # a colorbar ties the figure to its layout engine
                laid = None
        if laid is not None:
            positions, suptitle_y = laid
            for ax, pos in zip(fig.axes, positions):
                ax.set_position(pos)
            if suptitle_y is not None and fig._suptitle is not None:
                fig._suptitle.set_y(suptitle_y)
            return png_base64(fig)
        png = png_base64(fig)
        if len(self._layouts) < 64:
            self._layouts[_layout_key(fig)] = (
                [ax.get_position() for ax in fig.axes],
                fig._suptitle.get_position()[1] if fig._suptitle is not None else None)
        return png

    def show(self) -> None:
        """Display the static twin (a PNG of the current figure) and the live widget.

        Two outputs: with a kernel, Jupyter shows the widget and the twin is hidden by it;
        an exported page, a notebook reopened without its kernel or a viewer without
        widgets shows the twin (and the widget's one-line note instead of its controls)."""
        from IPython.display import display

        _enable_colab_widgets()
        self._live = True
        self.redraw()
        png = self.last_png
        if png is not None:
            display({"text/html": f'<img class="{self.twin_class}" alt="{type(self).__name__}" '
                                  f'src="data:image/png;base64,{png}">',
                     "image/png": png, "text/plain": f"<{type(self).__name__} figure>"},
                    raw=True)
        bundle = dict(self.ui._repr_mimebundle_())
        bundle["text/plain"] = LIVE_NOTE
        display(bundle, raw=True)

    def _ipython_display_(self) -> None:
        self.show()


# -- 1. inverse-CDF sampling ------------------------------------------------------------------

def _check_probs(probs) -> Tensor:
    p = torch.as_tensor(probs, dtype=torch.float64).detach().cpu().reshape(-1)
    if p.numel() < 1 or (p < 0).any():
        raise ValueError("probs must be a non-empty vector of non-negative probabilities.")
    return p


def _level_bars(ax, heights: np.ndarray, hot: int) -> None:
    """One bar per level, level ``hot`` in red. Many levels are drawn as one outline (a
    hundred separate bars make a redraw several times slower)."""
    d = len(heights)
    if d <= 30:
        colours = ["#c9c9c9"] * d
        colours[hot] = "#d62728"
        ax.bar(np.arange(d), heights, color=colours, edgecolor="0.4", lw=0.5)
        return
    ax.stairs(heights, np.arange(d + 1) - 0.5, fill=True, color="#c9c9c9")
    ax.stairs(heights, np.arange(d + 1) - 0.5, color="0.4", lw=0.5)
    ax.bar([hot], [heights[hot]], width=1.0, color="#d62728", edgecolor="0.4", lw=0.5)


class InverseCDFWidget(FigureWidget):
    """A slider for u in [0, 1) and the level it picks: the smallest k with CDF[k] > u
    (:func:`arlab.inverse_cdf_sample`), highlighted on the PMF and on the CDF.

    Args:
        probs: ``Tensor[d]`` probabilities.
        u: the starting value of the slider.
    """

    def __init__(self, probs: Tensor, u: float = 0.5):
        self.probs = _check_probs(probs)
        self.u = widgets.FloatSlider(value=u, min=0.0, max=0.999, step=0.001,
                                     readout_format=".3f", description="u ~ U[0, 1)",
                                     style=LABEL_STYLE, continuous_update=True)
        self._setup([self.u])

    def current_level(self) -> int:
        """The level that ``u`` picks."""
        from arlab.models.histogram import inverse_cdf_sample

        return int(inverse_cdf_sample(self.probs, torch.tensor(self.u.value, dtype=torch.float64)))

    def figure(self) -> Figure:
        return self.static(self.probs, self.u.value)

    @classmethod
    def static(cls, probs: Tensor, u: float) -> Figure:
        """PMF (left) and CDF (right) with the level picked by ``u`` in red."""
        from arlab.models.histogram import inverse_cdf_sample

        p = _check_probs(probs)
        d = p.numel()
        k = int(inverse_cdf_sample(p, torch.tensor(float(u), dtype=torch.float64)))
        cdf = p.cumsum(0).numpy()
        levels = np.arange(d)
        fig = new_figure(9.5, 3.6)
        pmf_ax, cdf_ax = fig.subplots(1, 2)
        _level_bars(pmf_ax, p.numpy(), k)
        pmf_ax.set_xlabel("level k")
        pmf_ax.set_ylabel("probability p(k)")
        pmf_ax.set_title(f"PMF: u = {u:.3f} picks level k = {k}")
        low = cdf[k - 1] if k > 0 else 0.0
        _level_bars(cdf_ax, cdf, k)
        cdf_ax.axhspan(low, cdf[k], color="#d62728", alpha=0.12,
                       label=f"u in [{low:.3f}, {cdf[k]:.3f}) gives k = {k}")
        cdf_ax.axhline(u, color="black", ls="--", lw=1.2, label=f"u = {u:.3f}")
        cdf_ax.annotate("", xy=(k, 0), xytext=(k, u),
                        arrowprops=dict(arrowstyle="->", color="black", lw=1.2))
        cdf_ax.set_ylim(0, 1.05)
        cdf_ax.set_xlabel("level k")
        cdf_ax.set_ylabel("CDF[k] = P(x <= k)")
        cdf_ax.set_title("CDF: the smallest k with CDF[k] > u")
        cdf_ax.legend(loc="upper left", fontsize="small")
        for ax in (pmf_ax, cdf_ax):
            ax.set_xticks(levels if d <= 20 else np.linspace(0, d - 1, 9).round())
        return fig


# -- 1b. histogram bins: under- and over-fitting --------------------------------------------

def binned_histogram_probs(samples: Tensor, d: int, bins: int, alpha: float = 0.0) -> Tensor:
    """A histogram with ``bins`` equal-width groups of levels, spread uniformly inside each.

    Level k belongs to group ``k * bins // d``; a group of n levels holding c of the N samples
    gives each of its levels ``(c + alpha) / (N + alpha * bins) / n``. ``bins = d`` is
    :func:`arlab.histogram_probs`. Returns ``Tensor[d]`` (float64)."""
    if not 1 <= bins <= d:
        raise ValueError(f"bins must lie in 1..d = 1..{d}, got {bins}.")
    if alpha < 0:
        raise ValueError(f"alpha is a pseudo-count and must be >= 0, got {alpha}.")
    flat = torch.as_tensor(samples).reshape(-1).long().cpu()
    group = torch.arange(d) * bins // d
    counts = torch.bincount(group[flat], minlength=bins).double()
    sizes = torch.bincount(group, minlength=bins).double()
    total = flat.numel() + alpha * bins
    if total == 0:
        raise ValueError("No samples and alpha = 0: the histogram is undefined.")
    return ((counts + alpha) / total / sizes)[group]


def nll_nats_per_dim(probs: Tensor, samples: Tensor) -> float:
    """Mean negative log-likelihood (nats/dim) of one-variable ``samples`` under ``probs``;
    ``inf`` when a sample has probability 0."""
    flat = torch.as_tensor(samples).reshape(-1).long().cpu()
    return float(-probs[flat].log().mean())


class HistogramBinsWidget(FigureWidget):
    """Fit a histogram with fewer, wider bins (and pseudo-count ``alpha``) to ``train`` and
    score it on ``test``: too few bins under-fit (both NLLs high), too many over-fit (train
    NLL low, test NLL high, infinite for a level never seen in training when alpha = 0).

    Args:
        train, test: ``LongTensor[N]`` levels 0..d-1.
        d: number of levels.
    """

    def __init__(self, train: Tensor, test: Tensor, d: int, bins: int | None = None,
                 alpha: float = 0.0):
        self.train = torch.as_tensor(train).reshape(-1).long().cpu()
        self.test = torch.as_tensor(test).reshape(-1).long().cpu()
        self.d = int(d)
        for name, x in (("train", self.train), ("test", self.test)):
            if x.numel() and (x.min() < 0 or x.max() >= d):
                raise ValueError(f"{name} holds levels outside 0..{d - 1}.")
        self.bins = widgets.IntSlider(value=bins or min(d, 10), min=1, max=d,
                                      description="bins", style=LABEL_STYLE,
                                      layout=widgets.Layout(width="380px"))
        # Wide enough that the track beside its long label is easy to hit.
        self.alpha = widgets.FloatSlider(value=alpha, min=0.0, max=5.0, step=0.1,
                                         description="alpha (pseudo-count)", style=LABEL_STYLE,
                                         layout=widgets.Layout(width="460px"))
        self._curves: dict[float, tuple[list[int], list[float], list[float]]] = {}
        self._setup([self.bins, self.alpha])

    def current_probs(self) -> Tensor:
        """The fitted histogram ``Tensor[d]`` for the current bins and alpha."""
        return binned_histogram_probs(self.train, self.d, self.bins.value, self.alpha.value)

    def current_nll(self) -> dict[str, float]:
        """``{"train": ..., "test": ...}`` NLL in nats/dim of the current histogram."""
        p = self.current_probs()
        return {"train": nll_nats_per_dim(p, self.train), "test": nll_nats_per_dim(p, self.test)}

    def figure(self) -> Figure:
        alpha = self.alpha.value
        if alpha not in self._curves:  # the NLL curve depends on alpha only: moving bins is fast
            self._curves[alpha] = self.nll_curve(self.train, self.test, self.d, alpha)
        return self.static(self.train, self.test, self.d, self.bins.value, alpha,
                           curve=self._curves[alpha])

    @classmethod
    def nll_curve(cls, train: Tensor, test: Tensor, d: int, alpha: float
                  ) -> tuple[list[int], list[float], list[float]]:
        """``(bins, train NLL, test NLL)`` in nats/dim for every number of bins 1..d."""
        bins = list(range(1, d + 1))
        probs = [binned_histogram_probs(train, d, b, alpha) for b in bins]
        return (bins, [nll_nats_per_dim(p, train) for p in probs],
                [nll_nats_per_dim(p, test) for p in probs])

    @classmethod
    def static(cls, train: Tensor, test: Tensor, d: int, bins: int, alpha: float = 0.0,
               curve: tuple[list[int], list[float], list[float]] | None = None) -> Figure:
        """The histogram over the train and test data (left) and NLL against bins (right);
        ``curve`` is ``nll_curve(train, test, d, alpha)`` when already computed."""
        train = torch.as_tensor(train).reshape(-1).long()
        test = torch.as_tensor(test).reshape(-1).long()
        p = binned_histogram_probs(train, d, bins, alpha)
        levels = np.arange(d)
        fig = new_figure(10, 3.8)
        hist_ax, nll_ax = fig.subplots(1, 2)
        for data, name, style in ((train, "train", dict(color="0.78")),
                                  (test, "test", dict(color="C0", alpha=0.35))):
            emp = torch.bincount(data, minlength=d).double() / max(data.numel(), 1)
            hist_ax.stairs(emp.numpy(), np.arange(d + 1) - 0.5, fill=True,
                           label=f"{name} data", **style)
        hist_ax.step(levels, p.numpy(), where="mid", color="C3", lw=2,
                     label=f"histogram, {bins} bins")
        hist_ax.set_xlabel("level x")
        hist_ax.set_ylabel("probability")
        hist_ax.set_title(f"{bins} bins of width {d / bins:.3g} levels, alpha = {alpha:g}")
        hist_ax.legend(fontsize="small")
        bins_all, tr, te = curve or cls.nll_curve(train, test, d, alpha)
        nll_ax.plot(bins_all, tr, "-", color="0.35", label="train")
        nll_ax.plot(bins_all, te, "-", color="C0", label="test")
        now_tr, now_te = nll_nats_per_dim(p, train), nll_nats_per_dim(p, test)
        nll_ax.axvline(bins, color="C3", lw=1, ls="--")
        finite = [v for v in tr + te if math.isfinite(v)]
        if finite:
            nll_ax.set_ylim(min(finite) - 0.05, max(finite) + 0.1)
        nll_ax.set_xlabel("number of bins")
        nll_ax.set_ylabel("negative log-likelihood (nats/dim)")
        nll_ax.set_title(f"now: train {now_tr:.3f}, test {now_te:.3f} nats/dim"
                         + ("\n(test inf: a test level unseen in training, try alpha > 0)"
                            if math.isinf(now_te) else ""), fontsize="medium")
        nll_ax.legend(fontsize="small")
        return fig
