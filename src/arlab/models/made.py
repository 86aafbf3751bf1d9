"""MADE: an autoregressive model made from one masked MLP (Germain et al., 2015).

Every input dimension and every hidden unit gets a *degree*. A hidden unit of degree m may
read inputs of degree <= m; the logits of dimension d (degree = its rank r) may read hidden
units of degree < r. Every path from input d' to output d then has rank(d') < rank(d), so one
forward pass gives every conditional p(x_d | x_<d) at once, and only sampling needs one pass
per dimension. Several masks (orderings and connectivities) can be trained in turn; the model
is then the uniform mixture of the per-mask distributions.
"""
from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from arlab.models.base import ARModel, image_layout
from arlab.models.sampling import sample_autoregressive

ORDERINGS = ("raster", "random", "columns", "even_odd", "top_bottom_middle")


def made_masks(input_degrees: Tensor, hidden_degrees: list[Tensor]) -> list[Tensor]:
    """Masks of a MADE, one float ``[out, in]`` per layer (1 = connected).

    Args:
        input_degrees: ``LongTensor[D]``, the rank (0 first) of every input dimension.
        hidden_degrees: one ``LongTensor[h_l]`` per hidden layer, in order.

    Hidden layer l connects unit i to unit j of the layer below where
    ``degree_l[i] >= degree_below[j]``. The output layer has D units, unit d of degree
    ``input_degrees[d]``, and connects where that degree is *strictly* greater than the degree
    of the last hidden layer (of the inputs when there is no hidden layer).
    """
    for name, deg in [("input_degrees", input_degrees),
                      *((f"hidden_degrees[{i}]", h) for i, h in enumerate(hidden_degrees))]:
        if deg.dim() != 1:
            raise ValueError(f"{name} must be a 1-D tensor of degrees, got shape "
                             f"{tuple(deg.shape)}.")
    degrees = [input_degrees, *hidden_degrees]
    masks = [(upper[:, None] >= lower[None, :]).float()
             for lower, upper in zip(degrees[:-1], degrees[1:])]
    masks.append((input_degrees[:, None] > degrees[-1][None, :]).float())
    return masks


class MaskedLinear(nn.Linear):
    """``nn.Linear`` whose weight is multiplied by a fixed 0/1 ``mask`` in every forward pass.

    ``weight [out, in]`` and ``bias [out]`` are those of ``nn.Linear``; ``mask`` is a buffer of
    the same shape as ``weight``, all ones until :meth:`set_mask`. The weight itself is never
    edited, so masked entries get exactly zero gradient and keep their values.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 device: torch.device | None = None, dtype: torch.dtype | None = None):
        super().__init__(in_features, out_features, bias, device=device, dtype=dtype)
        self.register_buffer("mask", torch.ones_like(self.weight, requires_grad=False))

    def set_mask(self, mask: Tensor) -> None:
        """Use ``mask [out_features, in_features]`` (0/1) from now on."""
        if tuple(mask.shape) != tuple(self.weight.shape):
            raise ValueError(f"mask has shape {tuple(mask.shape)} but this layer's weight is "
                             f"[out, in] = {tuple(self.weight.shape)}; build the mask with "
                             "one row per output unit and one column per input.")
        # A new tensor rather than an in-place copy: a graph built with the old mask (e.g. by
        # a mixture over masks) must still be able to back-propagate.
        self.mask = mask.detach().to(device=self.weight.device, dtype=self.weight.dtype).clone()

    def forward(self, x: Tensor) -> Tensor:
        """``x [..., in]`` -> ``[..., out]``."""
        return F.linear(x, self.weight * self.mask, self.bias)


def _ranks_from_sequence(sequence: Tensor) -> Tensor:
    """Raster indices listed in generation order -> the rank of every raster index."""
    ranks = torch.empty_like(sequence)
    ranks[sequence] = torch.arange(sequence.numel())
    return ranks


def made_orderings(height: int, width: int, seed: int = 0) -> dict[str, Tensor]:
    """Named orderings of the pixels of a ``height x width`` image.

    Returns ``{name: LongTensor[H*W]}``: entry ``i*W + j`` is the rank (0 first) of pixel
    ``(i, j)``. Names: ``raster``; ``random`` (a permutation drawn from ``seed``);
    ``columns`` (column by column, top to bottom); ``even_odd`` (even raster indices first,
    then odd ones); ``top_bottom_middle`` (rows alternately from the top and from the bottom,
    meeting in the middle; left to right inside a row).
    """
    if height < 1 or width < 1:
        raise ValueError(f"height and width must be positive, got {height} x {width}.")
    n = height * width
    raster = torch.arange(n)
    columns = (torch.arange(height)[None, :] * width + torch.arange(width)[:, None]).reshape(-1)
    rows, top, bottom = [], 0, height - 1
    while top <= bottom:
        rows.append(top)
        if bottom != top:
            rows.append(bottom)
        top, bottom = top + 1, bottom - 1
    tbm = torch.cat([torch.arange(width) + r * width for r in rows])
    return {
        "raster": raster,
        "random": torch.randperm(n, generator=torch.Generator().manual_seed(seed)),
        "columns": _ranks_from_sequence(columns),
        "even_odd": _ranks_from_sequence(torch.cat([raster[0::2], raster[1::2]])),
        "top_bottom_middle": _ranks_from_sequence(tbm),
    }


def _initial_ranks(data_shape: tuple[int, ...], ordering: str | Tensor, seed: int) -> Tensor:
    """The ranks ``LongTensor[D]`` (flattened data order) of a named or given ordering.

    Named orderings order pixels; the channels of a pixel follow each other (R, G, B)."""
    d = math.prod(data_shape)
    if isinstance(ordering, str):
        c, h, w = image_layout(data_shape)
        named = made_orderings(h, w, seed)
        if ordering not in named:
            raise ValueError(f"unknown ordering {ordering!r}; use one of {ORDERINGS} or a "
                             f"LongTensor of {d} ranks.")
        pixel_ranks = named[ordering].view(1, h, w)
        return (pixel_ranks * c + torch.arange(c).view(c, 1, 1)).reshape(-1)
    ranks = torch.as_tensor(ordering).long().reshape(-1).cpu()
    if ranks.numel() != d or not torch.equal(ranks.sort().values, torch.arange(d)):
        raise ValueError(f"ordering must hold each rank 0..{d - 1} exactly once (one per "
                         f"dimension of data_shape {data_shape}); got {ranks.tolist()}.")
    return ranks


def made_degrees(ranks: Tensor, hidden_sizes: Sequence[int], num_masks: int = 1, seed: int = 0,
                 resample_ordering: bool = False) -> tuple[Tensor, list[Tensor]]:
    """Degrees of every mask of a MADE, drawn by the homework's rule.

    One generator ``torch.Generator().manual_seed(seed)``; for mask m = 0, 1, ...: when
    ``resample_ordering`` and m > 0, first draw new ranks ``torch.randperm(D)``; then for every
    hidden layer in order draw ``torch.randint(low, D - 1, (h_l,))`` with ``low`` the smallest
    degree of the layer below (the inputs for the first hidden layer).

    Returns ``(input_degrees [num_masks, D], [hidden_degrees_l [num_masks, h_l], ...])``.
    """
    d = ranks.numel()
    if d < 2:
        raise ValueError(f"MADE needs at least 2 dimensions (hidden degrees lie in 0..D-2); "
                         f"got D = {d}.")
    g = torch.Generator().manual_seed(seed)
    inputs, hidden = [], [[] for _ in hidden_sizes]
    for m in range(num_masks):
        current = torch.randperm(d, generator=g) if resample_ordering and m > 0 else ranks
        inputs.append(current)
        below = current
        for layer, size in enumerate(hidden_sizes):
            below = torch.randint(int(below.min()), d - 1, (size,), generator=g)
            hidden[layer].append(below)
    return torch.stack(inputs), [torch.stack(h) for h in hidden]


class MADE(ARModel):
    """Masked MLP over the flattened data: K logits per dimension, ``[N, K, *data_shape]``.

    Args:
        data_shape, levels: as in :class:`ARModel` (at least 2 dimensions).
        hidden_sizes: widths of the hidden layers (ELU); ``()`` gives a masked linear model.
        ordering: a name from :data:`ORDERINGS` or a ``LongTensor`` of ranks (one per
            dimension, flat or shaped like the data).
        num_masks: how many masks to cycle through in training; with ``ordering="random"``
            every mask after the first also draws its own ordering.
        direct: add a masked direct input-to-output linear layer (input rank < output rank).
        seed: seeds the degree draws (see :func:`made_degrees`) and the random ordering.
        num_classes: a class one-hot is appended to the input, connected to every unit.

    The input is the scaled value of every dimension (continuous, so float64 gradient checks
    apply). ``mask_index`` names the current mask; ``forward`` and ``order`` use it.
    ``log_prob`` is the uniform mixture over masks.
    """

    def __init__(self, data_shape: tuple[int, ...], levels: int, *,
                 hidden_sizes: Sequence[int] = (32, 32), ordering: str | Tensor = "raster",
                 num_masks: int = 1, direct: bool = False, seed: int = 0,
                 num_classes: int | None = None):
        super().__init__(data_shape, levels, num_classes=num_classes)
        if num_masks < 1:
            raise ValueError(f"num_masks must be at least 1, got {num_masks}.")
        self.hidden_sizes = tuple(int(h) for h in hidden_sizes)
        if any(h < 1 for h in self.hidden_sizes):
            raise ValueError(f"hidden sizes must be positive, got {self.hidden_sizes}.")
        d, k = self.num_dims, self.levels
        ranks = _initial_ranks(self.data_shape, ordering, seed)
        resample = isinstance(ordering, str) and ordering == "random"
        inputs, hidden = made_degrees(ranks, self.hidden_sizes, num_masks, seed, resample)
        self.num_masks = int(num_masks)
        self.register_buffer("input_degrees", inputs)                  # [M, D]
        for layer, deg in enumerate(hidden):
            self.register_buffer(f"hidden_degrees_{layer}", deg)       # [M, h_l]
        widths = [d, *self.hidden_sizes, d * k]
        extra = [num_classes or 0] + [0] * len(self.hidden_sizes)
        self.layers = nn.ModuleList(MaskedLinear(a + e, b)
                                    for a, b, e in zip(widths[:-1], widths[1:], extra))
        self.direct = MaskedLinear(d, d * k, bias=False) if direct else None
        self.mask_index = 0
        self.set_mask_index(0)

    # -- masks -------------------------------------------------------------------------------
    def degrees(self, index: int | None = None) -> tuple[Tensor, list[Tensor]]:
        """``(input_degrees [D], [hidden_degrees [h_l], ...])`` of mask ``index`` (current)."""
        i = self.mask_index if index is None else int(index)
        hidden = [getattr(self, f"hidden_degrees_{l}")[i] for l in range(len(self.hidden_sizes))]
        return self.input_degrees[i], hidden

    def set_mask_index(self, index: int) -> None:
        """Make mask ``index`` (0..num_masks-1) the current one."""
        if not 0 <= int(index) < self.num_masks:
            raise ValueError(f"mask index {index} out of range: this MADE has "
                             f"{self.num_masks} mask(s).")
        index = int(index)
        inputs, hidden = self.degrees(index)
        masks = made_masks(inputs, hidden)
        masks[-1] = masks[-1].repeat(self.levels, 1)   # output unit k*D + d belongs to dim d
        if self.num_classes:
            ones = masks[0].new_ones(masks[0].shape[0], self.num_classes)
            masks[0] = torch.cat([masks[0], ones], dim=1)
        for layer, mask in zip(self.layers, masks):
            layer.set_mask(mask)
        if self.direct is not None:
            strict = (inputs[None, :] < inputs[:, None]).float()
            self.direct.set_mask(strict.repeat(self.levels, 1))
        self.mask_index = index

    @contextmanager
    def using_mask(self, index: int) -> Iterator[None]:
        """Temporarily make mask ``index`` current."""
        previous = self.mask_index
        self.set_mask_index(index)
        try:
            yield
        finally:
            self.set_mask_index(previous)

    def get_extra_state(self) -> dict:
        return {"mask_index": self.mask_index}

    def set_extra_state(self, state: dict) -> None:
        self.set_mask_index(state["mask_index"])

    # -- the face ---------------------------------------------------------------------------
    def order(self) -> Tensor:
        """Ranks of the current mask, ``LongTensor[*data_shape]``."""
        return self.input_degrees[self.mask_index].detach().cpu().view(self.data_shape)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """``x [N, *data_shape]`` levels -> logits ``[N, K, *data_shape]`` (current mask)."""
        n = x.shape[0]
        cond = self.check_cond(cond, n)
        values = self.scale_input(x).reshape(n, -1)
        h = values
        if self.num_classes:
            onehot = values.new_zeros(n, self.num_classes)
            if cond is not None:
                onehot = F.one_hot(cond, self.num_classes).to(values.dtype)
            h = torch.cat([h, onehot], dim=1)
        for i, layer in enumerate(self.layers):
            h = layer(h)
            if i < len(self.layers) - 1:
                # ELU, not ReLU: early dimensions reach their past through the few hidden
                # units of low degree, and a dead ReLU among them would cut that path.
                h = F.elu(h)
        if self.direct is not None:
            h = h + self.direct(values)
        return h.view(n, self.levels, *self.data_shape)

    def mask_log_prob(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """log p(x) under the current mask alone, nats per example ``[N]``."""
        return super().log_prob(x, cond)

    def log_prob(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """log of the mean over masks of p_mask(x), in nats per example ``[N]``."""
        if self.num_masks == 1:
            return self.mask_log_prob(x, cond)
        per_mask = []
        with self.using_mask(self.mask_index):
            for m in range(self.num_masks):
                self.set_mask_index(m)
                per_mask.append(self.mask_log_prob(x, cond))
        return torch.logsumexp(torch.stack(per_mask), dim=0) - math.log(self.num_masks)

    def loss(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """Mean NLL in nats per dimension. Training with several masks: the NLL under the
        current mask, then the next mask becomes current (order-agnostic training);
        otherwise the mixture's NLL."""
        if self.training and self.num_masks > 1:
            nll = -self.mask_log_prob(x, cond).mean() / self.num_dims
            self.set_mask_index((self.mask_index + 1) % self.num_masks)
            return nll
        return super().loss(x, cond)

    def sample(self, n: int, cond: Tensor | None = None,
               generator: torch.Generator | None = None, mask_index: int | None = None,
               mixture: bool = False) -> Tensor:
        """``n`` samples ``LongTensor[n, *data_shape]`` with the generic sampler (one forward
        pass per dimension).

        By default under the current mask (the distribution of :meth:`mask_log_prob`);
        ``mask_index=i`` under mask i; ``mixture=True`` from the mixture that :meth:`log_prob`
        scores: each sample first picks a mask uniformly (with ``generator``)."""
        if not mixture or self.num_masks == 1:
            with self.using_mask(self.mask_index if mask_index is None else mask_index):
                return sample_autoregressive(self, n, cond=cond, generator=generator)
        device = self.param_device
        cond = self.check_cond(cond, n)
        where = generator.device if generator is not None else device
        choice = torch.randint(self.num_masks, (n,), generator=generator, device=where).to(device)
        out = torch.zeros((n, *self.data_shape), dtype=torch.long, device=device)
        for m in range(self.num_masks):
            rows = (choice == m).nonzero().squeeze(1)
            if rows.numel() == 0:
                continue
            with self.using_mask(m):
                out[rows] = sample_autoregressive(self, rows.numel(),
                                                  cond=None if cond is None else cond[rows],
                                                  generator=generator)
        return out
