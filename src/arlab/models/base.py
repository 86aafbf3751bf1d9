"""The common face of every arlab model, and the categorical output head.

A model maps data ``x`` of integer levels, shape ``[N, *data_shape]``, to distribution
parameters ``[N, P, *data_shape]`` (``forward``). Its ``head`` turns parameters into
per-position log-probabilities and samples, so that ``log_prob``, ``loss`` and ``sample`` are
written once, here. ``order()`` gives the generation rank of every position (0 first); the
causality tests prove each model respects it.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def image_layout(data_shape: tuple[int, ...]) -> tuple[int, int, int]:
    """``(C, H, W)`` for images, ``(1, H, W)`` for 2-D data, ``(1, 1, D)`` for sequences."""
    if len(data_shape) == 3:
        return tuple(data_shape)
    if len(data_shape) == 2:
        return (1, *data_shape)
    return (1, 1, math.prod(data_shape))


def raster_ranks(data_shape: tuple[int, ...], shared_channels: bool = False) -> Tensor:
    """Generation ranks ``LongTensor[*data_shape]``: pixels in raster order, and inside a pixel
    the channels R, G, B in turn — or all at once (one rank) with ``shared_channels``."""
    c, h, w = image_layout(data_shape)
    pixel = torch.arange(h * w).view(1, h, w)
    ranks = pixel.expand(c, h, w).clone() if shared_channels else pixel * c + torch.arange(c).view(c, 1, 1)
    return ranks.reshape(data_shape)


def to_sequence(x: Tensor, data_shape: tuple[int, ...]) -> Tensor:
    """``[N, *data_shape]`` -> ``[N, L]`` in raster generation order (channels inside a pixel)."""
    c, h, w = image_layout(data_shape)
    return x.reshape(x.shape[0], c, h, w).permute(0, 2, 3, 1).reshape(x.shape[0], -1)


def from_sequence(seq: Tensor, data_shape: tuple[int, ...]) -> Tensor:
    """``[N, L, *rest]`` in raster generation order -> ``[N, *rest, *data_shape]``."""
    c, h, w = image_layout(data_shape)
    n, rest = seq.shape[0], seq.shape[2:]
    img = seq.reshape(n, h, w, c, *rest).permute(0, *range(4, 4 + len(rest)), 3, 1, 2)
    return img.reshape(n, *rest, *data_shape)


def pixel_coordinates(data_shape: tuple[int, ...], device=None,
                      dtype: torch.dtype = torch.float32) -> Tensor:
    """``[L, 2]``: (row/(H-1), column/(W-1)) of each sequence position's pixel, in generation
    order (0 along a side of length 1). Coordinates are not data, so feeding those of the
    position being predicted keeps a model causal."""
    c, h, w = image_layout(data_shape)
    pixel = torch.arange(math.prod(data_shape), device=device) // c
    rows, cols = (pixel // w).to(dtype), (pixel % w).to(dtype)
    return torch.stack([rows / max(h - 1, 1), cols / max(w - 1, 1)], dim=-1)


class CategoricalHead(nn.Module):
    """A softmax over ``levels`` values at every position: ``P = levels`` logits."""

    def __init__(self, levels: int):
        super().__init__()
        self.levels = levels
        self.num_params = levels

    def log_prob(self, params: Tensor, x: Tensor) -> Tensor:
        """``params [N, K, *dims]``, ``x [N, *dims]`` levels -> log p(x) per position ``[N, *dims]``."""
        return F.log_softmax(params, dim=1).gather(1, x.long().unsqueeze(1)).squeeze(1)

    def sample(self, params: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """``params [M, K]`` -> one level per row ``[M]``, drawn with ``generator``."""
        probs = F.softmax(params.float(), dim=-1)
        return torch.multinomial(probs, 1, generator=generator).squeeze(-1)

    def probs(self, params: Tensor) -> Tensor:
        """``params [M, K]`` -> probabilities of every level ``[M, K]`` (for plots)."""
        return F.softmax(params.float(), dim=-1)


class ARModel(nn.Module):
    """Base class: subclasses set the head and implement ``forward`` (and ``order`` if not raster).

    Args:
        data_shape: the dims of one example, e.g. ``(1,)``, ``(2,)``, ``(C, H, W)``.
        levels: number of values per position (2 for binary data).
        head: output head; a :class:`CategoricalHead` over ``levels`` when omitted.
        num_classes: number of class labels accepted as ``cond`` (None: unconditional).

    Every model records the arguments it was built with (``init_args``), so that a saved
    checkpoint can build it again (:mod:`arlab.checkpoints`).
    """

    def __new__(cls, *args, **kwargs):
        self = super().__new__(cls)
        object.__setattr__(self, "init_args", (args, dict(kwargs)))
        return self

    def __init__(self, data_shape: tuple[int, ...], levels: int, head: nn.Module | None = None,
                 num_classes: int | None = None):
        super().__init__()
        self.data_shape = tuple(int(s) for s in data_shape)
        self.levels = int(levels)
        self.head = head if head is not None else CategoricalHead(self.levels)
        self.num_classes = num_classes

    # -- the face ------------------------------------------------------------------------
    @property
    def num_dims(self) -> int:
        return math.prod(self.data_shape)

    def order(self) -> Tensor:
        """Generation rank of every position, ``LongTensor[*data_shape]``. Default: raster over
        pixels (sequences in turn), the channels of a pixel R, G, B in turn."""
        return raster_ranks(self.data_shape)

    def log_prob(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """log p(x) in nats per example, ``[N]``."""
        params = self(x, cond)
        return self.head.log_prob(params, x.long()).flatten(1).sum(1)

    def loss(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """Mean negative log-likelihood in nats per dimension (a scalar to minimise)."""
        return -self.log_prob(x, cond).mean() / self.num_dims

    def sample(self, n: int, cond: Tensor | None = None,
               generator: torch.Generator | None = None) -> Tensor:
        """``n`` samples ``LongTensor[n, *data_shape]``, one forward pass per rank of ``order()``.

        ``generator`` must live on the model's device: ``torch.Generator(device)``."""
        from arlab.models.sampling import sample_autoregressive

        return sample_autoregressive(self, n, cond=cond, generator=generator)

    # -- helpers for subclasses ---------------------------------------------------------
    @property
    def param_dtype(self) -> torch.dtype:
        p = next(self.parameters(), None)
        return p.dtype if p is not None else torch.get_default_dtype()

    @property
    def param_device(self) -> torch.device:
        p = next(self.parameters(), None)
        return p.device if p is not None else torch.device("cpu")

    def scale_input(self, x: Tensor) -> Tensor:
        """Levels 0..K-1 (long or float) -> floats in [-1, 1] in the parameters' dtype.

        Float input passes through the same map, so gradient checks can differentiate it."""
        return x.to(self.param_dtype) * (2.0 / max(self.levels - 1, 1)) - 1.0

    def check_cond(self, cond: Tensor | None, n: int) -> Tensor | None:
        """Validate ``cond`` (class indices ``[N]``) against ``num_classes``."""
        if cond is None:
            return None
        if self.num_classes is None:
            raise ValueError(f"{type(self).__name__} was built without num_classes; "
                             "pass num_classes=... to use class-conditional inputs.")
        cond = torch.as_tensor(cond, device=self.param_device).long().reshape(-1)
        if cond.numel() == 1 and n > 1:
            cond = cond.expand(n)
        if cond.shape[0] != n:
            raise ValueError(f"cond has {cond.shape[0]} labels for a batch of {n}.")
        return cond


# -- images ----------------------------------------------------------------------------------


def build_head(head: str, levels: int, num_mixtures: int) -> nn.Module:
    """The output head by name: ``"categorical"`` (softmax over levels) or ``"dlm"``
    (discretized logistic mixture with ``num_mixtures`` components)."""
    if head == "categorical":
        return CategoricalHead(levels)
    if head == "dlm":
        from arlab.models.logistic import LogisticMixtureHead  # loaded only when asked for

        return LogisticMixtureHead(levels, num_mixtures)
    raise ValueError(f"head must be 'categorical' or 'dlm', got {head!r}.")


def check_image_shape(data_shape: tuple[int, ...], model: str) -> tuple[int, int, int]:
    """``data_shape`` as ``(C, H, W)``, or a clear error for anything else."""
    if len(data_shape) != 3:
        raise ValueError(f"{model} models images: data_shape must be (C, H, W), "
                         f"got {tuple(data_shape)}.")
    return tuple(int(s) for s in data_shape)


def check_input(x: Tensor, data_shape: tuple[int, ...]) -> None:
    """Raise a clear error unless ``x`` is ``[N, *data_shape]``."""
    if tuple(x.shape[1:]) != tuple(data_shape):
        raise ValueError(f"expected input [N, {', '.join(map(str, data_shape))}], "
                         f"got {list(x.shape)}.")


def split_colours(out: Tensor, channels: int) -> Tensor:
    """``[N, C*P, H, W]`` grouped by colour (all P of channel 0 first) -> ``[N, P, C, H, W]``."""
    n, cp, h, w = out.shape
    return out.view(n, channels, cp // channels, h, w).transpose(1, 2)


class ImageModel(ARModel):
    """Base class of the image models: ``data_shape`` is ``(C, H, W)`` and the head is chosen
    by name (``"categorical"`` or ``"dlm"``, see :func:`build_head`).

    Subclasses call ``check_input(x)`` and ``check_cond(cond, n)`` first in ``forward`` and
    return ``[N, P, C, H, W]``; ``to_params`` turns a ``[N, C*P, H, W]`` output grouped by
    colour into that shape.
    """

    def __init__(self, data_shape: tuple[int, int, int], levels: int, *,
                 head: str = "categorical", num_mixtures: int = 3,
                 num_classes: int | None = None):
        check_image_shape(data_shape, type(self).__name__)
        super().__init__(data_shape, levels, head=build_head(head, levels, num_mixtures),
                         num_classes=num_classes)

    def check_input(self, x: Tensor) -> None:
        """Raise a clear error unless ``x`` is ``[N, C, H, W]``."""
        check_input(x, self.data_shape)

    def to_params(self, out: Tensor) -> Tensor:
        """``[N, C*P, H, W]`` grouped by colour -> ``[N, P, C, H, W]``."""
        return split_colours(out, self.data_shape[0])
