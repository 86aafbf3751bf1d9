"""Two variables by the chain rule: p(x1, x2) = p(x1) p(x2 | x1).

p(x1) is a free logits vector; p(x2 | x1) is an MLP on the one-hot of x1. Sharing one network
across all values of x1 (instead of a separate histogram per value) is the first step from
tables towards neural autoregressive models. The one-hot input is not differentiable in x, so
dependence checks on this model use perturbation.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from arlab.models.base import ARModel


class TwoVariable(ARModel):
    """``data_shape (2,)``: x1 first, then x2 given x1 (raster order).

    Args:
        hidden: width of the MLP for p(x2 | x1).
        num_classes: optional labels; a learned class vector is added to the logits of x1 and to
            the MLP's hidden layer.
    """

    def __init__(self, data_shape: tuple[int, ...] = (2,), levels: int = 2, *, hidden: int = 32,
                 num_classes: int | None = None):
        super().__init__(data_shape, levels, num_classes=num_classes)
        if self.data_shape != (2,):
            raise ValueError(f"TwoVariable models a pair: data_shape must be (2,), "
                             f"got {self.data_shape}.")
        d = self.levels
        self.x1_logits = nn.Parameter(torch.zeros(d))
        self.hidden = nn.Linear(d, hidden)
        self.out = nn.Linear(hidden, d)
        if num_classes is not None:
            self.class_x1 = nn.Embedding(num_classes, d)
            self.class_hidden = nn.Embedding(num_classes, hidden)
            nn.init.zeros_(self.class_x1.weight)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """``x [N, 2]`` levels -> logits ``[N, levels, 2]``: column 0 for x1, column 1 for x2 | x1."""
        n = x.shape[0]
        cond = self.check_cond(cond, n)
        x1 = x[:, 0].long().to(self.x1_logits.device)
        logits1 = self.x1_logits.unsqueeze(0).expand(n, -1)
        h = self.hidden(F.one_hot(x1, self.levels).to(self.param_dtype))
        if cond is not None:
            logits1 = logits1 + self.class_x1(cond)
            h = h + self.class_hidden(cond)
        logits2 = self.out(torch.relu(h))
        return torch.stack([logits1, logits2], dim=-1)
