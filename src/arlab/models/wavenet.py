"""WaveNet (van den Oord et al., 2016) on data read as one sequence, with fast generation.

Causal convolutions shift the kernel so that output t sees only inputs up to t (or up to
t-1); dilations double the reach per layer, so the receptive field grows exponentially with
depth. Generation needs one step per position; the cached path (Paine et al., 2016) keeps,
for every layer, a queue of the past inputs its kernel still needs, so each step runs every
layer on ONE new position instead of on the whole sequence.
"""
from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from arlab.models.base import ARModel, from_sequence, pixel_coordinates, to_sequence
from arlab.models.sampling import sample_autoregressive


class CausalConv1d(nn.Module):
    """A 1-D convolution on ``[N, C, L]`` whose output t sees only the past.

    Output t sees the ``kernel_size`` taps t-(k-1)·dilation, ..., t-dilation, t; with
    ``include_current=False`` the same taps one step earlier (t-1 the latest). The sequence is
    padded with zeros on the left, so the output has length L. Parameters are exactly those of
    ``nn.Conv1d`` (``weight [out_ch, in_ch, kernel_size]``, ``bias [out_ch]``), initialised
    the same way.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, dilation: int = 1,
                 include_current: bool = True):
        super().__init__()
        if min(in_ch, out_ch, kernel_size, dilation) < 1:
            raise ValueError("in_ch, out_ch, kernel_size and dilation must all be positive; "
                             f"got {in_ch}, {out_ch}, {kernel_size}, {dilation}.")
        self.in_ch, self.out_ch = in_ch, out_ch
        self.kernel_size, self.dilation = kernel_size, dilation
        self.include_current = include_current
        self.weight = nn.Parameter(torch.empty(out_ch, in_ch, kernel_size))
        self.bias = nn.Parameter(torch.empty(out_ch))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # The same draws as nn.Conv1d, so weights initialise alike for the same seed.
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        bound = 1.0 / math.sqrt(self.in_ch * self.kernel_size)
        nn.init.uniform_(self.bias, -bound, bound)

    @property
    def history(self) -> int:
        """How many positions before the first output position the kernel reaches back."""
        return (self.kernel_size - 1) * self.dilation + (0 if self.include_current else 1)

    def forward(self, x: Tensor, past: Tensor | None = None) -> Tensor:
        """``x [N, in_ch, L]`` -> ``[N, out_ch, L]``.

        ``past [N, in_ch, history]`` holds the inputs just before ``x`` (zeros when omitted):
        cached generation passes a length-1 ``x`` and its queue of past inputs. With
        ``include_current=False`` the last position of ``x`` is never read."""
        n, c, _ = x.shape
        if past is None:
            past = x.new_zeros(n, c, self.history)
        elif tuple(past.shape) != (n, c, self.history):
            raise ValueError(f"past must have shape {(n, c, self.history)} (batch, channels, "
                             f"history), got {tuple(past.shape)}.")
        if x.shape[-1] == 1:
            return self._step(x, past)
        full = torch.cat([past, x], dim=-1)
        if not self.include_current:
            full = full[..., :-1]
        return F.conv1d(full, self.weight, self.bias, dilation=self.dilation)

    def _step(self, x: Tensor, past: Tensor) -> Tensor:
        """One output position: gather the k taps and apply the kernel as a matrix.

        The same numbers as the convolution, without its per-call setup, which dominates
        cached generation (one position per layer per step)."""
        k, d = self.kernel_size, self.dilation
        if self.include_current:
            taps = torch.cat([past[..., 0:(k - 1) * d:d], x], dim=-1)
        else:
            taps = past[..., 0:(k - 1) * d + 1:d]
        out = F.linear(taps.reshape(x.shape[0], -1), self.weight.reshape(self.out_ch, -1),
                       self.bias)
        return out.unsqueeze(-1)

    def extra_repr(self) -> str:
        return (f"{self.in_ch}, {self.out_ch}, kernel_size={self.kernel_size}, "
                f"dilation={self.dilation}, include_current={self.include_current}")


def wavenet_receptive_field(kernel_size: int, dilations: Sequence[int]) -> int:
    """How many input positions can influence one output of a stack of
    ``CausalConv1d(kernel_size, dilation=d, include_current=True)``, one layer per d:
    ``1 + (kernel_size - 1) * sum(dilations)``.

    This is the span from the oldest input that can reach the output to the newest (the
    output's own position). Every position in it is reached when the taps leave no gaps,
    as with WaveNet's 1, 2, 4, ... (sorted, each dilation at most 1 + (k-1)·the sum of the
    smaller ones); a gappy stack such as kernel 2, dilations [2] reaches fewer (2 of 3)."""
    if kernel_size < 1 or any(d < 1 for d in dilations):
        raise ValueError(f"kernel_size and dilations must be positive, got {kernel_size}, "
                         f"{list(dilations)}.")
    return 1 + (kernel_size - 1) * sum(dilations)


class PointwiseConv1d(nn.Conv1d):
    """``nn.Conv1d`` with kernel size 1 that skips the convolution machinery for a length-1
    input (a cached generation step) and applies its weight as a matrix instead."""

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] == 1 and self.kernel_size == (1,):
            return F.linear(x[..., 0], self.weight[..., 0], self.bias).unsqueeze(-1)
        return super().forward(x)


class GatedResidualBlock(nn.Module):
    """WaveNet's gated block on ``[N, channels, L]``.

    ``a, b = dilated(x).chunk(2, dim=1)``, ``z = tanh(a) * sigmoid(b)``; returns
    ``(x + residual(z), skip(z))``. ``dilated`` is causal (kernel 2, current position
    included); ``residual`` and ``skip`` are 1x1 convolutions.
    """

    def __init__(self, channels: int, dilation: int):
        super().__init__()
        self.dilated = CausalConv1d(channels, 2 * channels, 2, dilation)
        self.residual = PointwiseConv1d(channels, channels, 1)
        self.skip = PointwiseConv1d(channels, channels, 1)

    def forward(self, x: Tensor, past: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``x [N, C, L]`` (and ``past`` for cached steps, see :class:`CausalConv1d`)
        -> ``(residual output [N, C, L], skip [N, C, L])``."""
        a, b = self.dilated(x, past=past).chunk(2, dim=1)
        z = torch.tanh(a) * torch.sigmoid(b)
        return x + self.residual(z), self.skip(z)


class WaveNet(ARModel):
    """WaveNet over the data in generation order: K logits per position, ``[N, K, *data_shape]``.

    Images ``(C, H, W)`` are read pixel by pixel in raster order with the channels of a pixel
    in turn (rank = (i*W + j)*C + c); sequences ``(L,)`` as they are.

    Args:
        channels: width of every layer.
        dilations: one gated residual block per dilation.
        append_coords: feed the (row/(H-1), col/(W-1)) of the pixel each output predicts. They
            are not data, so they enter unshifted, through their own 1x1 convolution.
        num_classes: a class embedding is added to the first layer's output as a bias.
    """

    def __init__(self, data_shape: tuple[int, ...], levels: int, *, channels: int = 16,
                 dilations: Sequence[int] = (1, 2, 4), append_coords: bool = False,
                 num_classes: int | None = None):
        super().__init__(data_shape, levels, num_classes=num_classes)
        if len(dilations) == 0:
            raise ValueError("WaveNet needs at least one dilation (one gated block).")
        self.channels = channels
        self.dilations = tuple(int(d) for d in dilations)
        self.append_coords = append_coords
        self.input_conv = CausalConv1d(1, channels, 2, include_current=False)
        self.coord_conv = PointwiseConv1d(2, channels, 1) if append_coords else None
        self.class_embed = nn.Embedding(num_classes, channels) if num_classes else None
        self.blocks = nn.ModuleList(GatedResidualBlock(channels, d) for d in self.dilations)
        self.out_hidden = PointwiseConv1d(channels, channels, 1)
        self.out_logits = PointwiseConv1d(channels, self.levels, 1)

    # -- data <-> sequence -------------------------------------------------------------------
    def _to_sequence(self, values: Tensor) -> Tensor:
        """``[N, *data_shape]`` -> ``[N, 1, L]`` in generation order."""
        return to_sequence(values, self.data_shape).unsqueeze(1)

    def _from_sequence(self, seq: Tensor) -> Tensor:
        """``[N, P, L]`` in generation order -> ``[N, P, *data_shape]``."""
        return from_sequence(seq.transpose(1, 2), self.data_shape)

    def coordinates(self, device: torch.device | None = None,
                    dtype: torch.dtype | None = None) -> Tensor:
        """``[1, 2, L]``: (row/(H-1), col/(W-1)) of the pixel of every sequence position
        (0 along a side of length 1)."""
        return pixel_coordinates(self.data_shape, device, dtype or self.param_dtype).T.unsqueeze(0)

    def _condition(self, h: Tensor, cond: Tensor | None, coords: Tensor | None) -> Tensor:
        """Add what is not data (coordinates ``[1, 2, len]``, class) to the first layer."""
        if self.coord_conv is not None and coords is not None:
            h = h + self.coord_conv(coords)
        if self.class_embed is not None and cond is not None:
            h = h + self.class_embed(cond)[:, :, None]
        return h

    def _output(self, skip: Tensor) -> Tensor:
        return self.out_logits(F.relu(self.out_hidden(F.relu(skip))))

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """``x [N, *data_shape]`` levels -> logits ``[N, K, *data_shape]``."""
        cond = self.check_cond(cond, x.shape[0])
        seq = self._to_sequence(self.scale_input(x))
        coords = self.coordinates(seq.device, seq.dtype) if self.append_coords else None
        h = self._condition(self.input_conv(seq), cond, coords)
        skip = 0
        for block in self.blocks:
            h, s = block(h)
            skip = skip + s
        return self._from_sequence(self._output(skip))

    # -- generation --------------------------------------------------------------------------
    def sample(self, n: int, cond: Tensor | None = None,
               generator: torch.Generator | None = None, cached: bool = True) -> Tensor:
        """``n`` samples ``LongTensor[n, *data_shape]``.

        ``cached=True``: fast generation, each layer computes one new position per step;
        ``cached=False``: the generic sampler (a full forward pass per position). Both draw
        position t with one ``torch.multinomial`` call for the batch, so they return the same
        samples for the same generator state."""
        if not cached:
            return sample_autoregressive(self, n, cond=cond, generator=generator)
        was_training = self.training
        self.eval()
        try:
            return self._sample_cached(n, cond, generator)
        finally:
            self.train(was_training)

    @torch.no_grad()
    def _sample_cached(self, n: int, cond: Tensor | None,
                       generator: torch.Generator | None) -> Tensor:
        device, dtype = self.param_device, self.param_dtype
        cond = self.check_cond(cond, n)
        length = self.num_dims
        coords = self.coordinates(device, dtype) if self.append_coords else None
        # Queues of past layer inputs; zeros before t = 0, as the zero padding of forward.
        inputs = LayerQueue(n, 1, self.input_conv.history, device, dtype)
        queues = [LayerQueue(n, self.channels, b.dilated.history, device, dtype)
                  for b in self.blocks]
        unknown = torch.zeros(n, 1, 1, device=device, dtype=dtype)  # x_t: never read
        seq = torch.zeros(n, length, dtype=torch.long, device=device)
        for t in range(length):
            h = self.input_conv(unknown, past=inputs.window())
            h = self._condition(h, cond, None if coords is None else coords[..., t:t + 1])
            skip = 0
            for queue, block in zip(queues, self.blocks):
                out, s = block(h, past=queue.window())
                queue.push(h)
                h, skip = out, skip + s
            logits = self._output(skip)[..., 0]                    # [n, K]
            draw = self.head.sample(logits, generator).to(device)  # [n]
            seq[:, t] = draw
            inputs.push(self.scale_input(draw).view(n, 1, 1))
        return self._from_sequence(seq.unsqueeze(1))[:, 0]


class LayerQueue:
    """The last ``size`` inputs of a layer, oldest first, without shifting memory each step.

    Every value is written twice, at ``p`` and ``p + size`` of a buffer twice as long, so the
    window ``[p + 1, p + 1 + size)`` is always the queue in order, as a view. (Shifting a
    ``[n, C, 512]`` queue by concatenation every step cost more than the layers themselves.)"""

    def __init__(self, n: int, channels: int, size: int, device, dtype):
        self.size, self.pos = size, size - 1
        self.buffer = torch.zeros(n, channels, 2 * size, device=device, dtype=dtype)

    def window(self) -> Tensor:
        """``[n, C, size]``: the queue, oldest first (a view: read it before the next push)."""
        return self.buffer[..., self.pos + 1:self.pos + 1 + self.size]

    def push(self, value: Tensor) -> None:
        """Append ``value [n, C, 1]``, dropping the oldest entry."""
        self.pos = (self.pos + 1) % self.size
        self.buffer[..., self.pos] = value[..., 0]
        self.buffer[..., self.pos + self.size] = value[..., 0]


@contextmanager
def count_positions(model: nn.Module) -> Iterator[dict[str, list[int]]]:
    """Record, for every convolution in ``model``, the output length of each call.

    ``with count_positions(model) as lengths: model.sample(4)`` gives ``{name: [L_1, ...]}``;
    cached generation shows ``[1, 1, ...]`` (one new position per step) for every layer."""
    lengths: dict[str, list[int]] = {}
    handles = []
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv1d, CausalConv1d)):
            lengths[name] = []

            def hook(_module, _args, output, name=name):
                lengths[name].append(int(output.shape[-1]))

            handles.append(module.register_forward_hook(hook))
    try:
        yield lengths
    finally:
        for handle in handles:
            handle.remove()
