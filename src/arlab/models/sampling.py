"""One sampler for every model: one forward pass per rank of ``model.order()``.

Also conditional sampling (inpainting): positions given in ``known`` stay fixed and the rest
are drawn in order. That draws from the exact p(missing | known) only when every known
position comes before every missing one in the order (MADE can arrange this by choosing its
ordering); otherwise the later known positions are ignored while earlier ones are drawn, and the
result is a heuristic (a warning says so).
"""
from __future__ import annotations

import warnings

import torch
from torch import Tensor


@torch.no_grad()
def sample_autoregressive(model, n: int, cond: Tensor | None = None,
                          generator: torch.Generator | None = None,
                          known: Tensor | None = None, known_mask: Tensor | None = None,
                          progress: bool = False) -> Tensor:
    """Draw ``n`` samples ``LongTensor[n, *data_shape]`` from ``model``.

    Args:
        cond: class labels ``[n]`` (or one label for all) for conditional models.
        generator: the random source; the same seed gives the same samples.
        known, known_mask: values ``[n, *data_shape]`` and a bool mask (``[*data_shape]`` or
            ``[n, *data_shape]``) of positions to keep fixed.
        progress: show a tqdm bar over the ranks.
    """
    was_training = model.training
    model.eval()
    try:
        device = model.param_device
        shape = (n, *model.data_shape)
        x = torch.zeros(shape, dtype=torch.long, device=device)
        fill = torch.ones(shape, dtype=torch.bool, device=device)
        if known is not None:
            if known_mask is None:
                raise ValueError("known needs known_mask: which positions to keep fixed.")
            fill = ~known_mask.to(device).bool().expand(shape)
            x = torch.where(fill, x, known.to(device).long())
            _warn_if_heuristic(model.order().to(device), fill)
        if cond is not None:
            cond = model.check_cond(cond, n)
        order = model.order().to(device)
        ranks = torch.unique(order)
        iterator = ranks.tolist()
        if progress:
            from tqdm.auto import tqdm

            iterator = tqdm(iterator, desc="sampling", leave=False)
        for r in iterator:
            here = order == r                      # [*dims]
            if not fill[:, here].any():            # every position of this rank is known
                continue
            params = model(x, cond)                # [n, P, *dims]
            p = params.movedim(1, -1)[:, here]     # [n, k, P]
            draw = model.head.sample(p.reshape(-1, p.shape[-1]), generator).view(n, -1).to(device)
            x[:, here] = torch.where(fill[:, here], draw, x[:, here])
    finally:
        model.train(was_training)
    return x


def _warn_if_heuristic(order: Tensor, fill: Tensor) -> None:
    """Warn when some known position comes after some missing one in the order."""
    for f in fill.reshape(fill.shape[0], -1):
        ranks = order.reshape(-1)
        if f.any() and (~f).any() and ranks[~f].max() > ranks[f].min():
            warnings.warn("Some known positions come after missing ones in the model's order: "
                          "the samples ignore them while drawing earlier positions, so this is "
                          "a heuristic, not exact p(missing | known). Choose an ordering that "
                          "puts the known positions first (MADE can) for exact inpainting.",
                          stacklevel=3)
            return


def inpaint(model, x: Tensor, known_mask: Tensor, cond: Tensor | None = None,
            generator: torch.Generator | None = None) -> Tensor:
    """Fill the positions of ``x`` where ``known_mask`` is False by sampling from ``model``."""
    return sample_autoregressive(model, x.shape[0], cond=cond, generator=generator,
                                 known=x, known_mask=known_mask)
