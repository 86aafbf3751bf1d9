"""Gated PixelCNN layers wired in other ways, for notebook 08's question "why does v feed h,
and never the reverse?". Each wiring is a variant of the library's
:class:`arlab.models.gated_pixelcnn.GatedPixelCNNLayer`; the notebook decides which ones leak
with :func:`arlab.receptive.causality_violations`.

Wirings (keyword arguments of :class:`RewiredGatedLayer`):

* ``layout="link"`` (the library's): the one-row shift sits on the v -> h link;
  ``shift=False`` drops it.
* ``layout="stream"`` (the paper's figure): v is kept shifted from the first layer on and
  enters h unshifted.
* ``reverse=True``: adds the h -> v link that the rule forbids.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from arlab.models.gated_pixelcnn import GatedPixelCNN, GatedPixelCNNLayer

WIRINGS: dict[str, dict] = {
    "arlab: shift on the link": dict(),
    "paper: v kept shifted": dict(layout="stream"),
    "arlab + h feeds v": dict(reverse=True),
    "arlab, shift removed": dict(shift=False),
    "paper + h feeds v": dict(layout="stream", reverse=True),
}


def _gated(z: Tensor) -> Tensor:
    proposal, gate = z.chunk(2, dim=1)
    return torch.tanh(proposal) * torch.sigmoid(gate)


def _one_row_down(t: Tensor) -> Tensor:
    """Row i receives row i-1 (zeros in row 0)."""
    return F.pad(t, (0, 0, 1, 0))[:, :, : t.shape[2]]


class RewiredGatedLayer(GatedPixelCNNLayer):
    """A :class:`GatedPixelCNNLayer` with the same parameters (plus ``h_to_v``) and another
    wiring; ``forward(v, h) -> (v, h)``, all ``[N, channels, H, W]``."""

    def __init__(self, channels: int, kernel_size: int, first: bool, layout: str = "link",
                 shift: bool = True, reverse: bool = False):
        super().__init__(channels, kernel_size, first)
        if layout not in ("link", "stream"):
            raise ValueError(f"layout is 'link' or 'stream', got {layout!r}.")
        self.layout, self.shift, self.reverse = layout, shift, reverse
        self.h_to_v = nn.Conv2d(channels, 2 * channels, 1)

    def forward(self, v: Tensor, h: Tensor, cond_bias: Tensor | None = None):
        r = self.reach
        if self.layout == "stream" and self.first:
            v = _one_row_down(v)
        vertical = self.vertical(F.pad(v, (r, r, r, 0)))
        if self.reverse:
            vertical = vertical + self.h_to_v(h)
        link = vertical
        if self.layout == "link" and self.shift:
            link = _one_row_down(vertical)
        horizontal = F.conv2d(F.pad(h, (r, 0, 0, 0)), self.horizontal.weight * self.h_mask,
                              self.horizontal.bias)
        update = self.h_out(_gated(horizontal + self.v_to_h(link)))
        return _gated(vertical), (update if self.first else h + update)


def rewired_gated_pixelcnn(layers: int = 3, size: int = 9, channels: int = 4, seed: int = 0,
                           **wiring) -> GatedPixelCNN:
    """A binary ``size x size`` GatedPixelCNN (kernel 3) whose layers use ``wiring``."""
    torch.manual_seed(seed)
    model = GatedPixelCNN((1, size, size), 2, channels=channels, layers=layers)
    model.layers = nn.ModuleList(RewiredGatedLayer(channels, 3, k == 0, **wiring)
                                 for k in range(layers))
    return model
