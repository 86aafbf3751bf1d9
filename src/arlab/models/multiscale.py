"""A multiscale (subscale) PixelCNN: far fewer sampling steps than pixels.

The image is cut into ``factor**2`` interleaved sub-images: sub-image (a, b) holds the pixels
(i, j) with ``i % factor == a`` and ``j % factor == b``. Sub-image (0, 0), a low-resolution
copy of the image, is generated first, pixel by pixel, by a small PixelCNN. Every other
sub-image is then generated in ONE step, all its pixels at once, conditioned on every pixel of
the sub-images before it (offsets in raster order). With factor 2 a 28x28 image takes
14·14 + 3 sampling steps instead of 784; with factor 4, 7·7 + 15.

The price: pixels of one sub-image are independent of each other given the earlier
sub-images, so the model is less expressive than a PixelCNN over all pixels.

How a sub-image step sees only earlier pixels: the image is multiplied by the visibility mask
of the earlier sub-images (so hidden pixels are exactly zero, and their gradient too), the
mask itself is added as input channels, and an ordinary convolutional network reads that at
low resolution (``F.pixel_unshuffle`` stacks the ``factor**2`` sub-images as channels).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from arlab.models.base import ImageModel
from arlab.models.pixelcnn import PixelCNN
from arlab.models.sampling import sample_autoregressive


class _Block(nn.Module):
    """x + 1x1(ReLU(3x3(ReLU(x)))): a plain residual block (no masks needed)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.expand = nn.Conv2d(channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.expand(F.relu(self.conv(F.relu(x))))


class SubimageNet(nn.Module):
    """The network that predicts one whole sub-image from the earlier ones.

    ``forward(inputs [N, in_ch, h, w], group, cond) -> logits [N, out_ch, h, w]`` at low
    resolution; ``group`` (the sub-image's offset index) and ``cond`` (class labels ``[N]``)
    enter as learned biases of the first layer. One call is one sampling step.
    """

    def __init__(self, in_ch: int, hidden: int, out_ch: int, layers: int, num_groups: int,
                 num_classes: int | None):
        super().__init__()
        self.first = nn.Conv2d(in_ch, hidden, 3, padding=1)
        self.group_bias = nn.Embedding(num_groups, hidden)
        self.class_bias = nn.Embedding(num_classes, hidden) if num_classes else None
        self.blocks = nn.ModuleList(_Block(hidden) for _ in range(layers))
        self.out_hidden = nn.Conv2d(hidden, hidden, 1)
        self.out = nn.Conv2d(hidden, out_ch, 1)

    def forward(self, inputs: Tensor, group: int, cond: Tensor | None = None) -> Tensor:
        h = self.first(inputs) + self.group_bias.weight[group].view(1, -1, 1, 1)
        if cond is not None:
            h = h + self.class_bias(cond)[:, :, None, None]
        for block in self.blocks:
            h = block(h)
        return self.out(F.relu(self.out_hidden(F.relu(h))))


class MultiscalePixelCNN(ImageModel):
    """Low resolution first, then the rest one sub-image per step: ``[N, K, C, H, W]`` logits.

    Args:
        data_shape: ``(C, H, W)``; H and W need not be multiples of ``factor``.
        levels: values per channel (K logits per position).
        factor: sub-sampling factor f; the low-resolution image has ``ceil(H/f) x ceil(W/f)``
            pixels and the remaining ``f**2 - 1`` sub-images take one step each (fewer when
            the image is smaller than f).
        channels, layers: width and number of residual blocks of both networks (the
            low-resolution PixelCNN and the sub-image network).
        kernel_size: the first masked convolution of the low-resolution PixelCNN.
        num_classes: class-conditional (a class bias in both networks).

    Ranks (``order()``): the low-resolution pixels in raster order, R -> G -> B inside a
    pixel (as :class:`~arlab.models.pixelcnn.PixelCNN`), then one rank per further sub-image
    shared by all its pixels and channels.
    """

    def __init__(self, data_shape: tuple[int, int, int], levels: int, *, factor: int = 2,
                 channels: int = 16, layers: int = 2, kernel_size: int = 5,
                 num_classes: int | None = None):
        super().__init__(data_shape, levels, num_classes=num_classes)
        c, h, w = self.data_shape
        if int(factor) != factor or factor < 1:
            raise ValueError(f"factor must be a positive integer (2 halves the resolution of "
                             f"the first stage), got {factor!r}.")
        self.factor = f = int(factor)
        self.low_shape = (c, math.ceil(h / f), math.ceil(w / f))
        # offsets (a, b) of the sub-images, in raster order; index 0 is the low-res image
        self.offsets = [(a, b) for a in range(f) for b in range(f)]
        # sub-images that hold at least one pixel (an image smaller than f has empty ones)
        self.groups = [g for g, (a, b) in enumerate(self.offsets) if g > 0 and a < h and b < w]
        self.base = PixelCNN(self.low_shape, levels, channels=channels, layers=layers,
                             kernel_size=kernel_size, num_classes=num_classes)
        self.upsampler = SubimageNet(in_ch=(c + 1) * f * f, hidden=channels,
                                     out_ch=c * self.levels, layers=layers, num_groups=f * f,
                                     num_classes=num_classes)
        self.register_buffer("visible", self._visibility(), persistent=False)

    # -- the ordering ------------------------------------------------------------------------
    def pixel_groups(self) -> Tensor:
        """Sub-image index of every pixel, ``LongTensor[H, W]`` (0: the low-res image;
        offset (a, b) has index ``a * factor + b``)."""
        _, h, w = self.data_shape
        i, j = torch.arange(h).view(-1, 1), torch.arange(w).view(1, -1)
        return (i % self.factor) * self.factor + (j % self.factor)

    def order(self) -> Tensor:
        c, h, w = self.data_shape
        f = self.factor
        order = torch.empty(c, h, w, dtype=torch.long)
        order[:, ::f, ::f] = self.base.order()
        first = math.prod(self.low_shape)
        for rank, g in enumerate(self.groups, start=first):
            a, b = self.offsets[g]
            order[:, a::f, b::f] = rank
        return order

    def _visibility(self) -> Tensor:
        """``[f², f², hs, ws]``: for the step of sub-image g, which pixels of every sub-image
        (channel o of the low-resolution stack) are already known and inside the image."""
        c, h, w = self.data_shape
        f = self.factor
        _, hs, ws = self.low_shape
        inside = torch.zeros(1, 1, hs * f, ws * f)
        inside[..., :h, :w] = 1.0
        inside = F.pixel_unshuffle(inside, f)[0]                   # [f², hs, ws]
        earlier = torch.arange(f * f).view(1, -1) < torch.arange(f * f).view(-1, 1)
        return earlier.float()[:, :, None, None] * inside          # [g, o, hs, ws]

    # -- the network -------------------------------------------------------------------------
    def subimage_logits(self, x: Tensor, group: int, cond: Tensor | None = None) -> Tensor:
        """Logits of every pixel of sub-image ``group`` given the earlier sub-images:
        ``[N, K, C, hs, ws]`` on the low-resolution grid (rows/columns past the image edge
        included; they are never used). ``x``: levels ``[N, C, H, W]``, long or float."""
        c, h, w = self.data_shape
        f = self.factor
        _, hs, ws = self.low_shape
        scaled = F.pad(self.scale_input(x), (0, ws * f - w, 0, hs * f - h))
        stacked = F.pixel_unshuffle(scaled, f)                      # [N, C·f², hs, ws]
        vis = self.visible[group]                                   # [f², hs, ws]
        known = stacked * vis.repeat(c, 1, 1)                       # hidden pixels are 0
        inputs = torch.cat([known, vis.expand(x.shape[0], -1, -1, -1)], dim=1)
        out = self.upsampler(inputs, group, cond)                   # [N, C·K, hs, ws]
        return out.view(x.shape[0], c, self.levels, hs, ws).transpose(1, 2)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """``x [N, C, H, W]`` levels -> logits ``[N, K, C, H, W]``."""
        self.check_input(x)
        cond = self.check_cond(cond, x.shape[0])
        c, h, w = self.data_shape
        f = self.factor
        _, hs, ws = self.low_shape
        low = self.base(x[..., ::f, ::f].contiguous(), cond)       # [N, K, C, hs, ws]
        parts = [low] + [torch.zeros_like(low)] * (f * f - 1)      # empty sub-images: unused
        for g in self.groups:
            parts[g] = self.subimage_logits(x, g, cond)
        # interleave: the sub-images become the pixels (a::f, b::f) of the full image
        stacked = torch.stack(parts, dim=3).reshape(x.shape[0], -1, hs, ws)
        full = F.pixel_shuffle(stacked, f).view(x.shape[0], self.levels, c, hs * f, ws * f)
        return full[..., :h, :w]

    # -- generation --------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n: int, cond: Tensor | None = None,
               generator: torch.Generator | None = None, fast: bool = True) -> Tensor:
        """``n`` samples ``LongTensor[n, C, H, W]``, one network call per rank.

        ``fast=True`` runs only the network a step needs: the low-resolution PixelCNN on the
        small image for its pixels, then the sub-image network once per sub-image.
        ``fast=False`` uses the generic sampler (the whole forward pass at every rank). Both
        draw the same values for the same generator state."""
        if not fast:
            return sample_autoregressive(self, n, cond=cond, generator=generator)
        was_training = self.training
        self.eval()
        try:
            cond = self.check_cond(cond, n)
            f = self.factor
            c, h, w = self.data_shape
            x = torch.zeros(n, c, h, w, dtype=torch.long, device=self.param_device)
            x[..., ::f, ::f] = sample_autoregressive(self.base, n, cond=cond,
                                                     generator=generator)
            for g in self.groups:
                a, b = self.offsets[g]
                hg, wg = len(range(a, h, f)), len(range(b, w, f))
                logits = self.subimage_logits(x, g, cond)[..., :hg, :wg]
                draw = self.head.sample(logits.movedim(1, -1).reshape(-1, self.levels),
                                        generator)
                x[..., a::f, b::f] = draw.view(n, c, hg, wg).to(x.device)
            return x
        finally:
            self.train(was_training)
