"""PixelCNN: masked convolutions over images, raster order, optional colour ordering.

A mask zeroes every kernel tap that would let a pixel see itself or a later pixel. Type 'A'
(first layer) also hides the centre tap; type 'B' (later layers) keeps it, because a hidden
feature at (i, j) already excludes the input at (i, j). With colour groups the centre tap is
split further so that R is generated before G before B inside a pixel.

The stacked masks leave a *blind spot*: pixels up and to the right that no depth reaches.
"""
from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor, nn

# build_head ... split_colours and the masked convolution are imported from here by other code
from arlab.models.base import (ImageModel, build_head, check_image_shape, check_input,  # noqa: F401
                               raster_ranks, split_colours)
from arlab.models.layers import MaskedConv2d, pixelcnn_mask  # noqa: F401


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


class PixelCNN(ImageModel):
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
        super().__init__(data_shape, levels, head=head, num_mixtures=num_mixtures,
                         num_classes=num_classes)
        c = self.data_shape[0]
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
        self.check_input(x)
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
        return self.to_params(out)
