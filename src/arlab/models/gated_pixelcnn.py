"""Gated PixelCNN: a vertical and a horizontal stack that together have no blind spot.

The vertical stack ``v`` at row i sees a box of rows <= i (any column within reach, the
current row included). It feeds the horizontal stack only after a shift down by one row, so
``h`` at row i receives ``v`` from rows < i. The horizontal stack ``h`` looks left along its own
row. Together they cover every earlier pixel within reach, with no gap to the upper right.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from arlab.models.base import ImageModel, raster_ranks
from arlab.models.layers import shift_down


def _gate(z: Tensor) -> Tensor:
    a, b = z.chunk(2, dim=1)
    return torch.tanh(a) * torch.sigmoid(b)


class GatedPixelCNNLayer(nn.Module):
    """One gated layer: ``forward(v, h) -> (v, h)``, all ``[N, channels, H, W]``.

    Vertical: a ``(k//2 + 1) x k`` convolution over rows i-k//2..i and columns j-k//2..j+k//2.
    Horizontal: a ``1 x (k//2 + 1)`` convolution over columns j-k//2..j of row i; the ``first``
    layer masks the current-pixel tap (type A) and has no residual, since its ``h`` is still the
    image itself. The vertical pre-activations, shifted down one row, enter the horizontal stack
    through a 1x1 convolution; ``h`` never feeds ``v``. Both use gates tanh(a)·sigmoid(b).

    ``cond_bias`` (optional, ``[N, 2*channels]``) is added to both stacks' pre-activations.
    """

    def __init__(self, channels: int, kernel_size: int, first: bool):
        super().__init__()
        if kernel_size < 3 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and at least 3, got {kernel_size}.")
        self.channels = channels
        self.first = first
        self.reach = kernel_size // 2
        self.vertical = nn.Conv2d(channels, 2 * channels, (self.reach + 1, kernel_size))
        self.horizontal = nn.Conv2d(channels, 2 * channels, (1, self.reach + 1))
        self.v_to_h = nn.Conv2d(2 * channels, 2 * channels, 1)
        self.h_out = nn.Conv2d(channels, channels, 1)
        h_mask = torch.ones(1, 1, 1, self.reach + 1)
        if first:
            h_mask[..., -1] = 0.0  # the last tap is the current pixel
        self.register_buffer("h_mask", h_mask)

    def forward(self, v: Tensor, h: Tensor, cond_bias: Tensor | None = None
                ) -> tuple[Tensor, Tensor]:
        r = self.reach
        v_pre = self.vertical(F.pad(v, (r, r, r, 0)))                 # rows i-r..i
        v_down = shift_down(v_pre)                                    # row i gets row i-1
        h_pre = F.conv2d(F.pad(h, (r, 0, 0, 0)), self.horizontal.weight * self.h_mask,
                         self.horizontal.bias) + self.v_to_h(v_down)
        if cond_bias is not None:
            cond_bias = cond_bias.reshape(cond_bias.shape[0], -1, 1, 1)
            v_pre, h_pre = v_pre + cond_bias, h_pre + cond_bias
        h_new = self.h_out(_gate(h_pre))
        if not self.first:
            h_new = h_new + h
        return _gate(v_pre), h_new


class GatedPixelCNN(ImageModel):
    """Gated PixelCNN on images ``(C, H, W)``: ``forward(x, cond) -> [N, P, C, H, W]``.

    ``v = h = `` a 1x1 embedding of the scaled image, ``layers`` :class:`GatedPixelCNNLayer`
    (the first of type A), then ReLU and a 1x1 convolution to ``C*P`` channels grouped by colour.
    The channels of a pixel are generated together: rank ``i*W + j`` for every channel.
    """

    def __init__(self, data_shape: tuple[int, int, int], levels: int, *, channels: int = 16,
                 layers: int = 3, kernel_size: int = 3, head: str = "categorical",
                 num_mixtures: int = 3, num_classes: int | None = None):
        super().__init__(data_shape, levels, head=head, num_mixtures=num_mixtures,
                         num_classes=num_classes)
        c = self.data_shape[0]
        if layers < 1:
            raise ValueError("GatedPixelCNN needs layers >= 1 (the first layer hides the "
                             "current pixel).")
        self.embed = nn.Conv2d(c, channels, 1)
        self.layers = nn.ModuleList(GatedPixelCNNLayer(channels, kernel_size, first=k == 0)
                                    for k in range(layers))
        self.out = nn.Conv2d(channels, c * self.head.num_params, 1)
        self.class_bias = (nn.ModuleList(nn.Embedding(num_classes, 2 * channels)
                                         for _ in range(layers))
                           if num_classes is not None else None)

    def order(self) -> Tensor:
        return raster_ranks(self.data_shape, shared_channels=True)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        self.check_input(x)
        cond = self.check_cond(cond, x.shape[0])
        v = h = self.embed(self.scale_input(x))
        for k, layer in enumerate(self.layers):
            bias = self.class_bias[k](cond) if cond is not None else None
            v, h = layer(v, h, bias)
        return self.to_params(self.out(F.relu(h)))
