"""PixelSNAIL: gated causal convolutions interleaved with causal self-attention.

Convolutions see a neighbourhood; attention over the raster sequence reaches every earlier
pixel in one step. The attention's keys and values at position j are computed from the input
at j itself (with the features and a position code), and a strict mask (j < i) keeps position i
from seeing its own input; the query at i comes from features that already exclude x_i. So at
every pixel the model sees exactly the earlier pixels: no blind spot, whatever the depth.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from arlab.models.base import ARModel, raster_ranks
from arlab.models.gated_pixelcnn import GatedPixelCNNLayer
from arlab.models.pixelcnn import build_head, check_image_shape, check_input, split_colours


def causal_attention_mask(n: int, include_self: bool,
                          device: torch.device | None = None) -> Tensor:
    """``BoolTensor[n, n]``: True where query i may attend to key j (j <= i, or j < i)."""
    return torch.ones(n, n, dtype=torch.bool, device=device).tril(0 if include_self else -1)


class CausalSelfAttention(nn.Module):
    """Multi-head causal attention on ``[N, L, dim]`` sequences.

    ``qkv`` (dim -> 3·dim) gives q, k, v in that order, heads contiguous (head h uses features
    ``h*dim/heads .. (h+1)*dim/heads``); weights softmax(q·k / sqrt(dim/heads)) over the keys
    that :func:`causal_attention_mask` allows; ``proj`` (dim -> dim) mixes the heads. A query
    with no allowed key (row 0 when ``include_self=False``) gets a zero vector before ``proj``.

    ``forward(x, kv=None)``: queries from ``x``; keys and values from ``kv`` when given (same
    shape as ``x``), else from ``x``.
    """

    def __init__(self, dim: int, heads: int, include_self: bool = True):
        super().__init__()
        if dim % heads != 0:
            raise ValueError(f"dim={dim} must be divisible by heads={heads}.")
        self.dim, self.heads, self.include_self = dim, heads, include_self
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, kv: Tensor | None = None) -> Tensor:
        n, length, dim = x.shape
        if kv is None:
            q, k, v = self.qkv(x).chunk(3, dim=-1)
        else:
            if kv.shape != x.shape:
                raise ValueError(f"kv must have the shape of x {list(x.shape)}, "
                                 f"got {list(kv.shape)}.")
            q = F.linear(x, self.qkv.weight[:dim], self.qkv.bias[:dim])
            k, v = F.linear(kv, self.qkv.weight[dim:], self.qkv.bias[dim:]).chunk(2, dim=-1)
        d = dim // self.heads

        def split(t: Tensor) -> Tensor:  # [N, L, dim] -> [N, heads, L, d]
            return t.view(n, length, self.heads, d).transpose(1, 2)

        q, k, v = split(q), split(k), split(v)
        if self.include_self:
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            # j < i is j <= i on keys shifted one step: query i (i >= 1) against keys 0..L-2
            # with the usual causal mask. Query 0 has no key: its output is a zero vector.
            out = torch.cat([torch.zeros_like(q[:, :, :1]), F.scaled_dot_product_attention(
                q[:, :, 1:], k[:, :, :-1], v[:, :, :-1], is_causal=True)], dim=2)
        out = out.transpose(1, 2).reshape(n, length, dim)
        return self.proj(out)


def _positions(height: int, width: int, like: Tensor) -> Tensor:
    """Fixed position code ``[1, 2, H, W]``: row and column scaled to [-1, 1]."""
    def axis(n: int) -> Tensor:
        if n == 1:
            return torch.zeros(1, dtype=like.dtype, device=like.device)
        return torch.linspace(-1.0, 1.0, n, dtype=like.dtype, device=like.device)

    rows, cols = torch.meshgrid(axis(height), axis(width), indexing="ij")
    return torch.stack([rows, cols])[None]


class _AttentionBlock(nn.Module):
    """h + attention(query from [h, pos] at i; keys/values from [x, h, pos] at j < i)."""

    def __init__(self, in_channels: int, channels: int, heads: int):
        super().__init__()
        self.query = nn.Conv2d(channels + 2, channels, 1)
        self.key_value = nn.Conv2d(in_channels + channels + 2, channels, 1)
        self.attention = CausalSelfAttention(channels, heads, include_self=False)

    def forward(self, x: Tensor, h: Tensor, pos: Tensor) -> Tensor:
        n, ch, height, width = h.shape
        pos = pos.expand(n, -1, -1, -1)
        q = self.query(torch.cat([h, pos], 1)).flatten(2).transpose(1, 2)        # [N, L, ch]
        kv = self.key_value(torch.cat([x, h, pos], 1)).flatten(2).transpose(1, 2)
        a = self.attention(q, kv).transpose(1, 2).reshape(n, ch, height, width)
        return h + a


class PixelSNAIL(ARModel):
    """PixelSNAIL on images ``(C, H, W)``: ``forward(x, cond) -> [N, P, C, H, W]``.

    ``blocks`` times: ``conv_layers`` gated causal layers (:class:`GatedPixelCNNLayer`, the very
    first of type A), then causal attention over the raster sequence whose keys and values
    include the input at each earlier position. The channels of a pixel share rank ``i*W + j``.
    A learned class bias (``num_classes``) enters every gated layer.
    """

    def __init__(self, data_shape: tuple[int, int, int], levels: int, *, channels: int = 16,
                 blocks: int = 2, heads: int = 2, kernel_size: int = 3, conv_layers: int = 2,
                 head: str = "categorical", num_mixtures: int = 3,
                 num_classes: int | None = None):
        c, _, _ = check_image_shape(data_shape, "PixelSNAIL")
        super().__init__(data_shape, levels, head=build_head(head, levels, num_mixtures),
                         num_classes=num_classes)
        if blocks < 1 or conv_layers < 1:
            raise ValueError("PixelSNAIL needs blocks >= 1 and conv_layers >= 1.")
        self.embed = nn.Conv2d(c, channels, 1)
        self.convs = nn.ModuleList(
            nn.ModuleList(GatedPixelCNNLayer(channels, kernel_size, first=b == 0 and k == 0)
                          for k in range(conv_layers))
            for b in range(blocks))
        self.attention = nn.ModuleList(_AttentionBlock(c, channels, heads)
                                       for _ in range(blocks))
        self.out_hidden = nn.Conv2d(channels, channels, 1)
        self.out = nn.Conv2d(channels, c * self.head.num_params, 1)
        self.class_bias = (nn.ModuleList(nn.Embedding(num_classes, 2 * channels)
                                         for _ in range(blocks * conv_layers))
                           if num_classes is not None else None)

    def order(self) -> Tensor:
        return raster_ranks(self.data_shape, shared_channels=True)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        check_input(x, self.data_shape)
        cond = self.check_cond(cond, x.shape[0])
        xs = self.scale_input(x)
        pos = _positions(xs.shape[2], xs.shape[3], xs)
        v = h = self.embed(xs)
        k = 0
        for convs, attention in zip(self.convs, self.attention):
            for layer in convs:
                bias = self.class_bias[k](cond) if cond is not None else None
                v, h = layer(v, h, bias)
                k += 1
            h = attention(xs, h, pos)
        z = self.out_hidden(F.relu(h))
        return split_colours(self.out(F.relu(z)), self.data_shape[0])
