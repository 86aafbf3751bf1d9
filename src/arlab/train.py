"""The one training loop: ``fit(model, train, test)`` for any model with ``loss(x, cond)``.

Progress bar, train loss per step and test loss per epoch (before training too), both in
nats/dim and bits/dim, device choice, bf16 autocast where native, gradient clipping, seeded.
"""
from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import Tensor, nn

from arlab.compute import device as best_device
from arlab.compute import native_bf16
from arlab.units import nats_to_bits

Data = Tensor | tuple[Tensor, Tensor]


@dataclass
class History:
    """What ``fit`` saw: train loss per step and test loss per epoch, in nats/dim."""

    train_steps: list[int] = field(default_factory=list)
    train_nats_per_dim: list[float] = field(default_factory=list)
    test_epochs: list[int] = field(default_factory=list)
    test_nats_per_dim: list[float] = field(default_factory=list)
    steps_per_epoch: int = 1
    seconds: float = 0.0

    @classmethod
    def concat(cls, runs: Sequence[History]) -> History:
        """One History for consecutive ``fit`` runs on the same model (e.g. training in chunks
        with samples drawn in between): steps and epochs continue where the previous run
        ended, and each later run's first test point (the previous end, measured again) is
        dropped."""
        if not runs:
            raise ValueError("History.concat needs at least one History.")
        out = cls(steps_per_epoch=runs[0].steps_per_epoch)
        done = 0
        for i, run in enumerate(runs):
            keep = 0 if i == 0 else 1
            out.train_steps += [done + s for s in run.train_steps]
            out.train_nats_per_dim += run.train_nats_per_dim
            out.test_epochs += [done / run.steps_per_epoch + e for e in run.test_epochs[keep:]]
            out.test_nats_per_dim += run.test_nats_per_dim[keep:]
            out.seconds += run.seconds
            done += run.train_steps[-1] if run.train_steps else 0
        return out

    @property
    def train_bits_per_dim(self) -> list[float]:
        return [nats_to_bits(v) for v in self.train_nats_per_dim]

    @property
    def test_bits_per_dim(self) -> list[float]:
        return [nats_to_bits(v) for v in self.test_nats_per_dim]

    @property
    def final_test_nats_per_dim(self) -> float:
        return self.test_nats_per_dim[-1] if self.test_nats_per_dim else math.nan

    @property
    def final_test_bits_per_dim(self) -> float:
        return nats_to_bits(self.final_test_nats_per_dim)

    def summary(self) -> dict[str, float]:
        """Test NLL after and before training (nats/dim, bits/dim) and the time taken: the
        entry a notebook puts in its ``results`` dict."""
        return {"nats_per_dim": self.final_test_nats_per_dim,
                "bits_per_dim": self.final_test_bits_per_dim,
                "untrained_nats_per_dim": self.test_nats_per_dim[0] if self.test_nats_per_dim
                else math.nan,
                "seconds": round(self.seconds, 2)}

    def plot(self, ax=None, bits: bool = True, title: str | None = None):
        """Train (per step) and test (per epoch) curves on one axis; returns the axis."""
        import matplotlib.pyplot as plt

        ax = ax or plt.subplots(figsize=(5, 3.2))[1]
        conv = nats_to_bits if bits else (lambda v: v)
        unit = "bits/dim" if bits else "nats/dim"
        epochs = [s / self.steps_per_epoch for s in self.train_steps]
        ax.plot(epochs, [conv(v) for v in self.train_nats_per_dim], lw=1, alpha=0.7, label="train")
        ax.plot(self.test_epochs, [conv(v) for v in self.test_nats_per_dim], "o-", label="test")
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"negative log-likelihood ({unit})")
        ax.set_title(title or "training curves")
        ax.legend()
        return ax


def _split_data(data: Data | None) -> tuple[Tensor | None, Tensor | None]:
    if data is None or isinstance(data, Tensor):
        return data, None
    x, labels = data
    return x, labels


def _batches(x: Tensor, labels: Tensor | None, batch_size: int, g: torch.Generator | None):
    idx = torch.randperm(x.shape[0], generator=g) if g is not None else torch.arange(x.shape[0])
    for i in range(0, x.shape[0], batch_size):
        j = idx[i:i + batch_size]
        yield x[j], (labels[j] if labels is not None else None)


@torch.no_grad()
def evaluate(model: nn.Module, data: Data, batch_size: int = 256, device=None,
             conditional: bool = False) -> float:
    """Mean NLL in nats per dimension of ``model`` on ``data`` (``x`` or ``(x, labels)``)."""
    x, labels = _split_data(data)
    device = torch.device(device) if device else next(model.parameters()).device
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    try:
        for xb, yb in _batches(x, labels, batch_size, None):
            cond = yb.to(device) if conditional and yb is not None else None
            lp = model.log_prob(xb.to(device), cond)
            total += float(-lp.double().sum())
            count += xb.shape[0]
    finally:
        model.train(was_training)
    return total / count / x[0].numel()


def fit(model: nn.Module, train: Data, test: Data | None = None, *, epochs: int = 1,
        batch_size: int = 64, lr: float = 1e-3, weight_decay: float = 0.0,
        max_steps: int | None = None, clip_grad: float | None = 1.0, conditional: bool = False,
        transform: Callable[[Tensor], Tensor] | None = None, device=None, seed: int = 0,
        bf16: bool = True, progress: bool = True, eval_batch_size: int = 256,
        optimizer: torch.optim.Optimizer | None = None, checkpoint: str | None = None,
        train_yourself: bool | None = None, max_seconds: float | None = None) -> History:
    """Train ``model`` by minimising ``model.loss(x, cond)`` with Adam.

    Args:
        train, test: ``x`` (levels ``[N, *data_shape]``) or ``(x, labels)``.
        epochs: passes over ``train``; ``max_steps`` caps the total number of steps.
        max_seconds: stop after the first step that ends this many seconds into training
            (the test passes are not counted): training for a time instead of a number of
            steps, as a benchmark at equal time does. Not with ``checkpoint``, whose weights
            must be reproducible.
        conditional: pass the labels as ``cond``.
        transform: applied to each training batch (e.g. ``arlab.data.dynamic_binarize``).
        device: default: cuda, then mps, then cpu.
        bf16: bfloat16 autocast for the training steps where the device computes it natively
            (:func:`arlab.compute.native_bf16`); evaluation always runs in full precision.
        checkpoint: the name of this run's shipped trained weights (``"07_pixelcnn/mnist"``,
            see :mod:`arlab.checkpoints`): unless ``train_yourself``, they are loaded and
            checked against their recorded test nats/dim instead of training, and the recorded
            History is returned. Without a checkpoint for this budget and model, it trains.
        train_yourself: train even when there is a checkpoint; default
            :func:`arlab.checkpoints.train_yourself` (True on a GPU).
    Returns:
        A :class:`History` (test loss measured before training and after every epoch).
        The model is left in eval mode (``model.training`` is False), ready to sample or
        evaluate, also when training stops with an error; call ``model.train()`` to go on
        training it by hand.
    """
    device = torch.device(device) if device else best_device()
    torch.manual_seed(seed)
    autocast = bf16 and native_bf16(device)
    settings = dict(epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                    max_steps=max_steps, clip_grad=clip_grad, conditional=conditional,
                    seed=seed, eval_batch_size=eval_batch_size, bf16=bool(autocast),
                    device=device.type)
    if checkpoint is not None and max_seconds is not None:
        raise ValueError("fit(max_seconds=...) trains for a time, which no checkpoint can "
                         "reproduce: train by epochs or max_steps to use checkpoint=.")
    if checkpoint is not None:
        from arlab import checkpoints

        if test is None:
            raise ValueError("fit(checkpoint=...) needs the test data to check the weights on.")
        if train_yourself is None:
            train_yourself = checkpoints.train_yourself()
        resume = checkpoints.mode() == "resume"   # keep what still fits, train the rest
        if resume or (not train_yourself and checkpoints.mode() != "write"):
            initial = copy.deepcopy(model.state_dict()) if resume else None
            try:
                loaded = checkpoints.try_load(checkpoint, model, test, device=device,
                                              conditional=conditional,
                                              eval_batch_size=eval_batch_size, verbose=progress,
                                              settings=settings if resume else None)
            except checkpoints.CheckpointError:
                if not resume:
                    raise
                model.load_state_dict(initial)   # train from the seeded start, not stale weights
                loaded = None
            if loaded is not None:
                return loaded
    g = torch.Generator().manual_seed(seed)
    model.to(device)
    x, labels = _split_data(train)
    if conditional and labels is None:
        raise ValueError("conditional=True needs labels: pass train as (x, labels).")
    opt = optimizer or torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps_per_epoch = math.ceil(x.shape[0] / batch_size)
    total = epochs * steps_per_epoch if max_steps is None else min(max_steps, epochs * steps_per_epoch)
    hist = History(steps_per_epoch=steps_per_epoch)

    def run_test(epoch: float):
        if test is not None:
            hist.test_epochs.append(epoch)
            hist.test_nats_per_dim.append(
                evaluate(model, test, eval_batch_size, device, conditional))

    from tqdm.auto import tqdm

    start = time.perf_counter()
    run_test(0)
    bar = tqdm(total=total, desc=type(model).__name__, disable=not progress, leave=False)
    step, trained = 0, 0.0   # trained: seconds spent in training steps

    def going_on() -> bool:
        return step < total and (max_seconds is None or trained < max_seconds)

    model.train()
    try:
        while going_on():
            for xb, yb in _batches(x, labels, batch_size, g):
                if not going_on():
                    break
                began = time.perf_counter()
                if transform is not None:
                    xb = transform(xb)
                xb = xb.to(device, non_blocking=True)
                cond = yb.to(device) if conditional else None
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
                    loss = model.loss(xb, cond)
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"the loss became {loss.item()} at step {step}; lower "
                                             "the learning rate or check the model's output.")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if clip_grad:
                    nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
                opt.step()
                trained += time.perf_counter() - began
                step += 1
                hist.train_steps.append(step)
                hist.train_nats_per_dim.append(float(loss.detach()))
                bar.update(1)
                bits = nats_to_bits(hist.train_nats_per_dim[-1])
                bar.set_postfix(bits_per_dim=f"{bits:.4f}")
            run_test(step / steps_per_epoch)
    finally:
        bar.close()
        model.eval()   # fit returns (or raises) with the model in eval mode
    hist.seconds = time.perf_counter() - start
    if checkpoint is not None and checkpoints.mode() in ("write", "resume"):
        path = checkpoints.save(checkpoint, model, hist, test, settings)
        print(f"trained here and saved as {path.relative_to(checkpoints.ROOT.parent)}")
    return hist
