"""Every autoregressive model of the course, one file per family, one common face (base.py).

``zoo()`` names every family; each entry takes ``data_shape`` and ``levels`` (and optional
keyword sizes) and returns a small instance.
"""
from __future__ import annotations

import importlib
from functools import partial
from typing import Callable

from arlab.models.base import ARModel, CategoricalHead
from arlab.models.sampling import inpaint, sample_autoregressive

# name -> (module, class, fixed keyword arguments)
_ZOO = {
    "histogram": ("histogram", "Histogram", {}),
    "logistic_mixture": ("logistic", "DiscretizedLogisticMixture", {}),
    "two_variable": ("two_variable", "TwoVariable", {}),
    "rnn": ("rnn", "PixelRNN", {"cell": "lstm"}),
    "rnn_gru": ("rnn", "PixelRNN", {"cell": "gru"}),
    "rnn_coords": ("rnn", "PixelRNN", {"cell": "lstm", "append_coords": True}),
    "made": ("made", "MADE", {}),
    "made_multi": ("made", "MADE", {"num_masks": 3, "ordering": "random"}),
    "wavenet": ("wavenet", "WaveNet", {}),
    "wavenet_coords": ("wavenet", "WaveNet", {"append_coords": True}),
    "pixelcnn": ("pixelcnn", "PixelCNN", {}),
    "pixelcnn_skip": ("pixelcnn", "PixelCNN", {"skip": True}),
    "pixelcnn_dlm": ("pixelcnn", "PixelCNN", {"head": "dlm"}),
    "gated_pixelcnn": ("gated_pixelcnn", "GatedPixelCNN", {}),
    "gated_pixelcnn_dlm": ("gated_pixelcnn", "GatedPixelCNN", {"head": "dlm"}),
    "pixelsnail": ("pixelsnail", "PixelSNAIL", {}),
    "pixelsnail_rows": ("pixelsnail", "PixelSNAIL", {"attention": "rows"}),
    "multiscale": ("multiscale", "MultiscalePixelCNN", {}),
    "transformer": ("transformer", "PixelTransformer", {}),
}

# The models above that read data_shape (1,) or (2,) only; all others take images (C, H, W).
ONE_D = {"histogram": (1,), "logistic_mixture": (1,), "two_variable": (2,)}


def model_class(name: str) -> type:
    """The class behind zoo entry ``name``."""
    module, cls, _ = _ZOO[name]
    return getattr(importlib.import_module(f"arlab.models.{module}"), cls)


def zoo() -> dict[str, Callable[..., ARModel]]:
    """Every model family by name: ``zoo()["pixelcnn"](data_shape=(1, 8, 8), levels=2)``."""
    return {name: partial(model_class(name), **kw) for name, (_, _, kw) in _ZOO.items()}


def __getattr__(name: str):
    # Model classes load on first use: ``from arlab.models import PixelCNN``.
    for module, cls, _ in _ZOO.values():
        if cls == name:
            return getattr(importlib.import_module(f"arlab.models.{module}"), cls)
    raise AttributeError(f"module 'arlab.models' has no attribute {name!r}")


__all__ = ["ARModel", "CategoricalHead", "inpaint", "sample_autoregressive", "zoo", "model_class"]
