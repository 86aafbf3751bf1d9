"""A pixel Transformer: a decoder-only Transformer over the raster sequence of an image.

The image ``(C, H, W)`` is read as one sequence of ``L = C*H*W`` elements in generation order
(pixels in raster order, the channels of a pixel in turn). The input at step t is element
t-1 (a learned start vector at t = 0), plus the position code of element t and the class
embedding; causal self-attention (each step sees itself and the steps before) then never
reaches element t itself, so the output at t may predict it.

Sampling keeps every layer's keys and values (a key/value cache): step t computes one new
query, key and value per layer instead of rerunning the whole prefix.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from arlab.models.base import ImageModel, from_sequence, to_sequence
from arlab.models.layers import (CausalSelfAttention, PixelPositions, merge_heads,
                                 shift_sequence, split_heads)


class TransformerBlock(nn.Module):
    """Pre-norm block on ``[N, L, dim]``: z + attention(LN(z)), then z + MLP(LN(z))."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int = 4):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attention = CausalSelfAttention(dim, heads, include_self=True)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(),
                                 nn.Linear(mlp_ratio * dim, dim))

    def forward(self, z: Tensor) -> Tensor:
        z = z + self.attention(self.norm1(z))
        return z + self.mlp(self.norm2(z))

    def step(self, z: Tensor, cache: list[Tensor]) -> Tensor:
        """One new position ``z [N, 1, dim]`` against the cached keys and values of the earlier
        ones; ``cache`` (``[]`` at first, then ``[keys, values]``, each ``[N, heads, t, d]``)
        grows by this position."""
        att = self.attention
        q, k, v = (split_heads(t, att.heads) for t in att.qkv(self.norm1(z)).chunk(3, dim=-1))
        if cache:
            k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)
        cache[:] = [k, v]
        z = z + att.proj(merge_heads(F.scaled_dot_product_attention(q, k, v)))
        return z + self.mlp(self.norm2(z))


class PixelTransformer(ImageModel):
    """Decoder-only Transformer on images ``(C, H, W)``: ``forward(x, cond) -> [N, P, C, H, W]``.

    Args:
        dim: width of every position's features; ``heads`` must divide it.
        layers: number of :class:`TransformerBlock`.
        positions: ``"learned"`` or ``"sinusoidal"`` row + column + channel codes
            (:class:`~arlab.models.layers.PixelPositions`).
        num_classes: a learned class embedding is added at every position.
    """

    def __init__(self, data_shape: tuple[int, int, int], levels: int, *, dim: int = 32,
                 layers: int = 2, heads: int = 2, mlp_ratio: int = 4,
                 positions: str = "learned", head: str = "categorical", num_mixtures: int = 3,
                 num_classes: int | None = None):
        super().__init__(data_shape, levels, head=head, num_mixtures=num_mixtures,
                         num_classes=num_classes)
        if layers < 1:
            raise ValueError(f"PixelTransformer needs layers >= 1, got {layers}.")
        self.embed = nn.Linear(1, dim)          # a level, scaled to [-1, 1], to a vector
        self.start = nn.Parameter(torch.zeros(dim))
        self.positions = PixelPositions(self.data_shape, dim, positions)
        self.class_embed = nn.Embedding(num_classes, dim) if num_classes is not None else None
        self.blocks = nn.ModuleList(TransformerBlock(dim, heads, mlp_ratio)
                                    for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, self.head.num_params)

    def _inputs(self, x: Tensor, cond: Tensor | None) -> Tensor:
        """``x [N, *data_shape]`` -> the blocks' input ``[N, L, dim]``: element t-1 (the start
        vector at t = 0) + the position code of element t + the class embedding."""
        e = self.embed(self.scale_input(to_sequence(x, self.data_shape))[..., None])
        z = shift_sequence(e)
        z = torch.cat([self.start.expand(z.shape[0], 1, -1), z[:, 1:]], dim=1)
        z = z + self.positions()
        if cond is not None:
            z = z + self.class_embed(cond)[:, None]
        return z

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        self.check_input(x)
        cond = self.check_cond(cond, x.shape[0])
        z = self._inputs(x, cond)
        for block in self.blocks:
            z = block(z)
        return from_sequence(self.out(self.norm(z)), self.data_shape)

    @torch.no_grad()
    def cached_params(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """``forward(x, cond)`` computed one position at a time with the key/value cache, as
        sampling does (for tests and for timing): ``[N, P, *data_shape]``."""
        self.check_input(x)
        cond = self.check_cond(cond, x.shape[0])
        return self._decode(x.shape[0], cond, None, x)[1]

    @torch.no_grad()
    def sample(self, n: int, cond: Tensor | None = None,
               generator: torch.Generator | None = None, cache: bool = True) -> Tensor:
        """``n`` samples ``LongTensor[n, *data_shape]``. ``cache=True`` steps with the key/value
        cache; ``cache=False`` reruns the whole model per position (the common sampler). Both
        draw the same numbers from ``generator``, so they give the same samples."""
        if not cache:
            return super().sample(n, cond=cond, generator=generator)
        was_training = self.training
        self.eval()
        try:
            return self._decode(n, self.check_cond(cond, n), generator, None)[0]
        finally:
            self.train(was_training)

    def _decode(self, n: int, cond: Tensor | None, generator: torch.Generator | None,
                given: Tensor | None) -> tuple[Tensor, Tensor]:
        """Step through the L positions with the cache: feed ``given`` (teacher forcing) or
        draw each element. Returns the sequence as an image ``[n, *data_shape]`` and the
        parameters ``[n, P, *data_shape]``."""
        device = self.param_device
        length = self.num_dims
        seq = (to_sequence(given, self.data_shape).to(device) if given is not None
               else torch.zeros(n, length, dtype=torch.long, device=device))
        pos = self.positions()
        extra = self.class_embed(cond)[:, None] if cond is not None else 0.0
        caches: list[list[Tensor]] = [[] for _ in self.blocks]
        params = []
        for t in range(length):
            prev = (self.start.expand(n, 1, -1) if t == 0 else
                    self.embed(self.scale_input(seq[:, t - 1:t])[..., None]))
            z = prev + pos[t] + extra
            for block, cache in zip(self.blocks, caches):
                z = block.step(z, cache)
            p = self.out(self.norm(z))[:, 0]                                   # [n, P]
            params.append(p)
            if given is None:
                seq[:, t] = self.head.sample(p, generator).to(device)
        out = from_sequence(torch.stack(params, dim=1), self.data_shape)
        return from_sequence(seq, self.data_shape), out
