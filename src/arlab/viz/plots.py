"""Figures: sample grids, training curves, 1-D and 2-D densities.

Every function draws into ``ax`` (or ``fig``) when given one and otherwise makes its own
``matplotlib.figure.Figure``; it returns the figure. Own figures are not registered with
pyplot, so nothing piles up and a notebook cell shows the returned figure exactly once
(save it with ``fig.savefig(path)``).
"""
from __future__ import annotations

import io
import math

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import Tensor

from arlab.units import nats_to_bits


class ArlabFigure(Figure):
    """A matplotlib Figure that shows itself as a PNG in any notebook (Jupyter, Colab),
    whatever the backend, and is never registered with pyplot (so it is shown once)."""

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png")
        return buffer.getvalue()


def new_figure(width: float = 5.0, height: float = 3.5, **kwargs) -> Figure:
    """A figure outside pyplot's registry, laid out so labels never overlap."""
    return ArlabFigure(figsize=(width, height), layout="constrained", **kwargs)


def target_axes(ax: Axes | None, width: float = 5.0,
                height: float = 3.5) -> tuple[Figure, Axes]:
    """``(ax.figure, ax)`` when an axis is given, else a new figure of that size and its axis."""
    if ax is not None:
        return ax.figure, ax
    fig = new_figure(width, height)
    return fig, fig.add_subplot()


# -- samples and curves -------------------------------------------------------------------

def sample_grid(x: Tensor, levels: int, nrow: int = 8, ax: Axes | None = None,
                title: str | None = None) -> Figure:
    """A grid of images ``x [N, C, H, W]`` (or ``[N, H, W]``) of integer levels 0..levels-1.

    ``nrow`` images per grid row. C = 1 is drawn in grey (binary: black 0, white 1), C = 3 as
    RGB (e.g. 2-bit colour, levels = 4). A thin mid-grey line separates the images."""
    x = torch.as_tensor(x).detach().cpu()
    if x.dim() == 3:
        x = x.unsqueeze(1)
    if x.dim() != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"sample_grid wants images [N, C, H, W] with C = 1 or 3, got "
                         f"{list(x.shape)}.")
    n, c, h, w = x.shape
    ncol = max(1, min(nrow, n))
    rows = math.ceil(n / ncol)
    values = x.double() / max(levels - 1, 1)
    pad = 1
    grid = np.full((rows * (h + pad) + pad, ncol * (w + pad) + pad, 3), 0.55)
    for k in range(n):
        r, q = divmod(k, ncol)
        img = values[k].permute(1, 2, 0).expand(h, w, 3).numpy()
        grid[pad + r * (h + pad): pad + r * (h + pad) + h,
             pad + q * (w + pad): pad + q * (w + pad) + w] = img
    fig, ax = target_axes(ax, min(1.0 + 0.9 * ncol, 12.0), min(0.9 + 0.9 * rows, 12.0))
    ax.imshow(np.clip(grid, 0, 1), interpolation="nearest")
    ax.set_xticks([pad + q * (w + pad) + (w - 1) / 2 for q in range(ncol)], range(ncol))
    ax.set_yticks([pad + r * (h + pad) + (h - 1) / 2 for r in range(rows)],
                  [str(r * ncol) for r in range(rows)])
    ax.set_xlabel(f"column of the grid (each image {h}x{w} pixels)")
    ax.set_ylabel("index of the row's first sample")
    kind = {2: "binary"}.get(levels, f"{levels} levels")
    ax.set_title(title or f"{n} samples ({'colour' if c == 3 else 'grey'}, {kind})")
    return fig


def training_curves(*histories, labels: list[str] | None = None, ax: Axes | None = None,
                    bits: bool = True, title: str | None = None) -> Figure:
    """Train loss per step (thin line) and test loss per epoch (dots) of one or more
    :class:`arlab.train.History`, in bits/dim (``bits=False``: nats/dim), against epochs."""
    if not histories:
        raise ValueError("training_curves needs at least one History.")
    labels = list(labels) if labels is not None else [f"run {i}" for i in range(len(histories))]
    if len(labels) != len(histories):
        raise ValueError(f"{len(labels)} labels for {len(histories)} histories.")
    conv = nats_to_bits if bits else (lambda v: v)
    fig, ax = target_axes(ax, 6, 3.8)
    for i, (hist, label) in enumerate(zip(histories, labels)):
        colour = f"C{i}"
        per_epoch = max(getattr(hist, "steps_per_epoch", 1), 1)
        ax.plot([s / per_epoch for s in hist.train_steps],
                [conv(v) for v in hist.train_nats_per_dim], lw=1, alpha=0.6, color=colour,
                label=f"{label} train (per step)")
        if hist.test_epochs:
            ax.plot(hist.test_epochs, [conv(v) for v in hist.test_nats_per_dim], "o-",
                    color=colour, label=f"{label} test (per epoch)")
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"negative log-likelihood ({'bits' if bits else 'nats'}/dim)")
    ax.set_title(title or "training curves")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return fig


# -- densities ------------------------------------------------------------------------------

@torch.no_grad()
def model_probs_1d(model) -> Tensor:
    """``p(x)`` for every level of a one-variable model (``data_shape (1,)``), ``[levels]``,
    by enumeration of ``log_prob``."""
    if tuple(model.data_shape) != (1,):
        raise ValueError(f"model_probs_1d wants a one-variable model (data_shape (1,)), got "
                         f"{tuple(model.data_shape)}.")
    x = torch.arange(model.levels, device=model.param_device).view(-1, 1)
    return model.log_prob(x).double().exp().cpu()


@torch.no_grad()
def model_joint_2d(model) -> Tensor:
    """``p(x1, x2)`` of a two-variable model (``data_shape (2,)``) for every pair,
    ``[levels, levels]`` (rows x1, columns x2), by enumeration of ``log_prob``."""
    if tuple(model.data_shape) != (2,):
        raise ValueError(f"model_joint_2d wants a two-variable model (data_shape (2,)), got "
                         f"{tuple(model.data_shape)}.")
    d = model.levels
    grid = torch.cartesian_prod(torch.arange(d), torch.arange(d)).to(model.param_device)
    return model.log_prob(grid).double().exp().cpu().view(d, d)


def _as_probs(probs_or_model, enumerate_fn) -> Tensor:
    if isinstance(probs_or_model, torch.nn.Module):
        return enumerate_fn(probs_or_model)
    return torch.as_tensor(probs_or_model, dtype=torch.float64).detach().cpu()


def density_1d(probs, data: Tensor | None = None, ax: Axes | None = None,
               title: str | None = None) -> Figure:
    """A model's PMF (``Tensor[d]`` or a one-variable model) as dots on stems, over the
    data's normalised histogram as bars. With data, the title gives the data's NLL under the
    model in nats/dim."""
    p = _as_probs(probs, model_probs_1d).reshape(-1)
    d = p.numel()
    levels = np.arange(d)
    fig, ax = target_axes(ax, 6, 3.5)
    nll = None
    if data is not None:
        flat = torch.as_tensor(data).reshape(-1).long().cpu()
        emp = torch.bincount(flat, minlength=d).double() / max(flat.numel(), 1)
        ax.bar(levels, emp.numpy(), width=1.0, color="0.75", edgecolor="0.55", lw=0.3,
               label=f"data histogram (N = {flat.numel()})")
        nll = float(-p[flat].log().mean())
    ax.plot(levels, p.numpy(), "o-" if d <= 64 else "-", ms=3, color="C3", label="model p(x)")
    ax.set_xlabel("level x")
    ax.set_ylabel("probability")
    ax.set_xlim(-0.5, d - 0.5)
    suffix = f": data NLL {nll:.3f} nats/dim" if nll is not None else ""
    ax.set_title((title or "model vs data") + suffix)
    ax.legend(fontsize="small")
    return fig


def joint_2d(probs, data: Tensor | None = None, fig: Figure | None = None,
             title: str | None = None) -> Figure:
    """Heat maps of a learned joint ``p(x1, x2)`` (``Tensor[d, d]`` or a two-variable model)
    and, with ``data [N, 2]``, the empirical joint beside it, on one colour scale."""
    p = _as_probs(probs, model_joint_2d)
    d = p.shape[0]
    panels = [("model p(x1, x2)", p)]
    if data is not None:
        pairs = torch.as_tensor(data).long().cpu().reshape(-1, 2)
        emp = torch.bincount(pairs[:, 0] * d + pairs[:, 1], minlength=d * d).double()
        panels.append((f"data (N = {pairs.shape[0]})", (emp / max(pairs.shape[0], 1)).view(d, d)))
    fig = fig or new_figure(4.2 * len(panels) + 0.6, 3.8)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    vmax = max(float(q.max()) for _, q in panels)
    for ax, (name, q) in zip(axes, panels):
        im = ax.imshow(q.numpy(), origin="upper", cmap="magma", vmin=0, vmax=vmax,
                       interpolation="nearest")
        ax.set_xlabel("x2 (level)")
        ax.set_ylabel("x1 (level)")
        ax.set_title(name)
    fig.colorbar(im, ax=list(axes), label="probability")
    if title:
        fig.suptitle(title)
    return fig
