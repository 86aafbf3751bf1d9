"""Two-stage image models: a summary first, then the image given the summary.

``grey_of(colour)`` is the summary used in notebook 11 (the rounded mean of R, G and B, a
deterministic function of the colour image), and :class:`GreyConditionedPixelCNN` is the second
stage, p(colour | grey): a PixelCNN over the colour image (raster order, R -> G -> B inside a
pixel) that also reads the **whole** grey image through an unmasked convolution, the future
included. Because grey is a function of colour, ``p(grey) * p(colour | grey)`` scores the pair
(grey(x), x); its NLL is an upper bound on the NLL of the colour image x under the two-stage
model (the marginal over grey adds the mass of the other greys, which can only help).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from arlab.models.base import ARModel
from arlab.models.pixelcnn import MaskedConv2d


def grey_of(colour: Tensor) -> Tensor:
    """``[N, 3, H, W]`` levels -> ``[N, 1, H, W]`` levels: the rounded mean of the channels."""
    return colour.float().mean(1, keepdim=True).round().long()


class GreyConditionedPixelCNN(ARModel):
    """p(colour | grey) for ``data_shape = (3, H, W)`` and ``levels`` levels per channel.

    ``forward(x, cond)``: ``x`` colour levels ``[N, 3, H, W]``, ``cond`` grey levels
    ``[N, 1, H, W]`` -> logits ``[N, levels, 3, H, W]``. Output (i, j, c) depends on the colour
    values before it in raster/RGB order and on every grey pixel within the reach of the
    unmasked convolutions.
    """

    def __init__(self, data_shape: tuple[int, int, int], levels: int, *, channels: int = 30,
                 layers: int = 2, grey_levels: int | None = None):
        super().__init__(data_shape, levels)
        c = self.data_shape[0]
        if c != 3 or channels % 3:
            raise ValueError("colour images (3 channels) and a width divisible by 3 are needed, "
                             f"got {c} channels and width {channels}.")
        self.grey_levels = int(grey_levels or levels)
        self.first = MaskedConv2d(3, channels, 5, "A", color_groups=3)
        self.grey_in = nn.Conv2d(1, channels, 5, padding=2)          # unmasked: sees all grey
        self.hidden = nn.ModuleList(MaskedConv2d(channels, channels, 3, "B", color_groups=3)
                                    for _ in range(layers))
        self.grey_hidden = nn.ModuleList(nn.Conv2d(channels, channels, 3, padding=1)
                                         for _ in range(layers))
        self.out = MaskedConv2d(channels, 3 * self.levels, 1, "B", color_groups=3)

    def check_cond(self, cond: Tensor | None, n: int) -> Tensor | None:
        if cond is None:
            raise ValueError("GreyConditionedPixelCNN needs the grey image as cond [N, 1, H, W].")
        cond = torch.as_tensor(cond, device=self.param_device).long()
        if cond.shape[0] == 1 and n > 1:
            cond = cond.expand(n, *cond.shape[1:])
        if tuple(cond.shape[1:]) != (1, *self.data_shape[1:]) or cond.shape[0] != n:
            raise ValueError(f"cond must be grey levels [{n}, 1, H, W], got {tuple(cond.shape)}.")
        return cond

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        cond = self.check_cond(cond, x.shape[0])
        grey = cond.to(self.param_dtype) * (2.0 / max(self.grey_levels - 1, 1)) - 1.0
        g = F.relu(self.grey_in(grey))
        h = F.relu(self.first(self.scale_input(x)) + g)
        for conv, grey_conv in zip(self.hidden, self.grey_hidden):
            g = F.relu(grey_conv(g))
            h = F.relu(conv(h) + g)
        n, _, height, width = x.shape
        return self.out(h).view(n, 3, self.levels, height, width).transpose(1, 2)
