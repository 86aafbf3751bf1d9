"""The Fisher score: a representation read off any likelihood model.

An autoregressive model has no latent code, but it has parameters. The Fisher score of an
example is the gradient of its log-likelihood with respect to the parameters,
``s(x) = ∇_θ log p_θ(x)``: the direction in which the model would move to make x more likely.
Examples that "belong to the same mode" ask for similar changes, so their scores point in
similar directions. Its mean under the model is zero (``E_p[∇ log p] = ∇ Σ_x p(x) = ∇ 1``) and
its covariance is the Fisher information; dividing each coordinate by the square root of the
empirical diagonal Fisher puts all parameters on one scale.

``fisher_scores`` computes per-example scores (``torch.func.vmap`` over ``grad``, with a loop
as the fallback); ``nearest_neighbours`` and ``linear_probe_accuracy`` judge them as features.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class _LogProb(nn.Module):
    """``forward(x, cond) = model.log_prob(x, cond)``, so ``functional_call`` can call it."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        return self.model.log_prob(x, cond)


def select_parameters(model: nn.Module, params: Sequence[str] | None = None) -> list[str]:
    """Names of the parameters a score is taken over, in ``named_parameters()`` order.

    ``params``: None for every parameter that requires a gradient; otherwise parameter names
    or module names (``"out"`` selects ``out.weight`` and ``out.bias``)."""
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    if params is None:
        return names
    if isinstance(params, str):
        params = [params]
    chosen = [n for n in names if any(n == q or n.startswith(q + ".") for q in params)]
    unknown = [q for q in params if not any(n == q or n.startswith(q + ".") for n in names)]
    if unknown:
        raise ValueError(f"no parameter of {type(model).__name__} is called {unknown} (or "
                         f"lies in a module of that name); choose among {names}.")
    return chosen


def fisher_diagonal(scores: Tensor) -> Tensor:
    """The empirical diagonal Fisher ``mean_n scores[n]²``, ``[P]``, from scores ``[N, P]``."""
    return scores.pow(2).mean(0)


def normalize_scores(scores: Tensor, diagonal: Tensor) -> Tensor:
    """``scores / sqrt(diagonal)``, coordinate by coordinate; coordinates whose diagonal is
    zero (parameters no example moves, e.g. masked-out weights) stay zero."""
    root = diagonal.sqrt()
    return torch.where(root > 0, scores / torch.where(root > 0, root, 1.0), 0.0)


def fisher_scores(model: nn.Module, x: Tensor, cond: Tensor | None = None,
                  params: Sequence[str] | None = None, batch_size: int = 64,
                  normalize: bool | Tensor = False, method: str = "auto",
                  progress: bool = False) -> Tensor:
    """Per-example Fisher scores ``∇_θ log p(x_n)``, flattened: ``Tensor[N, P]``.

    Args:
        model: any arlab model (``log_prob(x, cond) -> [N]`` in nats).
        x: examples ``[N, *data_shape]`` (levels); ``cond``: class labels ``[N]`` or None.
        params: which parameters (see :func:`select_parameters`); P is their total size,
            in ``named_parameters()`` order. Fewer parameters (the last layers) keep P small.
        batch_size: examples per vectorised call.
        normalize: False; True to divide by the square root of the diagonal Fisher of these
            scores; or a diagonal ``[P]`` to use (e.g. the training set's, for test scores).
        method: ``"vmap"`` (``torch.func``), ``"loop"`` (one backward pass per example) or
            ``"auto"`` (vmap, falling back to the loop with a warning if the model does not
            support it).
        progress: a progress bar over the batches.

    The model is evaluated in eval mode and left in the mode it was in. Returns the scores in
    the parameters' dtype, on their device.
    """
    if method not in ("auto", "vmap", "loop"):
        raise ValueError(f"method must be 'auto', 'vmap' or 'loop', got {method!r}.")
    if cond is not None and len(cond) != len(x):
        raise ValueError(f"cond has {len(cond)} labels for {len(x)} examples.")
    names = select_parameters(model, params)
    was_training = model.training
    model.eval()
    try:
        scores = None
        if method in ("auto", "vmap"):
            try:
                scores = _scores_vmap(model, x, cond, names, batch_size, progress)
            except Exception as err:  # an operation torch.func cannot batch
                if method == "vmap":
                    raise
                warnings.warn(f"torch.func could not vectorise {type(model).__name__} "
                              f"({type(err).__name__}: {err}); computing the scores one "
                              "example at a time instead.", stacklevel=2)
        if scores is None:
            scores = _scores_loop(model, x, cond, names, progress)
    finally:
        model.train(was_training)
    if normalize is True:
        scores = normalize_scores(scores, fisher_diagonal(scores))
    elif isinstance(normalize, Tensor):
        if normalize.shape != scores.shape[1:]:
            raise ValueError(f"the diagonal has shape {tuple(normalize.shape)}; these scores "
                             f"have P = {scores.shape[1]} coordinates (same params needed).")
        scores = normalize_scores(scores, normalize.to(scores))
    return scores


def _batches(n: int, size: int, progress: bool, desc: str):
    starts = range(0, n, max(int(size), 1))
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=desc, leave=False)
    return starts


def _scores_vmap(model, x, cond, names, batch_size, progress) -> Tensor:
    from torch.func import functional_call, grad, vmap

    wrapper = _LogProb(model)
    all_params = dict(wrapper.named_parameters())
    chosen = {f"model.{n}": all_params[f"model.{n}"].detach() for n in names}
    fixed = {k: v.detach() for k, v in all_params.items() if k not in chosen}
    fixed.update(dict(wrapper.named_buffers()))
    device = model.param_device if hasattr(model, "param_device") else x.device

    def log_p(theta, xi, ci):
        out = functional_call(wrapper, {**fixed, **theta},
                              (xi.unsqueeze(0), None if ci is None else ci.unsqueeze(0)))
        return out.squeeze(0)

    per_example = vmap(grad(log_p), in_dims=(None, 0, 0 if cond is not None else None))
    rows = []
    for i in _batches(len(x), batch_size, progress, "Fisher scores"):
        xb = x[i:i + batch_size].to(device)
        cb = cond[i:i + batch_size].to(device) if cond is not None else None
        g = per_example(chosen, xb, cb)
        rows.append(torch.cat([g[f"model.{n}"].flatten(1) for n in names], dim=1))
    return torch.cat(rows)


def _scores_loop(model, x, cond, names, progress) -> Tensor:
    chosen = dict(model.named_parameters())
    tensors = [chosen[n] for n in names]
    device = model.param_device if hasattr(model, "param_device") else x.device
    rows = []
    for i in _batches(len(x), 1, progress, "Fisher scores"):
        ci = cond[i:i + 1].to(device) if cond is not None else None
        lp = model.log_prob(x[i:i + 1].to(device), ci).sum()
        grads = torch.autograd.grad(lp, tensors, allow_unused=True)
        rows.append(torch.cat([(g if g is not None else torch.zeros_like(t)).flatten()
                               for g, t in zip(grads, tensors)]))
    return torch.stack(rows)


def nearest_neighbours(train_feats: Tensor, query_feats: Tensor,
                       k: int = 5) -> tuple[Tensor, Tensor]:
    """The ``k`` rows of ``train_feats [N, P]`` most similar (cosine) to each row of
    ``query_feats [Q, P]``: ``(indices LongTensor[Q, k], similarities Tensor[Q, k])``, most
    similar first. A zero row has similarity 0 to everything."""
    if k > train_feats.shape[0]:
        raise ValueError(f"k = {k} neighbours asked for among {train_feats.shape[0]} rows.")
    a = F.normalize(train_feats.double(), dim=1)
    b = F.normalize(query_feats.double(), dim=1)
    sims, idx = (b @ a.T).topk(k, dim=1)
    return idx, sims.to(train_feats.dtype)


def linear_probe_accuracy(train_feats: Tensor, train_labels: Tensor, test_feats: Tensor,
                          test_labels: Tensor, steps: int = 300, lr: float = 0.05,
                          weight_decay: float = 1e-3, seed: int = 0,
                          standardize: bool = True,
                          device: torch.device | str | None = None) -> float:
    """Accuracy (fraction in [0, 1]) on the test set of a logistic regression trained on
    ``train_feats [N, P]`` -> ``train_labels [N]``: full-batch Adam for ``steps`` steps from a
    seeded initialisation, in float32 on ``device`` (default: the CPU). ``standardize``
    z-scores every feature with the training set's mean and standard deviation (constant
    features become 0), so raw pixels and Fisher scores are compared on an equal footing."""
    device = torch.device(device or "cpu")
    xtr, xte = (f.detach().to(device, torch.float32) for f in (train_feats, test_feats))
    ytr, yte = (y.detach().to(device).long() for y in (train_labels, test_labels))
    if standardize:
        mean, std = xtr.mean(0), xtr.std(0, unbiased=False)
        std = torch.where(std > 0, std, torch.ones_like(std))
        xtr, xte = (xtr - mean) / std, (xte - mean) / std
    classes = int(max(ytr.max(), yte.max())) + 1
    g = torch.Generator().manual_seed(seed)
    weight = (torch.randn(xtr.shape[1], classes, generator=g) * 0.01).to(device)
    weight.requires_grad_()
    bias = torch.zeros(classes, device=device, requires_grad=True)
    opt = torch.optim.Adam([weight, bias], lr=lr, weight_decay=weight_decay)
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(xtr @ weight + bias, ytr).backward()
        opt.step()
    with torch.no_grad():
        return float(((xte @ weight + bias).argmax(1) == yte).float().mean())
