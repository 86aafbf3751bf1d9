"""The checks the homework tests call: they pass right answers and explain wrong ones."""
import pytest
import torch

from arlab.grading.checks import (GradingError, all_configs, check_causal, check_close,
                                  check_equal, check_normalised, check_shape)


def shifted_sum(x):  # output t = x[t-1] + x[t-2]: causal in raster order
    x = x.double()
    pad = torch.nn.functional.pad(x, (2, 0))
    return pad[:, 1:-1] + pad[:, :-2]


def test_check_causal_passes_and_names_the_leak():
    order = torch.arange(5)
    check_causal(shifted_sum, (5,), order)
    with pytest.raises(GradingError, match=r"output 0 depends on input 1, which comes later"):
        check_causal(lambda x: x.double().roll(-1, 1), (5,), order, need_some=False)
    with pytest.raises(GradingError, match="same step"):
        check_causal(lambda x: x.double() * 2, (5,), order)
    with pytest.raises(GradingError, match="depends on no input"):
        check_causal(lambda x: x.double() * 0, (5,), order)


def test_check_close_messages():
    check_close(torch.ones(3), torch.ones(3), "probs")
    with pytest.raises(GradingError, match=r"probs has shape \(2,\); expected \(3,\)"):
        check_close(torch.ones(2), torch.ones(3), "probs")
    with pytest.raises(GradingError, match=r"at index \[1\] it is 5, expected 1"):
        check_close(torch.tensor([1.0, 5.0, 1.0]), torch.ones(3), "probs")
    with pytest.raises(GradingError, match="non-finite"):
        check_close(torch.tensor([1.0, float("nan"), 1.0]), torch.ones(3), "probs")
    with pytest.raises(GradingError, match="should be a Tensor"):
        check_shape([1, 2], (2,), "probs")
    with pytest.raises(GradingError):
        check_equal(torch.tensor([0, 1]), torch.tensor([0, 2]), "mask")


def test_check_normalised():
    logits = torch.randn(3, 3, generator=torch.Generator().manual_seed(0))
    lp_table = torch.log_softmax(logits.flatten(), 0).view(3, 3)
    check_normalised(lambda x: lp_table[x[:, 0], x[:, 1]], (2,), 3)
    assert all_configs((2,), 3).shape == (9, 2)
    with pytest.raises(GradingError, match="not normalised"):
        check_normalised(lambda x: torch.zeros(x.shape[0]), (2,), 3)
