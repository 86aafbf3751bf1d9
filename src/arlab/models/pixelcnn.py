"""PixelCNN: masked convolutions over images, raster order, optional colour ordering.

A mask zeroes every kernel tap that would let a pixel see itself or a later pixel. Type 'A'
(first layer) also hides the centre tap; type 'B' (later layers) keeps it, because a hidden
feature at (i, j) already excludes the input at (i, j). With colour groups the centre tap is
split further so that R is generated before G before B inside a pixel.

The stacked masks leave a *blind spot*: pixels up and to the right that no depth reaches.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from arlab.models.base import ARModel, CategoricalHead, raster_ranks


def pixelcnn_mask(kernel_size: int, mask_type: str, in_channels: int, out_channels: int,
                  color_groups: int = 1) -> Tensor:
    """The 0/1 mask of a PixelCNN convolution, ``Tensor[out_channels, in_channels, k, k]``.

    Rows above the centre are ones, the centre row is ones left of the centre, everything after
    the centre is zero. At the centre tap, output group g sees input groups < g (type 'A') or
    <= g (type 'B'); channel c belongs to group ``c // (channels // color_groups)``.
    """
    if mask_type not in ("A", "B"):
        raise ValueError(f"mask_type must be 'A' (excludes the centre) or 'B' (includes it), "
                         f"got {mask_type!r}.")
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be odd and positive so the kernel has a centre, "
                         f"got {kernel_size}.")
    for name, n in (("in_channels", in_channels), ("out_channels", out_channels)):
        if n % color_groups != 0:
            raise ValueError(f"{name}={n} is not divisible by color_groups={color_groups}; "
                             "use a multiple of the number of colour channels.")
    k, c = kernel_size, kernel_size // 2
    mask = torch.zeros(out_channels, in_channels, k, k)
    mask[:, :, :c, :] = 1.0          # rows above the centre
    mask[:, :, c, :c] = 1.0          # left of the centre in the centre row
    out_group = torch.arange(out_channels) // (out_channels // color_groups)
    in_group = torch.arange(in_channels) // (in_channels // color_groups)
    if mask_type == "A":
        centre = out_group[:, None] > in_group[None, :]
    else:
        centre = out_group[:, None] >= in_group[None, :]
    mask[:, :, c, c] = centre.float()
    return mask


class MaskedConv2d(nn.Conv2d):
    """A square convolution whose weight is multiplied by :func:`pixelcnn_mask` in forward.

    ``[N, in_ch, H, W] -> [N, out_ch, H, W]`` (padding ``kernel_size // 2``); ``weight`` itself is
    never edited, so the masked taps simply receive zero gradient.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, mask_type: str,
                 color_groups: int = 1):
        super().__init__(in_ch, out_ch, kernel_size, padding=kernel_size // 2)
        self.register_buffer("mask", pixelcnn_mask(kernel_size, mask_type, in_ch, out_ch,
                                                   color_groups))

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


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
    if tuple(x.shape[1:]) != tuple(data_shape):
        raise ValueError(f"expected input [N, {', '.join(map(str, data_shape))}], "
                         f"got {list(x.shape)}.")


def split_colours(out: Tensor, channels: int) -> Tensor:
    """``[N, C*P, H, W]`` grouped by colour (all P of channel 0 first) -> ``[N, P, C, H, W]``."""
    n, cp, h, w = out.shape
    return out.view(n, channels, cp // channels, h, w).transpose(1, 2)


class _ResidualBlock(nn.Module):
    """x + 1x1(ReLU(3x3(ReLU(1x1(ReLU(x)))) + class bias)), every conv type B."""

    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.reduce = MaskedConv2d(channels, channels, 1, "B", groups)
        self.conv = MaskedConv2d(channels, channels, 3, "B", groups)
        self.expand = MaskedConv2d(channels, channels, 1, "B", groups)

    def forward(self, x: Tensor, bias: Tensor | None = None) -> Tensor:
        z = self.conv(F.relu(self.reduce(F.relu(x))))
        if bias is not None:
            z = z + bias
        return x + self.expand(F.relu(z))


class PixelCNN(ARModel):
    """PixelCNN on images ``(C, H, W)``: ``forward(x, cond) -> [N, P, C, H, W]``.

    A type-A ``kernel_size`` convolution, ``layers`` residual blocks of type-B convolutions and a
    1x1 type-B output stack. ``color="autoregressive"`` orders R -> G -> B inside a pixel
    (rank ``(i*W + j)*C + c``; hidden channels are rounded up to a multiple of C);
    ``"independent"`` gives all channels of a pixel one rank ``i*W + j``. ``skip=True`` sums a
    1x1 projection of every block's output and feeds that sum to the output stack. With
    ``num_classes`` a learned per-class bias is added to every layer's activations.
    """

    def __init__(self, data_shape: tuple[int, int, int], levels: int, *, channels: int = 16,
                 layers: int = 2, kernel_size: int = 5, color: str = "autoregressive",
                 skip: bool = False, head: str = "categorical", num_mixtures: int = 3,
                 num_classes: int | None = None):
        c, _, _ = check_image_shape(data_shape, "PixelCNN")
        super().__init__(data_shape, levels, head=build_head(head, levels, num_mixtures),
                         num_classes=num_classes)
        if color not in ("autoregressive", "independent"):
            raise ValueError(f"color must be 'autoregressive' or 'independent', got {color!r}.")
        self.color = color
        self.skip = skip
        groups = c if color == "autoregressive" else 1
        hidden = math.ceil(channels / groups) * groups
        p = self.head.num_params
        self.first = MaskedConv2d(c, hidden, kernel_size, "A", groups)
        self.blocks = nn.ModuleList(_ResidualBlock(hidden, groups) for _ in range(layers))
        self.skips = nn.ModuleList(MaskedConv2d(hidden, hidden, 1, "B", groups)
                                   for _ in range(layers if skip else 0))
        self.out_hidden = MaskedConv2d(hidden, hidden, 1, "B", groups)
        self.out = MaskedConv2d(hidden, c * p, 1, "B", groups)
        # one class bias per layer: the first conv, each block, the output hidden layer;
        # an embedding row is one-hot(class) times a matrix
        self.class_bias = (nn.ModuleList(nn.Embedding(num_classes, hidden)
                                         for _ in range(layers + 2))
                           if num_classes is not None else None)

    def order(self) -> Tensor:
        return raster_ranks(self.data_shape, shared_channels=self.color == "independent")

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        check_input(x, self.data_shape)
        cond = self.check_cond(cond, x.shape[0])
        biases = ([e(cond)[:, :, None, None] for e in self.class_bias]
                  if cond is not None else [None] * (len(self.blocks) + 2))
        h = self.first(self.scale_input(x))
        if biases[0] is not None:
            h = h + biases[0]
        total = None
        for k, block in enumerate(self.blocks):
            h = block(h, biases[k + 1])
            if self.skip:
                s = self.skips[k](h)
                total = s if total is None else total + s
        z = self.out_hidden(F.relu(total if total is not None else h))
        if biases[-1] is not None:
            z = z + biases[-1]
        out = self.out(F.relu(z))
        return split_colours(out, self.data_shape[0])
