"""Autoregressive sampling one step at a time: the image so far and the model's distribution
for what comes next."""
from __future__ import annotations

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator
from torch import Tensor

import ipywidgets as widgets
from arlab.models.base import image_layout
from arlab.viz.plots import new_figure
from arlab.viz.widgets import LABEL_STYLE, FigureWidget

_PENDING = np.array([0.80, 0.88, 1.0])  # pale blue: not drawn yet


class SampleTrajectory:
    """Every state of one seeded sampling run, computed on demand and kept.

    It repeats :func:`arlab.models.sampling.sample_autoregressive` for ``n = 1`` step by step:
    step s runs the model on the image so far, takes the parameters at the positions of rank
    ``ranks[s]`` of ``model.order()`` and draws them with ``model.head.sample`` and the one
    generator, so the last state equals ``model.sample(1, generator=...)`` (generic sampler)."""

    def __init__(self, model, seed: int = 0, cond: Tensor | None = None):
        self.model, self.seed = model, int(seed)
        self.order = model.order().cpu()
        self.ranks = torch.unique(self.order).tolist()
        self.cond = None if cond is None else model.check_cond(cond, 1)
        device = model.param_device  # the generator lives where the model samples
        self.generator = torch.Generator(device).manual_seed(self.seed)
        self.states = [torch.zeros((1, *model.data_shape), dtype=torch.long, device=device)]
        self.probs: list[Tensor] = []     # per step: [positions of the rank, levels]
        self.draws: list[Tensor] = []     # per step: [positions of the rank]

    @property
    def num_steps(self) -> int:
        return len(self.ranks)

    def positions(self, step: int) -> Tensor:
        """``BoolTensor[*data_shape]``: the positions drawn at ``step``."""
        return self.order == self.ranks[step]

    @torch.no_grad()
    def _advance(self) -> None:
        s = len(self.draws)
        was_training = self.model.training
        self.model.eval()
        try:
            x = self.states[-1]
            here = self.positions(s).to(x.device)
            params = self.model(x, self.cond)
            p = params.movedim(1, -1)[:, here]
            p = p.reshape(-1, p.shape[-1])
            self.probs.append(self.model.head.probs(p).double().cpu())
            draw = self.model.head.sample(p, self.generator).view(1, -1).to(x.device)
        finally:
            self.model.train(was_training)
        nxt = x.clone()
        nxt[:, here] = draw
        self.draws.append(draw[0].cpu())
        self.states.append(nxt)

    def state(self, step: int) -> Tensor:
        """The sample after ``step`` steps, ``LongTensor[1, *data_shape]`` (0 where not drawn)."""
        if not 0 <= step <= self.num_steps:
            raise ValueError(f"step must lie in 0..{self.num_steps}, got {step}.")
        while len(self.states) <= step:
            self._advance()
        return self.states[step]

    def next_distribution(self, step: int) -> tuple[Tensor, Tensor] | None:
        """``(probs [k, levels], drawn [k])`` for the k positions drawn at ``step``; None at
        the end."""
        if step >= self.num_steps:
            return None
        self.state(step + 1)
        return self.probs[step], self.draws[step]


def _draw_image(ax: Axes, traj: SampleTrajectory, step: int) -> None:
    model = traj.model
    c, h, w = image_layout(model.data_shape)
    x = traj.state(step)[0].cpu().view(c, h, w).double() / max(model.levels - 1, 1)
    done = (traj.order < traj.ranks[step]).view(c, h, w) if step < traj.num_steps else \
        torch.ones(c, h, w, dtype=torch.bool)
    rgb = (x.permute(1, 2, 0) if c == 3 else x[:1].permute(1, 2, 0).expand(h, w, 3)).numpy()
    rgb = np.where(done.any(0).numpy()[..., None], rgb, _PENDING)
    ax.imshow(rgb, interpolation="nearest")
    if step < traj.num_steps:
        nxt = traj.positions(step).view(c, h, w).any(0)
        for i, j in nxt.nonzero().tolist():
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="#d62728",
                                   lw=2.5))
    for axis in (ax.xaxis, ax.yaxis):  # rows and columns are whole numbers
        axis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("column (pixels)")
    ax.set_ylabel("row (pixels)")
    ax.set_title(f"after {step} of {traj.num_steps} steps\n"
                 "(pale blue: not drawn yet, red box: drawn next)", fontsize="medium")


def _draw_distribution(ax: Axes, traj: SampleTrajectory, step: int) -> None:
    dist = traj.next_distribution(step)
    ax.set_xlabel("level")
    ax.set_ylabel("probability")
    if dist is None:
        ax.set_title("done: every position is drawn")
        ax.set_ylim(0, 1)
        return
    probs, drawn = dist
    k, levels = probs.shape
    width = 0.8 / k
    where = traj.positions(step).nonzero().tolist()
    for n in range(k):
        xs = np.arange(levels) + (n - (k - 1) / 2) * width
        ax.bar(xs, probs[n].numpy(), width=width, color=f"C{n}", alpha=0.8,
               label=f"position {tuple(where[n])}")
        ax.bar(xs[int(drawn[n])], float(probs[n, int(drawn[n])]), width=width, fill=False,
               edgecolor="black", lw=2)
    ax.set_ylim(0, 1.05)
    if levels <= 16:
        ax.set_xticks(range(levels))
    drew = ", ".join(str(int(v)) for v in drawn)
    ax.set_title(f"p(next | so far); drew {drew} (black outline)", fontsize="medium")
    ax.legend(fontsize="small")


class SamplingStepper(FigureWidget):
    """Step through the sampling of one image position by position (in ``model.order()``).

    Controls: ``step`` (slider), buttons ``back``, ``forward``, ``to_end``, ``reset``, and
    ``seed``. ``final_sample()`` equals ``model.sample(1, generator=torch.Generator()
    .manual_seed(seed))`` for models that use the generic sampler."""

    def __init__(self, model, seed: int = 0, cond: Tensor | None = None, step: int = 0):
        self.model, self.cond = model, cond
        self.trajectory = SampleTrajectory(model, seed, cond)
        last = self.trajectory.num_steps
        self.step = widgets.IntSlider(value=step, min=0, max=last, description="step",
                                      style=LABEL_STYLE)
        self.seed = widgets.BoundedIntText(value=seed, min=0, max=2**31 - 1,
                                           description="seed", style=LABEL_STYLE,
                                           layout=widgets.Layout(width="150px"))
        self.back = widgets.Button(description="< back")
        self.forward = widgets.Button(description="next >")
        self.to_end = widgets.Button(description="to the end >>")
        self.reset = widgets.Button(description="reset")
        self.back.on_click(lambda _: self._go(self.step.value - 1))
        self.forward.on_click(lambda _: self._go(self.step.value + 1))
        self.to_end.on_click(lambda _: self._go(last))
        self.reset.on_click(lambda _: self._go(0))
        self._setup([self.back, self.forward, self.to_end, self.reset, self.step, self.seed])

    def _go(self, step: int) -> None:
        self.step.value = max(0, min(self.trajectory.num_steps, step))

    def _sync(self) -> None:
        if self.seed.value != self.trajectory.seed:
            self.trajectory = SampleTrajectory(self.model, self.seed.value, self.cond)

    def current_image(self) -> Tensor:
        """The sample so far, ``LongTensor[1, *data_shape]``."""
        return self.trajectory.state(self.step.value)

    def current_distribution(self) -> tuple[Tensor, Tensor] | None:
        """``(probs [k, levels], drawn [k])`` for the positions drawn next (None at the end)."""
        return self.trajectory.next_distribution(self.step.value)

    def final_sample(self) -> Tensor:
        return self.trajectory.state(self.trajectory.num_steps)

    def figure(self) -> Figure:
        return self._figure(self.trajectory, self.step.value)

    @staticmethod
    def _figure(traj: SampleTrajectory, step: int) -> Figure:
        fig = new_figure(10, 4.0)
        img_ax, bar_ax = fig.subplots(1, 2, width_ratios=[1, 1.4])
        _draw_image(img_ax, traj, step)
        _draw_distribution(bar_ax, traj, step)
        fig.suptitle(f"{type(traj.model).__name__}, seed {traj.seed}", fontsize="medium")
        return fig

    @classmethod
    def static(cls, model, step: int, seed: int = 0, cond: Tensor | None = None) -> Figure:
        """The stepper's figure after ``step`` steps of the run seeded by ``seed``."""
        return cls._figure(SampleTrajectory(model, seed, cond), step)
