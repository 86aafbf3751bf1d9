"""An answer that runs the course's own reference earns nothing, whatever the channel that
reaches it: the grader recognises the reference's code when it runs, not the spelling that
found it. Each test hands in the cheapest way around a syntax check."""
from __future__ import annotations

import pytest

from arlab.grading.homework import PARTS, REFERENCES
from homework_e2e import failures

CHANNELS = {
    "pickle": '''
import pickle
_ref = pickle.loads(b"carlab\\nhistogram_probs\\n.")
def histogram_probs(samples, d, alpha=0.0):
    return _ref(samples, d, alpha)
''',
    "sys.modules": '''
import sys
def histogram_probs(samples, d, alpha=0.0):
    return sys.modules["arlab.models.histogram"].histogram_probs(samples, d, alpha)
''',
    "getattr on the package": '''
import importlib
def histogram_probs(samples, d, alpha=0.0):
    return getattr(importlib.import_module("ar" + "lab"), "histogram" + "_probs")(samples, d, alpha)
''',
    "the tests' own swap": '''
from arlab.grading.parts import swapped
_box = {}
with swapped(_box, ("histogram_probs",)):
    _ref = _box["histogram_probs"]
def histogram_probs(samples, d, alpha=0.0):
    return _ref(samples, d, alpha)
''',
    "a copy of its code": '''
import types, pickle
_ref = pickle.loads(b"carlab\\nhistogram_probs\\n.")
histogram_probs = types.FunctionType(_ref.__code__, _ref.__globals__, "histogram_probs",
                                     _ref.__defaults__)
''',
}


@pytest.mark.parametrize("channel", list(CHANNELS))
def test_the_reference_is_refused_through_every_channel(channel):
    ns = {"__name__": "__main__"}
    exec(CHANNELS[channel], ns)
    cells = [c for c, part in PARTS.items() if part.exercise == "histogram_probs"]
    failed = failures(ns, cells)
    assert sorted(failed) == sorted(cells), failed
    assert all("arlab's own reference implementation" in m for m in failed.values()), failed


def test_a_subclass_of_the_reference_is_refused():
    ns = {"__name__": "__main__", **REFERENCES}
    exec("class MaskedConv2d(__import__('arlab').MaskedConv2d):\n    pass\n", ns)
    cells = [c for c, part in PARTS.items() if part.exercise == "MaskedConv2d"]
    failed = failures(ns, cells)
    assert sorted(failed) == sorted(cells)
    assert all("MaskedConv2d.forward" in m or "MaskedConv2d.__init__" in m
               for m in failed.values()), failed


def test_switching_the_watch_off_is_refused():
    ns = {"__name__": "__main__"}
    exec('''
import sys, pickle
def histogram_probs(samples, d, alpha=0.0):
    sys.setprofile(None)
    return pickle.loads(b"carlab\\nhistogram_probs\\n.")(samples, d, alpha)
''', ns)
    failed = failures(ns, ["test_histogram_probs"])
    assert "switched off" in failed["test_histogram_probs"]


def test_later_exercises_may_run_the_references_they_are_given():
    """MaskedConv2d's parts swap in the course's pixelcnn_mask: running it is allowed."""
    ns = {"__name__": "__main__", **REFERENCES}
    exec('''
import torch.nn.functional as F
from torch import nn
class MaskedConv2d(nn.Conv2d):
    def __init__(self, in_ch, out_ch, kernel_size, mask_type, color_groups=1):
        super().__init__(in_ch, out_ch, kernel_size, padding=kernel_size // 2)
        self.register_buffer("mask", pixelcnn_mask(kernel_size, mask_type, in_ch, out_ch,
                                                   color_groups))
    def forward(self, x):
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)
''', ns)
    cells = [c for c, part in PARTS.items() if part.exercise == "MaskedConv2d"]
    assert failures(ns, cells) == {}
