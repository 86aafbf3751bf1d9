"""arlab: a course on autoregressive generative models that runs.

The homework's reference pieces are importable from here by their exercise names
(``from arlab import made_masks``); they load on first use.
"""
from __future__ import annotations

import importlib

from arlab.compute import budget, by_budget, device
from arlab.units import bits_per_dim, nats_per_dim, nats_to_bits

__version__ = "0.1.0"

# exercise name -> module that defines the reference
_REFERENCE = {
    "histogram_probs": "arlab.models.histogram",
    "inverse_cdf_sample": "arlab.models.histogram",
    "dlogistic_mixture_log_prob": "arlab.models.logistic",
    "made_masks": "arlab.models.made",
    "MaskedLinear": "arlab.models.made",
    "CausalConv1d": "arlab.models.wavenet",
    "wavenet_receptive_field": "arlab.models.wavenet",
    "GatedResidualBlock": "arlab.models.wavenet",
    "pixelcnn_mask": "arlab.models.pixelcnn",
    "MaskedConv2d": "arlab.models.pixelcnn",
    "GatedPixelCNNLayer": "arlab.models.gated_pixelcnn",
    "causal_attention_mask": "arlab.models.pixelsnail",
    "CausalSelfAttention": "arlab.models.pixelsnail",
}


def __getattr__(name: str):
    if name == "train_yourself":   # lazily, so that `python -m arlab.checkpoints` runs cleanly
        from arlab.checkpoints import train_yourself

        return train_yourself
    if name in _REFERENCE:
        return getattr(importlib.import_module(_REFERENCE[name]), name)
    raise AttributeError(f"module 'arlab' has no attribute {name!r}")


__all__ = ["budget", "by_budget", "device", "train_yourself", "bits_per_dim", "nats_per_dim", "nats_to_bits",
           *_REFERENCE]
