"""Mutants written by hand, for the slips that one syntax-tree change cannot make: a path the
reference shares with code that every test runs (the ``past`` given to a WaveNet layer), and
height swapped with width. Each is (exercise, the original line, its replacement), stripped;
the run applies it to the answer cell and judges it like any other mutant."""
from __future__ import annotations

HAND: list[tuple[str, str, str]] = [
    ("CausalConv1d", "if past is None:",            # ignores a given past: zeros instead
     "if True:"),
    ("CausalConv1d", "full = torch.cat([past, x], dim=-1)",   # reads the history backwards
     "full = torch.cat([past.flip(-1), x], dim=-1)"),
    ("GatedResidualBlock", "a, b = self.dilated(x, past).chunk(2, dim=1)",  # drops the past
     "a, b = self.dilated(x).chunk(2, dim=1)"),
    ("CoordinateRNN",
     "self.append_coords, self.height, self.width = append_coords, height, width",
     "self.append_coords, self.height, self.width = append_coords, width, height"),
    ("receptive_field_map", "c, h, w = image_shape",
     "c, w, h = image_shape"),
]
