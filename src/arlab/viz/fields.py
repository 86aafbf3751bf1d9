"""Receptive-field maps: which input pixels the outputs at one pixel depend on, drawn with the
allowed region (earlier pixels) outlined and the blind spot in its own colour."""
from __future__ import annotations

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle
from torch import Tensor

from arlab.receptive import blind_spot, earlier_pixels, pixel_map, receptive_field
from arlab.viz.plots import target_axes

# categories of a receptive-field map, in drawing order
CATEGORIES = ("later pixel, unseen", "earlier pixel, out of reach", "seen",
              "blind spot", "seen but not earlier")
_COLOURS = ("#e6e6e6", "#ffffff", "#3a78b5", "#f08a24", "#d62728")


def _image_shape(model) -> tuple[int, int, int]:
    shape = tuple(model.data_shape)
    if len(shape) != 3:
        raise ValueError(f"receptive-field maps are drawn for image models (data_shape "
                         f"(C, H, W)); this model has data_shape {shape}.")
    return shape


def pixel_receptive_map(model, pixel: tuple[int, int], channel: int | None = None,
                        magnitude: bool = False, seed: int = 0, num_inputs: int = 3) -> Tensor:
    """What the outputs at ``pixel`` depend on, per input pixel, ``[H, W]``: bool (seen) or,
    with ``magnitude``, the largest float64 |gradient| over the input's channels.

    ``channel=None`` joins the outputs of every channel of the pixel; a channel index takes
    that output only. With one channel this is exactly
    ``pixel_map(receptive_field(model, (0, row, col), magnitude=..., seed=...))``."""
    c, h, w = _image_shape(model)
    i, j = (int(p) for p in pixel)
    if not (0 <= i < h and 0 <= j < w):
        raise ValueError(f"pixel {(i, j)} is outside the {h}x{w} image.")
    channels = range(c) if channel is None else [int(channel)]
    maps = [pixel_map(receptive_field(model, (ch, i, j), magnitude=magnitude, seed=seed,
                                      num_inputs=num_inputs)) for ch in channels]
    out = maps[0]
    for m in maps[1:]:
        out = out | m if not magnitude else torch.maximum(out, m)
    return out


def allowed_pixels(order: Tensor, pixel: tuple[int, int], channel: int | None = None) -> Tensor:
    """``BoolTensor[H, W]``: pixels with some channel ranked before the output at ``pixel``
    (``channel``, or any of its channels when None) in ``order [C, H, W]`` (``model.order()``).

    For raster models this is :func:`arlab.receptive.earlier_pixels`; when the colours of a
    pixel are generated in turn, the pixel itself is allowed for its later channels."""
    i, j = pixel
    rank = order[:, i, j].max() if channel is None else order[channel, i, j]
    return (order < rank).any(0)


def receptive_categories(seen: Tensor, pixel: tuple[int, int],
                         allowed: Tensor | None = None) -> Tensor:
    """Code every pixel of a seen map ``[H, W]`` by :data:`CATEGORIES` (``LongTensor[H, W]``).

    ``allowed`` defaults to the raster-earlier pixels; the blind spot
    (:func:`arlab.receptive.blind_spot`) is marked only when the pixels are in raster order
    (the pixel itself may be allowed, for colour channels generated in turn)."""
    h, w = seen.shape
    raster = earlier_pixels(h, w, pixel)
    allowed = raster if allowed is None else allowed.bool()
    seen = seen.bool()
    codes = torch.where(allowed, 1, 0)
    codes[seen] = 2
    others = torch.ones_like(allowed)
    others[tuple(pixel)] = False
    if torch.equal(allowed & others, raster):
        codes[blind_spot(seen & others, pixel)] = 3
    codes[seen & ~allowed] = 4
    return codes


def _outline(ax: Axes, region: Tensor, **style) -> None:
    """Draw the border of a boolean region ``[H, W]`` along pixel edges."""
    r = region.bool().numpy()
    h, w = r.shape
    pad = np.zeros((h + 2, w + 2), dtype=bool)
    pad[1:-1, 1:-1] = r
    segments = []
    for i in range(h + 1):      # horizontal edges between rows i-1 and i
        for j in range(w):
            if pad[i, j + 1] != pad[i + 1, j + 1]:
                segments.append([(j - 0.5, i - 0.5), (j + 0.5, i - 0.5)])
    for i in range(h):          # vertical edges between columns j-1 and j
        for j in range(w + 1):
            if pad[i + 1, j] != pad[i + 1, j + 1]:
                segments.append([(j - 0.5, i - 0.5), (j - 0.5, i + 0.5)])
    ax.add_collection(LineCollection(segments, **style))


def draw_receptive_map(ax: Axes, values: Tensor, pixel: tuple[int, int],
                       allowed: Tensor | None = None, magnitude: bool = False,
                       title: str | None = None, vmin: float | None = None,
                       vmax: float | None = None, legend: bool = True):
    """Draw a map from :func:`pixel_receptive_map` into ``ax``: categories (seen, unseen, blind
    spot in orange, causality violations in red) or log10 |gradient| (zeros left white, blind
    spot hatched). The pixel is marked by a black x, the allowed region (earlier pixels)
    outlined in black.
    Returns the image artist (for a colour bar in magnitude mode)."""
    h, w = values.shape
    i, j = pixel
    seen = values > 0 if magnitude else values.bool()
    codes = receptive_categories(seen, pixel, allowed)
    allowed = earlier_pixels(h, w, pixel) if allowed is None else allowed.bool()
    if magnitude:
        logv = np.where(seen.numpy(), np.log10(np.where(seen.numpy(), values.numpy(), 1.0)),
                        np.nan)
        ax.imshow(np.zeros((h, w)), cmap=ListedColormap(["#ffffff"]), vmin=0, vmax=1)
        im = ax.imshow(logv, cmap="viridis", vmin=vmin, vmax=vmax, interpolation="nearest")
        for (bi, bj) in (codes == 3).nonzero().tolist():
            ax.add_patch(Rectangle((bj - 0.5, bi - 0.5), 1, 1, facecolor="#f08a24",
                                   edgecolor="#a04f00", hatch="///", lw=0.5))
        for (bi, bj) in (codes == 4).nonzero().tolist():
            ax.add_patch(Rectangle((bj - 0.5, bi - 0.5), 1, 1, fill=False,
                                   edgecolor="#d62728", lw=2))
    else:
        im = ax.imshow(codes.numpy(), cmap=ListedColormap(_COLOURS), vmin=-0.5, vmax=4.5,
                       interpolation="nearest")
    _outline(ax, allowed, colors="black", linewidths=1.6)
    ax.plot([j], [i], marker="x", color="black", ms=9, mew=2.5, ls="none")
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)
    ax.set_xlabel("column j (pixels)")
    ax.set_ylabel("row i (pixels)")
    n_seen, n_allowed = int((seen & allowed).sum()), int(allowed.sum())
    stats = f"sees {n_seen}/{n_allowed} allowed px, blind spot {int((codes == 3).sum())}"
    ax.set_title(f"{title}\n{stats}" if title else stats, fontsize="medium")
    if legend:
        violations = bool((codes == 4).any())
        if magnitude:
            handles = [Patch(facecolor="#ffffff", edgecolor="0.4", label="|gradient| = 0"),
                       Patch(facecolor="#f08a24", hatch="///", edgecolor="#a04f00",
                             label=CATEGORIES[3])]
            if violations:
                handles.append(Patch(fill=False, edgecolor="#d62728", lw=2,
                                     label=CATEGORIES[4]))
        else:
            handles = [Patch(facecolor=_COLOURS[k], edgecolor="0.4", label=CATEGORIES[k])
                       for k in range(5 if violations else 4)]
        handles.append(Patch(fill=False, edgecolor="black", lw=1.6, label="allowed pixels"))
        handles.append(ax.plot([], [], marker="x", color="black", ls="none", mew=2.5,
                               label=f"output pixel ({i}, {j})")[0])
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0),
                  fontsize="small", frameon=False)
    return im


def receptive_field_plot(model, pixel: tuple[int, int], channel: int | None = None,
                         magnitude: bool = False, seed: int = 0, num_inputs: int = 3,
                         ax: Axes | None = None, title: str | None = None) -> Figure:
    """The receptive field of ``model``'s outputs at ``pixel`` (see :func:`pixel_receptive_map`)
    drawn by :func:`draw_receptive_map`, with the allowed region from ``model.order()``."""
    values = pixel_receptive_map(model, pixel, channel, magnitude, seed, num_inputs)
    allowed = allowed_pixels(model.order().cpu(), tuple(pixel), channel)
    fig, ax = target_axes(ax, 7.2, 4.2 if not magnitude else 5.0)
    im = draw_receptive_map(ax, values.cpu(), tuple(pixel), allowed, magnitude,
                            title or type(model).__name__)
    if magnitude:
        fig.colorbar(im, ax=ax, label="log10 |d output / d input|", location="bottom",
                     shrink=0.6)
    return fig
