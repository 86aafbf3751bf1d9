"""The shared pieces of the image models: masked convolutions, causal attention, shifts and
position codes. Each piece is causal on its own terms, stated in its docstring; the models
compose them and the zoo tests prove the result.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# -- masked convolutions -----------------------------------------------------------------


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


# -- shifts ------------------------------------------------------------------------------


def shift_down(x: Tensor, rows: int = 1) -> Tensor:
    """``[N, C, H, W]`` moved down by ``rows`` (zeros enter at the top): row i gets row i-rows."""
    return F.pad(x, (0, 0, rows, 0))[:, :, :x.shape[2]]


def shift_sequence(x: Tensor, steps: int = 1) -> Tensor:
    """``[N, L, D]`` moved later by ``steps`` (zeros enter first): position t gets t-steps."""
    return F.pad(x, (0, 0, steps, 0))[:, :x.shape[1]]


# -- causal attention --------------------------------------------------------------------


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
        q, k, v = (split_heads(t, self.heads) for t in (q, k, v))
        if self.include_self:
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            # j < i is j <= i on keys shifted one step: query i (i >= 1) against keys 0..L-2
            # with the usual causal mask. Query 0 has no key: its output is a zero vector.
            out = torch.cat([torch.zeros_like(q[:, :, :1]), F.scaled_dot_product_attention(
                q[:, :, 1:], k[:, :, :-1], v[:, :, :-1], is_causal=True)], dim=2)
        return self.proj(merge_heads(out))


def split_heads(t: Tensor, heads: int) -> Tensor:
    """``[N, L, dim]`` -> ``[N, heads, L, dim/heads]`` (head h: features h*d .. (h+1)*d)."""
    n, length, dim = t.shape
    return t.view(n, length, heads, dim // heads).transpose(1, 2)


def merge_heads(t: Tensor) -> Tensor:
    """``[N, heads, L, d]`` -> ``[N, L, heads*d]``, the inverse of :func:`split_heads`."""
    n, heads, length, d = t.shape
    return t.transpose(1, 2).reshape(n, length, heads * d)


# -- position codes ----------------------------------------------------------------------


def grid_positions(height: int, width: int, like: Tensor) -> Tensor:
    """Fixed position code ``[1, 2, H, W]``: row and column scaled to [-1, 1] (0 along a side
    of length 1), in ``like``'s dtype and device."""
    def axis(n: int) -> Tensor:
        if n == 1:
            return torch.zeros(1, dtype=like.dtype, device=like.device)
        return torch.linspace(-1.0, 1.0, n, dtype=like.dtype, device=like.device)

    rows, cols = torch.meshgrid(axis(height), axis(width), indexing="ij")
    return torch.stack([rows, cols])[None]


def sinusoidal_code(positions: Tensor, dim: int) -> Tensor:
    """``positions [L]`` (integers) -> ``[L, dim]``: sines and cosines at geometric
    frequencies 1 .. 1/10000, the fixed code of the original Transformer (``dim`` even)."""
    if dim % 2 != 0:
        raise ValueError(f"a sinusoidal code needs an even dim, got {dim}.")
    freq = torch.exp(-math.log(10000.0) * torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    angle = positions.double()[:, None] * freq[None]
    return torch.cat([angle.sin(), angle.cos()], dim=-1)


class PixelPositions(nn.Module):
    """The position code of every element of a raster sequence over ``(C, H, W)``:
    ``forward() -> [L, dim]`` with ``L = C*H*W`` in generation order (channels inside a pixel).

    The code is a sum of a row, a column and a channel part, so a model learns how far apart
    two pixels are in 2-D, not only in the sequence. ``kind="learned"``: three embeddings;
    ``"sinusoidal"``: fixed sines and cosines of each index (none to learn).
    """

    def __init__(self, image: tuple[int, int, int], dim: int, kind: str = "learned"):
        super().__init__()
        if kind not in ("learned", "sinusoidal"):
            raise ValueError(f"kind must be 'learned' or 'sinusoidal', got {kind!r}.")
        c, h, w = image
        self.kind = kind
        length = c * h * w
        index = torch.arange(length)
        self.register_buffer("row", index // c // w, persistent=False)
        self.register_buffer("col", index // c % w, persistent=False)
        self.register_buffer("chan", index % c, persistent=False)
        if kind == "learned":
            self.rows, self.cols, self.chans = (nn.Embedding(n, dim) for n in (h, w, c))
            for e in (self.rows, self.cols, self.chans):
                nn.init.normal_(e.weight, std=0.02)
        else:
            code = sum(sinusoidal_code(i, dim) for i in (self.row, self.col, self.chan))
            self.register_buffer("code", code.float(), persistent=False)

    def forward(self) -> Tensor:
        if self.kind == "learned":
            return self.rows(self.row) + self.cols(self.col) + self.chans(self.chan)
        return self.code
