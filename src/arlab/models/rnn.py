"""A recurrent autoregressive model: read the data as one sequence, predict each value from the
state built over the values before it.

Sequences ``(L,)`` are read as they are; images ``(C, H, W)`` pixel by pixel in raster order
with the channels of a pixel one after another (rank ``(i*W + j)*C + c``). Step ``t`` is fed the
previous value (a start value at ``t = 0``), so its output depends only on earlier positions.
With ``append_coords`` each step also gets the (row, column) of the position it predicts,
scaled to [0, 1]: coordinates are not data, so this keeps causality, and it spares the network
from counting steps to know where it is in the image.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from arlab.models.base import ARModel, from_sequence, pixel_coordinates, to_sequence

_CELLS = {"lstm": nn.LSTM, "gru": nn.GRU}


class PixelRNN(ARModel):
    """LSTM/GRU over the data in generation order, categorical output per position.

    Args:
        data_shape: ``(L,)`` for sequences, ``(H, W)`` or ``(C, H, W)`` for images.
        levels: values per position (alphabet size for characters).
        cell: ``"lstm"`` or ``"gru"``.
        hidden, layers: size and depth of the recurrent net.
        append_coords: feed the (row/(H-1), column/(W-1)) of the predicted position.
        embed: encode the previous value with a learned embedding (True) or as its scaled value
            in [-1, 1] (False, differentiable in a float input). Default: embed when levels > 2.
        num_classes: optional labels; a learned class vector joins the input of every step.
    """

    def __init__(self, data_shape: tuple[int, ...], levels: int, *, cell: str = "lstm",
                 hidden: int = 16, layers: int = 1, append_coords: bool = False,
                 embed: bool | None = None, num_classes: int | None = None):
        super().__init__(data_shape, levels, num_classes=num_classes)
        if cell not in _CELLS:
            raise ValueError(f"cell must be one of {sorted(_CELLS)}, got {cell!r}.")
        if len(self.data_shape) > 3:
            raise ValueError(f"PixelRNN reads (L,), (H, W) or (C, H, W) data, got {self.data_shape}.")
        self.cell = cell
        self.append_coords = bool(append_coords)
        self.embed = levels > 2 if embed is None else bool(embed)
        value_size = hidden if self.embed else 1
        if self.embed:
            self.value_embedding = nn.Embedding(self.levels + 1, hidden)  # index `levels` = start
        class_size = hidden if num_classes is not None else 0
        if num_classes is not None:
            self.class_embedding = nn.Embedding(num_classes, class_size)
        input_size = value_size + 2 * self.append_coords + class_size
        self.rnn = _CELLS[cell](input_size, hidden, num_layers=layers, batch_first=True)
        self.out = nn.Linear(hidden, self.levels)
        with torch.no_grad():  # start close to the uniform distribution (ln K nats per dim)
            self.out.weight.mul_(0.1)
            self.out.bias.zero_()

    def coordinates(self) -> Tensor:
        """``[L, 2]``: (row/(H-1), column/(W-1)) of each step's position (0 when H or W is 1)."""
        return pixel_coordinates(self.data_shape, self.param_device, self.param_dtype)

    def _encode(self, values: Tensor) -> Tensor:
        """Previous values ``[N, T]`` (levels, long or float) -> ``[N, T, value_size]``."""
        if self.embed:
            return self.value_embedding(values.long())
        return self.scale_input(values).unsqueeze(-1)

    def _start(self, n: int) -> Tensor:
        """The input standing for "no previous value": ``[n, 1, value_size]``."""
        if self.embed:
            start = torch.full((n, 1), self.levels, dtype=torch.long, device=self.param_device)
            return self.value_embedding(start)
        # 0 on the [-1, 1] scale: between the levels of binary data, so it is distinguishable.
        return torch.zeros(n, 1, 1, dtype=self.param_dtype, device=self.param_device)

    def _inputs(self, prev: Tensor, steps: slice, cond: Tensor | None) -> Tensor:
        """Join encoded previous values ``[N, T, value_size]`` with the coordinates of the
        positions ``steps`` predicts and the class vector."""
        parts = [prev]
        n, t = prev.shape[:2]
        if self.append_coords:
            parts.append(self.coordinates()[steps].unsqueeze(0).expand(n, t, 2))
        if cond is not None:
            parts.append(self.class_embedding(cond).unsqueeze(1).expand(n, t, -1))
        elif self.num_classes is not None:
            # No label given: a zero class vector (the model's unconditional input).
            parts.append(prev.new_zeros(n, t, self.class_embedding.embedding_dim))
        return torch.cat(parts, dim=-1)

    # -- the face ------------------------------------------------------------------------
    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """``x [N, *data_shape]`` levels -> logits ``[N, levels, *data_shape]``."""
        n = x.shape[0]
        cond = self.check_cond(cond, n)
        seq = to_sequence(x.to(self.param_device), self.data_shape)  # [N, L]
        prev = torch.cat([self._start(n), self._encode(seq[:, :-1])], dim=1)
        out, _ = self.rnn(self._inputs(prev, slice(None), cond))
        return from_sequence(self.out(out), self.data_shape)        # [N, K, *data_shape]

    @torch.no_grad()
    def sample(self, n: int, cond: Tensor | None = None,
               generator: torch.Generator | None = None) -> Tensor:
        """``n`` samples ``LongTensor[n, *data_shape]`` in O(L) steps, carrying the recurrent state.

        Draws position t with one ``head.sample`` call for the batch, like the generic sampler,
        so both give the same samples for the same generator."""
        was_training = self.training
        self.eval()
        cond = self.check_cond(cond, n)
        seq = torch.zeros(n, self.num_dims, dtype=torch.long, device=self.param_device)
        prev, state = self._start(n), None
        for t in range(self.num_dims):
            out, state = self.rnn(self._inputs(prev, slice(t, t + 1), cond), state)
            draw = self.head.sample(self.out(out[:, 0]), generator).to(seq.device)
            seq[:, t] = draw
            prev = self._encode(draw.unsqueeze(1))
        self.train(was_training)
        return from_sequence(seq, self.data_shape)
