"""The dependence engine (arlab.receptive.dependence), attacked from both sides.

- A layer that is causal, but whose float32 outputs move by rounding when a later input
  changes, is judged causal: by the engine, and by every graded part that checks causality.
- A layer that leaks a later input with weight 1e-4 is judged not causal, with a message that
  names the output and the input; in float64 and when the model runs in float32 only, and
  when the leak hides from gradients (``detach``).
"""
from __future__ import annotations

import contextlib
import functools
import io
import re

import pytest
import torch
import torch.nn.functional as F

from arlab.grading import contract
from arlab.grading.checks import GradingError, check_causal
from arlab.grading.homework import PARTS
from arlab.receptive import Dependence, dependence, positions
from homework_e2e import code, failures, load

LEAK = 1e-4


def shifted_sum(x):  # output t = x[t-1] + x[t-2]: causal
    pad = F.pad(x, (2, 0))
    return pad[:, 1:-1] + pad[:, :-2]


def rounding(y, x):
    """y plus a term that is zero in exact arithmetic but rounds differently with every input
    (a normalisation-like mean of ALL inputs, later ones included)."""
    s = x.reshape(x.shape[0], -1).to(y.dtype).mean(1).view(-1, *[1] * (y.dim() - 1)) * 3.0
    return (y + s) - s


def later(x, like, dim=-1):
    """The next position's value along ``dim`` (a later one: the last wraps to the first),
    averaged over channels and broadcast to ``like``'s shape."""
    nxt = x.roll(-1, dims=dim).to(like.dtype)
    if nxt.dim() == like.dim() and nxt.shape[1] != like.shape[1]:
        nxt = nxt.mean(1, keepdim=True)
    return nxt.expand_as(like) if nxt.shape != like.shape else nxt


class Float32Only(torch.nn.Module):
    """Refuses float64 (as a submission that casts its inputs to float32 would)."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        if x.dtype == torch.float64 or any(p.dtype == torch.float64 for p in self.parameters()):
            raise TypeError("this model runs in float32 only")
        return self.inner(x)


def test_positions_number_the_chosen_axes():
    assert positions((2, 3), (1,)).tolist() == [[0, 1, 2], [0, 1, 2]]
    assert positions((2, 2)).tolist() == [[0, 1], [2, 3]]


def test_engine_table_is_exact_and_says_how():
    found = dependence(shifted_sum, torch.tensor([[1, 0, 1, 1, 0]]).double(), levels=2)
    expected = [[s in (t - 1, t - 2) for s in range(5)] for t in range(5)]
    assert found.seen.tolist() == expected
    assert "float64 gradients" in found.method and "perturbation" in found.method
    assert Dependence.described(found.how()) == found.method


@pytest.mark.parametrize("force32", [False, True], ids=["float64", "float32-only"])
def test_rounding_is_not_dependence_and_a_small_leak_is(force32):
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    conv = torch.nn.Conv1d(1, 1, 3, padding=2)

    class Noisy(torch.nn.Module):
        def __init__(self, leak):
            super().__init__()
            self.conv, self.leak = conv, leak

        def forward(self, x):  # [N, 1, L]: output t sees t-2..t
            y = rounding(self.conv(x)[..., :x.shape[-1]], x)
            return y + self.leak * later(x, y) if self.leak else y

    order = torch.arange(12)
    for leak in (0.0, LEAK):
        model = Noisy(leak)
        model = Float32Only(model) if force32 else model
        if force32:  # the float32 kernels really do move the output by rounding
            x = torch.randn(1, 1, 12, generator=g)
            x2 = x.clone()
            x2[..., -1] += 1.0
            with torch.no_grad():
                moved = (model(x2) - model(x)).abs()[..., :-1].max()
            assert 0 < moved < 1e-5 if not leak else moved > 5e-5
        if not leak:
            check_causal(model, (1, 12), order.view(1, 12), levels=None, strict=False,
                         need_some=False)
        else:
            with pytest.raises(GradingError, match=r"output \(0, \d+\) depends on input "
                                                   r"\(0, \d+\), which comes later") as err:
                check_causal(model, (1, 12), order.view(1, 12), levels=None, strict=False,
                             need_some=False)
            assert ("float32 perturbation" if force32 else "float64 gradients") in str(err.value)


def test_a_leak_hidden_from_gradients_is_found_by_perturbation():
    def sneaky(x):  # reads the next input through detach: zero gradient, real dependence
        return shifted_sum(x) + LEAK * x.detach().roll(-1, dims=1)

    with pytest.raises(GradingError, match="depends on input"):
        check_causal(sneaky, (6,), torch.arange(6), levels=None, need_some=False)


# -- every graded part that decides causality or compares outputs, attacked ---------------

def _wrap_class(cls, transform):
    class Wrapped(cls):
        def forward(self, *args, **kwargs):
            return transform(args, super().forward(*args, **kwargs))

    Wrapped.__name__ = Wrapped.__qualname__ = cls.__name__
    return Wrapped


FORCE32 = {"on": False}  # the answers refuse float64, so the engine must judge in float32


def _tensor_transform(leak: bool, dim: int):
    def apply(args, y):
        x = args[0]
        if FORCE32["on"] and y.dtype == torch.float64:
            raise TypeError("this answer runs in float32 only")
        y = rounding(y, x)
        return y + LEAK * later(x, y, dim) if leak else y
    return apply


def _pair_transform(leak: bool):  # (v, h) or (residual, skip): both outputs
    def apply(args, out):
        x = args[-1]
        return tuple(_tensor_transform(leak, -1)((x,), y) for y in out)
    return apply


def _trained(leak: bool, answer):
    def train_pixelcnn(train, test):
        return _Wrapper(answer(train, test), _tensor_transform(leak, -1))
    return train_pixelcnn


class _Wrapper(torch.nn.Module):
    def __init__(self, inner, transform):
        super().__init__()
        self.inner, self.transform = inner, transform

    def forward(self, x):
        return self.transform((x,), self.inner(x))


def _mask(leak: bool, answer):
    def pixelcnn_mask(kernel_size, mask_type, in_channels, out_channels, color_groups=1):
        mask = answer(kernel_size, mask_type, in_channels, out_channels, color_groups)
        if leak and kernel_size > 1:
            mask = mask.clone()
            mask[..., -1, -1] = LEAK  # the bottom-right tap reads a later pixel
        return mask
    return pixelcnn_mask


def _layer(transform):
    return lambda leak, answer: _wrap_class(answer, transform(leak))


ATTACKS = {  # exercise -> (assignment, build(leak, a correct answer), message of the leak)
    "CoordinateRNN": ("hw1_foundations", _layer(lambda leak: _tensor_transform(leak, -1)),
                      r"logit of pixel \(\d+, \d+\) changes when (itself|pixel \(\d+, \d+\))"),
    "MADE": ("hw2_masked_models", _layer(lambda leak: _tensor_transform(leak, -1)),
             r"(logit \d+ \(rank \d+\) depends on input \d+|differs from the expected)"),
    "CausalConv1d": ("hw2_masked_models", _layer(lambda leak: _tensor_transform(leak, -1)),
                     r"differs from the expected values .* at index"),
    "GatedResidualBlock": ("hw2_masked_models", _layer(_pair_transform),
                           r"differs from the expected values .* at index"),
    "pixelcnn_mask": ("hw3_pixel_models", _mask, r"pixelcnn_mask\(.*\)\[\d+, \d+, \d+, \d+\]"),
    "MaskedConv2d": ("hw3_pixel_models", _layer(lambda leak: _tensor_transform(leak, -1)),
                     r"differs from the expected values .* at index"),
    "GatedPixelCNNLayer": ("hw3_pixel_models", _layer(_pair_transform),
                           r"output at pixel \(\d+, \d+\) depends on input pixel \(\d+, \d+\)"),
    "CausalSelfAttention": ("hw3_pixel_models", _layer(lambda leak: _tensor_transform(leak, 1)),
                            r"output \d+ changes when position \d+ > \d+ changes"),
    "train_pixelcnn": ("hw3_pixel_models", _trained,
                       r"logit at pixel \(\d+, \d+\) changes when the input at"),
}


@functools.lru_cache(maxsize=None)
def _answered(assignment: str, exercise: str) -> tuple[dict, object]:
    """The solution notebook's given and answer cells run (no tests), then the exercise's
    correct answer written differently (a fixture): its namespace and that answer."""
    h = load(assignment)
    ns: dict = {"__name__": "__main__"}
    with contextlib.redirect_stdout(io.StringIO()):
        for gid, cell in h.cells.items():
            if not contract.is_test(cell):
                exec(compile(code(cell.source), f"<cell {gid}>", "exec"), ns)
        exec(compile(h.different[exercise], "<different answer>", "exec"), ns)
    return ns, ns[exercise]


@pytest.fixture(params=[False, True], ids=["float64", "float32-only"])
def force32(request):
    FORCE32["on"] = request.param
    yield request.param
    FORCE32["on"] = False


@pytest.mark.parametrize("exercise", list(ATTACKS))
def test_parts_judge_rounding_causal_and_a_small_leak_not(exercise, force32):
    assignment, build, message = ATTACKS[exercise]
    cells = [c for c, part in PARTS.items() if part.exercise == exercise]
    base, answer = _answered(assignment, exercise)
    ns = dict(base)
    ns[exercise] = build(False, answer)
    assert failures(ns, cells) == {}, f"{exercise}: rounding alone was judged a failure"
    ns[exercise] = build(True, answer)
    failed = failures(ns, cells)
    assert failed, f"{exercise}: a leak of weight {LEAK} was not noticed"
    assert any(re.search(message, text) for text in failed.values()), failed
    decided = [text for text in failed.values() if "Decided by" in text]
    assert not force32 or all("float32" in t for t in decided), decided


def test_a_model_causal_on_noise_but_copying_its_pixel_on_real_images_scores_nothing():
    """Probed on random images alone, this model is causal; on images like the data (mean
    below 0.35) it copies the pixel it predicts. The grader also probes held-back real
    images, so the part scores 0 and says why."""
    base, answer = _answered("hw3_pixel_models", "train_pixelcnn")

    class LooksAtData(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            honest = self.inner(x)
            like_data = x.flatten(1).mean(1).view(-1, 1, 1, 1) < 0.35
            return torch.where(like_data, 8.0 * (2 * x - 1), honest)

    ns = dict(base)
    ns["train_pixelcnn"] = lambda train, test: LooksAtData(answer(train, test))
    failed = failures(ns, ["test_train_pixelcnn"])
    assert "not autoregressive on held-back images like the training data" in \
        failed["test_train_pixelcnn"], failed
