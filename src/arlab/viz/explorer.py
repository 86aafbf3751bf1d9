"""Receptive fields of the pixel models, live: which pixels one output sees, its blind spot,
and how strongly each pixel matters (float64 gradients of randomly initialised models)."""
from __future__ import annotations

import torch
from matplotlib.figure import Figure
from torch import Tensor

import ipywidgets as widgets
from arlab.viz.fields import draw_receptive_map, pixel_receptive_map
from arlab.viz.plots import new_figure
from arlab.viz.widgets import LABEL_STYLE, FigureWidget

EXPLORER_MODELS = {"pixelcnn": "PixelCNN", "pixelcnn_skip": "PixelCNN with skip connections",
                   "gated_pixelcnn": "GatedPixelCNN", "pixelsnail": "PixelSNAIL"}
MODES = {"seen": "seen / unseen", "magnitude": "log10 |gradient|"}


def explorer_model(name: str, layers: int, kernel_size: int, image_size: int = 12,
                   seed: int = 0, channels: int = 8):
    """The binary ``(1, image_size, image_size)`` zoo model the explorer shows.

    ``layers`` is the depth of each family: PixelCNN's residual blocks (after a type-A
    ``kernel_size`` convolution; the blocks use 3x3), GatedPixelCNN's gated layers, and
    PixelSNAIL's blocks (one gated layer then attention each). The weights are drawn from
    ``torch.manual_seed(seed)`` without disturbing the caller's global random state."""
    from arlab.models import zoo

    if name not in EXPLORER_MODELS:
        raise ValueError(f"unknown model {name!r}; use one of {tuple(EXPLORER_MODELS)}.")
    if name == "pixelsnail":
        sizes = {"blocks": layers, "conv_layers": 1, "kernel_size": kernel_size, "heads": 2}
    else:
        sizes = {"layers": layers, "kernel_size": kernel_size}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return zoo()[name](data_shape=(1, image_size, image_size), levels=2,
                           channels=channels, **sizes)


class _MapCache:
    """Built models per setting, maps per (setting, pixel, mode): moving the pixel is fast."""

    def __init__(self, image_size: int, seed: int):
        self.image_size, self.seed = image_size, seed
        self.models: dict[tuple, object] = {}
        self.maps: dict[tuple, Tensor] = {}

    def model(self, name: str, layers: int, kernel_size: int):
        key = (name, layers, kernel_size)
        if key not in self.models:
            self.models[key] = explorer_model(name, layers, kernel_size, self.image_size,
                                              self.seed)
        return self.models[key]

    def map(self, name: str, layers: int, kernel_size: int, pixel: tuple[int, int],
            magnitude: bool) -> Tensor:
        key = (name, layers, kernel_size, tuple(pixel), magnitude)
        if key not in self.maps:
            self.maps[key] = pixel_receptive_map(self.model(name, layers, kernel_size), pixel,
                                                 magnitude=magnitude, seed=self.seed)
        return self.maps[key]


def _subtitle(image_size: int, layers: int, kernel_size: int, seed: int) -> str:
    return (f"{image_size}x{image_size} binary image, {layers} layers, kernel {kernel_size}, "
            f"random weights (seed {seed})")


def _draw_maps(maps: dict[str, Tensor], pixel: tuple[int, int], magnitude: bool,
               subtitle: str) -> Figure:
    n = len(maps)
    fig = new_figure(7.4 if n == 1 else 15.5, 4.6 if n == 1 else 4.9)
    axes = fig.subplots(1, n, squeeze=False)[0]
    vmin = vmax = None
    if magnitude:
        logs = torch.cat([m[m > 0].log10() for m in maps.values()])
        vmin, vmax = (float(logs.min()), float(logs.max())) if logs.numel() else (None, None)
    im = None
    for k, (ax, (name, values)) in enumerate(zip(axes, maps.items())):
        im = draw_receptive_map(ax, values, pixel, magnitude=magnitude, vmin=vmin, vmax=vmax,
                                title=EXPLORER_MODELS.get(name, name), legend=k == n - 1)
    if magnitude:
        fig.colorbar(im, ax=list(axes), label="log10 |d output / d input|",
                     location="bottom", shrink=0.5)
    fig.suptitle(subtitle, fontsize="medium")
    return fig


class ReceptiveFieldExplorer(FigureWidget):
    """Receptive field of the outputs at one pixel of a pixel model with random weights.

    Controls: ``model`` (:data:`EXPLORER_MODELS`), ``layers``, ``kernel_size``, ``row`` and
    ``col`` (the pixel), ``mode`` (``"seen"`` or ``"magnitude"``: log10 |gradient|) and
    ``side_by_side`` (all four models at the same pixel). ``current_map()`` equals
    ``pixel_map(receptive_field(explorer_model(...), (0, row, col), magnitude=..., seed=seed))``.
    """

    def __init__(self, model: str = "pixelcnn", layers: int = 3, kernel_size: int = 5,
                 pixel: tuple[int, int] | None = None, mode: str = "seen",
                 side_by_side: bool = False, image_size: int = 12, seed: int = 0):
        self.image_size, self.seed = int(image_size), int(seed)
        self._cache = _MapCache(self.image_size, self.seed)
        row, col = pixel if pixel is not None else (image_size // 2, image_size // 2)
        self.model = widgets.Dropdown(options=[(v, k) for k, v in EXPLORER_MODELS.items()],
                                      value=model, description="model", style=LABEL_STYLE)
        self.layers = widgets.IntSlider(value=layers, min=1, max=8, description="layers",
                                        style=LABEL_STYLE)
        self.kernel_size = widgets.IntSlider(value=kernel_size, min=3, max=9, step=2,
                                             description="kernel size", style=LABEL_STYLE)
        self.row = widgets.IntSlider(value=row, min=0, max=image_size - 1, description="row",
                                     style=LABEL_STYLE)
        self.col = widgets.IntSlider(value=col, min=0, max=image_size - 1,
                                     description="column", style=LABEL_STYLE)
        self.mode = widgets.ToggleButtons(options=[(v, k) for k, v in MODES.items()],
                                          value=mode, description="show", style=LABEL_STYLE)
        self.side_by_side = widgets.Checkbox(value=side_by_side,
                                             description="all four models side by side")
        self._setup([self.model, self.layers, self.kernel_size, self.row, self.col, self.mode,
                     self.side_by_side])
        self._sync()

    def _sync(self) -> None:
        # Side by side shows every model: the model choice has nothing to change.
        self.model.disabled = self.side_by_side.value

    def pixel(self) -> tuple[int, int]:
        return self.row.value, self.col.value

    def current_model(self):
        """The (cached) model of the current settings."""
        return self._cache.model(self.model.value, self.layers.value, self.kernel_size.value)

    def current_map(self, name: str | None = None) -> Tensor:
        """``[H, W]`` map of the chosen model (or zoo ``name``): bool in ``"seen"`` mode,
        float64 max |gradient| in ``"magnitude"`` mode."""
        return self._cache.map(name or self.model.value, self.layers.value,
                               self.kernel_size.value, self.pixel(),
                               self.mode.value == "magnitude")

    def current_maps(self) -> dict[str, Tensor]:
        """The maps shown: every model when ``side_by_side``, else the chosen one."""
        names = list(EXPLORER_MODELS) if self.side_by_side.value else [self.model.value]
        return {name: self.current_map(name) for name in names}

    def figure(self) -> Figure:
        return _draw_maps(self.current_maps(), self.pixel(), self.mode.value == "magnitude",
                          _subtitle(self.image_size, self.layers.value, self.kernel_size.value,
                                    self.seed))

    @classmethod
    def static(cls, model: str = "pixelcnn", layers: int = 3, kernel_size: int = 5,
               pixel: tuple[int, int] = (6, 6), mode: str = "seen", side_by_side: bool = False,
               image_size: int = 12, seed: int = 0) -> Figure:
        """The explorer's figure for these settings, without widgets."""
        cache = _MapCache(image_size, seed)
        names = list(EXPLORER_MODELS) if side_by_side else [model]
        magnitude = mode == "magnitude"
        maps = {n: cache.map(n, layers, kernel_size, tuple(pixel), magnitude) for n in names}
        return _draw_maps(maps, tuple(pixel), magnitude,
                          _subtitle(image_size, layers, kernel_size, seed))
