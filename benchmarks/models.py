"""The image models the benchmarks compare, with the sizes they are built at."""
from __future__ import annotations

import torch

from arlab.models import zoo

# name in the tables -> (zoo entry, keyword sizes)
IMAGE_MODELS = {
    "rnn": ("rnn", {"hidden": 64}),
    "rnn_coords": ("rnn_coords", {"hidden": 64}),
    "made": ("made", {"hidden_sizes": (512, 512)}),
    "wavenet": ("wavenet", {"channels": 32, "dilations": (1, 2, 4, 8, 16, 32, 64, 128, 256)}),
    "wavenet_coords": ("wavenet_coords",
                       {"channels": 32, "dilations": (1, 2, 4, 8, 16, 32, 64, 128, 256)}),
    "pixelcnn": ("pixelcnn", {"channels": 32, "layers": 4, "kernel_size": 7}),
    "gated_pixelcnn": ("gated_pixelcnn", {"channels": 32, "layers": 5, "kernel_size": 3}),
    "pixelcnn_dlm": ("pixelcnn_dlm", {"channels": 32, "layers": 4, "kernel_size": 7}),
    "pixelsnail": ("pixelsnail", {"channels": 32, "blocks": 2, "heads": 2}),
    "pixelsnail_rows": ("pixelsnail_rows", {"channels": 32, "blocks": 2, "heads": 1,
                                            "conv_layers": 1}),
    "transformer": ("transformer", {"dim": 32, "layers": 2, "heads": 2}),
}


def build(name: str, data_shape, levels: int, seed: int = 0):
    entry, sizes = IMAGE_MODELS[name]
    torch.manual_seed(seed)
    return zoo()[entry](data_shape=data_shape, levels=levels, **sizes)


def parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())
