"""Two peers for the quality-at-equal-time table, written from the published Berkeley
CS294-158 homework 1 (deep unsupervised learning) rather than from the course's code, so that
a mistake shared with the course cannot hide in the comparison.

- ``PeerPixelCNN``, as the homework recommends: a 7x7 type-A masked convolution, five 7x7
  type-B, two 1x1 type-B, ReLU in between, 64 filters, input scaled to [-1, 1], trained with
  Adam at learning rate 1e-3 and batch 128.
- ``PeerMADE``, as its solution configures it for binary images: the flattened image as
  input, two hidden layers of 512 units, two logits per pixel, raster order, Adam 1e-3,
  batch 128.

Both speak the course's model interface (``forward`` gives ``[N, 2, *data_shape]`` logits), so
the one training loop trains them and the one dependence engine checks them.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from arlab.models.base import ARModel

# how the homework trains them: Adam at 1e-3 and batch 128, no gradient clipping
TRAINING = dict(batch_size=128, lr=1e-3, clip_grad=None)


def _causal_taps(k: int, centre: bool) -> Tensor:
    """A ``k x k`` 0/1 kernel mask for one channel: the rows above, the taps to the left on
    the centre row, and the centre itself when ``centre`` (type B)."""
    taps = torch.zeros(k, k)
    taps[: k // 2] = 1
    taps[k // 2, : k // 2 + int(centre)] = 1
    return taps


class _MaskedConv(nn.Conv2d):
    def __init__(self, c_in: int, c_out: int, k: int, type_a: bool):
        super().__init__(c_in, c_out, k, padding=k // 2)
        self.register_buffer("taps", _causal_taps(k, centre=not type_a))

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight * self.taps, self.bias, padding=self.padding)


class PeerPixelCNN(ARModel):
    """The homework's PixelCNN for one-channel images."""

    def __init__(self, data_shape, levels: int = 2, filters: int = 64):
        super().__init__(data_shape, levels)
        if len(self.data_shape) != 3 or self.data_shape[0] != 1:
            raise ValueError(f"PeerPixelCNN models one-channel images, got {data_shape}.")
        convs = [_MaskedConv(1, filters, 7, type_a=True)]
        convs += [_MaskedConv(filters, filters, 7, type_a=False) for _ in range(5)]
        convs += [_MaskedConv(filters, filters, 1, type_a=False),
                  _MaskedConv(filters, levels, 1, type_a=False)]
        self.convs = nn.ModuleList(convs)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        h = self.scale_input(x)
        for i, conv in enumerate(self.convs):
            h = conv(h if i == 0 else F.relu(h))
        return h.unsqueeze(2)   # [N, levels, 1, H, W]


class PeerMADE(ARModel):
    """The homework solution's MADE: masked linear layers over the flattened image."""

    def __init__(self, data_shape, levels: int = 2, hidden=(512, 512), seed: int = 0):
        super().__init__(data_shape, levels)
        d = self.num_dims
        g = torch.Generator().manual_seed(seed)
        # input i has degree i+1; a hidden unit of degree m sees the inputs of degree <= m;
        # the output of input i sees hidden units of degree < i+1
        degrees = [torch.arange(1, d + 1)]
        degrees += [torch.randint(1, max(d, 2), (h,), generator=g) for h in hidden]
        sizes = [d, *hidden]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes, sizes[1:]))
        self.out = nn.Linear(sizes[-1], d * levels)
        for i, layer in enumerate(self.layers):
            self.register_buffer(f"mask{i}", (degrees[i + 1][:, None] >= degrees[i][None]).float())
        out_degree = torch.arange(1, d + 1).repeat_interleave(levels)
        self.register_buffer("mask_out", (out_degree[:, None] > degrees[-1][None]).float())

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        n = x.shape[0]
        h = x.reshape(n, -1).to(self.param_dtype)
        for i, layer in enumerate(self.layers):
            h = F.relu(F.linear(h, layer.weight * getattr(self, f"mask{i}"), layer.bias))
        logits = F.linear(h, self.out.weight * self.mask_out, self.out.bias)
        return logits.view(n, self.num_dims, self.levels).transpose(1, 2).reshape(
            n, self.levels, *self.data_shape)


PEERS = {"peer_made": PeerMADE, "peer_pixelcnn": PeerPixelCNN}


def build_peer(name: str, data_shape, levels: int, seed: int = 0) -> ARModel:
    torch.manual_seed(seed)
    return PEERS[name](data_shape, levels)
