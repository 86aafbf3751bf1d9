"""Widget redraws: the kernel's seconds from a control change to the new figure in the
widget's output (the figure, its PNG, the output update), per widget and control.

    python -m benchmarks.widgets            # record the `widgets` section
"""
from __future__ import annotations

import statistics
import time

import torch

from benchmarks.common import Record, command_line, table

REPEATS = 7


def _widgets():
    """The walkthrough's widgets as its notebooks build them (untrained models), each with
    a control move per kind: ``{name: (widget, {control: move})}``."""
    from arlab.data import toy_1d
    from arlab.models import MADE, PixelCNN
    from arlab.viz import (HistogramBinsWidget, InverseCDFWidget, MADEWidget,
                           ReceptiveFieldExplorer, SamplingStepper, WaveNetWidget)

    data = toy_1d("mixture")
    d, train, test = data.levels, data.train[:, 0], data.test[:, 0]
    p = torch.bincount(train, minlength=d).double() / len(train)
    torch.manual_seed(0)
    inv = InverseCDFWidget(p, u=0.5)
    hist = HistogramBinsWidget(train[:200], test, d, bins=100, alpha=0.5)
    made = MADEWidget(d=6, hidden="8,8", ordering="raster", seed=0, output=4)
    wave = WaveNetWidget(layers=4, pattern="1,2,4,...", kernel_size=2, length=40)
    expl = ReceptiveFieldExplorer(model="pixelcnn", layers=3, kernel_size=5, pixel=(8, 5),
                                  image_size=12)
    four = ReceptiveFieldExplorer(model="pixelsnail", layers=6, kernel_size=3, pixel=(13, 8),
                                  mode="magnitude", side_by_side=True, image_size=16)
    step = SamplingStepper(PixelCNN((1, 20, 20), 2, channels=16, layers=3), seed=0, step=170)
    made_step = SamplingStepper(MADE((1, 28, 28), levels=2, hidden_sizes=(64,),
                                     ordering="even_odd"), seed=0, step=588)

    def nudge(slider, up=1):
        return lambda i: setattr(slider, "value", slider.value + (up if i % 2 else -up))

    def cycle(dropdown):
        opts = list(dropdown.options)
        return lambda i: setattr(dropdown, "value", opts[i % len(opts)][1]
                                 if isinstance(opts[0], tuple) else opts[i % len(opts)])

    return {
        "inverse_cdf": (inv, {"slider u": nudge(inv.u, 0.01)}),
        "histogram_bins": (hist, {"slider bins": nudge(hist.bins),
                                  "slider alpha": nudge(hist.alpha, 0.1)}),
        "made": (made, {"slider D": nudge(made.d), "dropdown output": cycle(made.output_unit)}),
        "wavenet": (wave, {"slider position": nudge(wave.position),
                           "dropdown dilations": cycle(wave.pattern)}),
        "explorer_pixelcnn": (expl, {"slider column": nudge(expl.col),
                                     "dropdown model": cycle(expl.model)}),
        "explorer_four_models": (four, {"slider column": nudge(four.col)}),
        "stepper_pixelcnn": (step, {"button next": lambda i: step._go(step.step.value + 1)}),
        "stepper_made": (made_step, {"button next":
                                     lambda i: made_step._go(made_step.step.value + 1)}),
    }


def main(quick: bool = False, device: str = "cpu", command: str = "") -> Record:
    rec = Record("widgets", command or command_line(),
                 notes="kernel side of one redraw (figure, PNG, output update), median of "
                       f"{3 if quick else REPEATS} moves after a warm-up; the browser adds "
                       "~0.1 s to show it (build/browser/report.md); on a 2-core machine "
                       "shared with other jobs, so expect noise of tens of percent")
    repeats = 3 if quick else REPEATS
    for name, (widget, moves) in _widgets().items():
        widget._live = True
        start = time.perf_counter()
        widget.redraw()
        rec.add(f"{name}.first_draw_seconds", time.perf_counter() - start, "s")
        for control, move in moves.items():
            move(0)  # warm-up: fills the caches this control uses
            seconds = []
            for i in range(1, repeats + 1):
                start = time.perf_counter()
                move(i)
                seconds.append(time.perf_counter() - start)
            key = control.replace(" ", "_")
            rec.add(f"{name}.redraw_seconds.{key}", statistics.median(seconds), "s",
                    f"max {max(seconds):.3g} s")
    return rec


def summarize(section: str, values: dict) -> list[str]:
    rows = []
    for key, v in values.items():
        if ".redraw_seconds." in key:
            name, control = key.split(".", 1)[1].split(".redraw_seconds.")
            first = values.get(f"{section}.{name}.first_draw_seconds", {}).get("value")
            rows.append([name, control.replace("_", " "), f"{v['value']:.3g}",
                         "" if first is None else f"{first:.3g}"])
    return table(["widget", "control moved", "redraw s (median)", "first draw s"], rows)


if __name__ == "__main__":
    main(command="python -m benchmarks.widgets").save()
