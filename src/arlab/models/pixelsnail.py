"""PixelSNAIL: gated causal convolutions interleaved with causal self-attention.

Convolutions see a neighbourhood; attention over the raster sequence reaches every earlier
pixel in one step. The attention's keys and values at position j are computed from the input
at j itself (with the features and a position code), and a strict mask (j < i) keeps position i
from seeing its own input; the query at i comes from features that already exclude x_i. So at
every pixel the model sees exactly the earlier pixels: no blind spot, whatever the depth.

``attention="rows"`` attends at row resolution instead (one key per earlier row, plus the
earlier pixels of the own row): the same context for far fewer scores; how it trades time
against quality is measured in ``benchmarks/RESULTS.md`` (section pixelsnail).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from arlab.models.base import ImageModel, raster_ranks
from arlab.models.gated_pixelcnn import GatedPixelCNNLayer
# the attention pieces live in layers.py; imported from here by the homework and notebooks
from arlab.models.layers import (CausalSelfAttention, causal_attention_mask,  # noqa: F401
                                 grid_positions, merge_heads, split_heads)


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


class _RowAttentionBlock(nn.Module):
    """h + attention at row resolution: the query at (r, c), from [h, pos] there, attends to one
    summary per earlier row r' < r and to the pixels (r, c') with c' < c of its own row.

    Every pixel of row r' comes before every pixel of row r, so a row's summary (a key and a
    value, linear in the whole row of [x, h, pos]) is safe for all later rows. A query sees
    H + W keys instead of up to H*W: the cost per image falls from L^2 to L*(H + W) scores,
    while the context is still every earlier pixel (rows through their summaries).
    Works channels-last (``[N, H, W, ch]``), where every 1x1 map is one matrix product.
    """

    def __init__(self, in_channels: int, channels: int, heads: int, width: int):
        super().__init__()
        if channels % heads != 0:
            raise ValueError(f"channels={channels} must be divisible by heads={heads}.")
        self.heads = heads
        features = in_channels + channels + 2                  # [x, h, pos] at one pixel
        self.query = nn.Linear(channels + 2, channels)
        self.key_value = nn.Linear(features, 2 * channels)    # of one pixel of the own row
        self.row_key_value = nn.Linear(width * features, 2 * channels)  # of a whole row
        self.proj = nn.Linear(channels, channels)

    @staticmethod
    def allowed(height: int, width: int, device=None) -> Tensor:
        """``BoolTensor[H, W, H + W]``: may query (r, c) use row summary r' (first H keys),
        or pixel (r, c') of its own row (last W keys)? r' < r and c' < c."""
        rows = torch.arange(height, device=device)
        cols = torch.arange(width, device=device)
        earlier_row = (rows[None, :] < rows[:, None])[:, None, :].expand(height, width, height)
        earlier_col = (cols[None, :] < cols[:, None])[None].expand(height, width, width)
        return torch.cat([earlier_row, earlier_col], dim=-1)

    def forward(self, x: Tensor, h: Tensor, pos: Tensor) -> Tensor:
        n, ch, height, width = h.shape
        last = lambda t: t.permute(0, 2, 3, 1)                                # noqa: E731
        hp = torch.cat([last(h), last(pos).expand(n, -1, -1, -1)], dim=-1)  # [N, H, W, ch+2]
        q = self.query(hp)                                                  # [N, H, W, ch]
        f = torch.cat([last(x), hp], dim=-1)                                # [N, H, W, F]
        rows = self.row_key_value(f.reshape(n, height, -1))                 # [N, H, 2ch]
        kv = torch.cat([rows[:, None].expand(n, height, height, 2 * ch), self.key_value(f)],
                       dim=2)                                               # [N, H, H+W, 2ch]
        k, v = kv.chunk(2, dim=-1)
        q, k, v = (split_heads(t.reshape(n * height, -1, ch), self.heads) for t in (q, k, v))
        # a large negative (not -inf) score gives the masked keys a weight of exactly 0 and
        # keeps the softmax finite for pixel (0, 0), which has no key; its output is zeroed
        allowed = self.allowed(height, width, h.device)
        bias = torch.zeros(allowed.shape, dtype=q.dtype, device=q.device).masked_fill(
            ~allowed, torch.finfo(q.dtype).min / 2)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.repeat(n, 1, 1)[:, None])
        out = merge_heads(out) * allowed.any(-1).repeat(n, 1)[..., None]    # [N*H, W, ch]
        a = self.proj(out).view(n, height, width, ch)
        return h + a.permute(0, 3, 1, 2)


class PixelSNAIL(ImageModel):
    """PixelSNAIL on images ``(C, H, W)``: ``forward(x, cond) -> [N, P, C, H, W]``.

    ``blocks`` times: ``conv_layers`` gated causal layers (:class:`GatedPixelCNNLayer`, the very
    first of type A), then causal attention whose keys and values include the input at each
    earlier position. ``conv_layers=0`` keeps only that first layer, then attention blocks. The channels of a pixel share rank ``i*W + j``. A learned class bias
    (``num_classes``) enters every gated layer.

    ``attention="full"``: over the whole raster sequence (:class:`CausalSelfAttention`, ``L^2``
    scores per image); ``"rows"``: at row resolution (:class:`_RowAttentionBlock`, ``L*(H+W)``
    scores), the same context for a fraction of the time on long images.
    """

    def __init__(self, data_shape: tuple[int, int, int], levels: int, *, channels: int = 16,
                 blocks: int = 2, heads: int = 2, kernel_size: int = 3, conv_layers: int = 2,
                 attention: str = "full", head: str = "categorical", num_mixtures: int = 3,
                 num_classes: int | None = None):
        super().__init__(data_shape, levels, head=head, num_mixtures=num_mixtures,
                         num_classes=num_classes)
        c, _, width = self.data_shape
        if blocks < 1 or conv_layers < 0:
            raise ValueError("PixelSNAIL needs blocks >= 1 and conv_layers >= 0.")
        if attention not in ("full", "rows"):
            raise ValueError(f"attention must be 'full' or 'rows', got {attention!r}.")
        # the first block always has the type-A layer: it hides each pixel from its own query
        counts = [max(conv_layers, 1) if b == 0 else conv_layers for b in range(blocks)]
        self.embed = nn.Conv2d(c, channels, 1)
        self.convs = nn.ModuleList(
            nn.ModuleList(GatedPixelCNNLayer(channels, kernel_size, first=b == 0 and k == 0)
                          for k in range(count))
            for b, count in enumerate(counts))
        self.attention = nn.ModuleList(
            _AttentionBlock(c, channels, heads) if attention == "full"
            else _RowAttentionBlock(c, channels, heads, width) for _ in range(blocks))
        self.out_hidden = nn.Conv2d(channels, channels, 1)
        self.out = nn.Conv2d(channels, c * self.head.num_params, 1)
        self.class_bias = (nn.ModuleList(nn.Embedding(num_classes, 2 * channels)
                                         for _ in range(sum(counts)))
                           if num_classes is not None else None)

    def order(self) -> Tensor:
        return raster_ranks(self.data_shape, shared_channels=True)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        self.check_input(x)
        cond = self.check_cond(cond, x.shape[0])
        xs = self.scale_input(x)
        pos = grid_positions(xs.shape[2], xs.shape[3], xs)
        v = h = self.embed(xs)
        k = 0
        for convs, attention in zip(self.convs, self.attention):
            for layer in convs:
                bias = self.class_bias[k](cond) if cond is not None else None
                v, h = layer(v, h, bias)
                k += 1
            h = attention(xs, h, pos)
        z = self.out_hidden(F.relu(h))
        return self.to_params(self.out(F.relu(z)))
