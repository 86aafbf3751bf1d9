"""Proofs for every model of the zoo: exact causality, normalisation, sampling, learning.

Each zoo entry is built small, in float64 where exactness is checked:
- causality: the parameters at every position depend on no input of equal or later rank
  (float64 gradients, or perturbation for models with one-hot inputs), and on some earlier
  input when there is one;
- normalisation: exp(log_prob) sums to 1 over every configuration of a tiny input;
- sampling: the frequencies of many seeded samples match exp(log_prob) (chi-square);
- learning: a few smoke-budget steps lower the test NLL.
"""
import itertools
import math

import pytest
import torch

from arlab.models import ONE_D, model_class, zoo
from arlab.receptive import causality_violations, receptive_field

NAMES = list(zoo())
IMAGE_SHAPES = {  # (data_shape, levels) for causality; enumeration uses the small ones
    "causal": [((1, 4, 4), 2), ((3, 2, 2), 4), ((5,), 3)],
    "enum": [((1, 2, 2), 2), ((3,), 3), ((3, 1, 2), 2)],
}
DLM = {"logistic_mixture", "pixelcnn_dlm", "gated_pixelcnn_dlm"}
SEQUENCE_OK = {"rnn", "rnn_gru", "rnn_coords", "made", "made_multi", "wavenet", "wavenet_coords"}


def _shapes(name: str, kind: str):
    if name in ONE_D:
        return [(ONE_D[name], 5 if name != "two_variable" else 4)]
    out = []
    for shape, levels in IMAGE_SHAPES[kind]:
        if len(shape) == 1 and name not in SEQUENCE_OK:
            continue
        if name in DLM:
            levels = max(levels, 4)
            if kind == "enum":
                shape = (1, 2, 2) if len(shape) == 3 else shape
        out.append((shape, levels))
    return list(dict.fromkeys(out))


def _build(name, shape, levels, seed=0, **kw):
    torch.manual_seed(seed)
    return zoo()[name](data_shape=shape, levels=levels, **kw).double().eval()


def _supports_cond(name) -> bool:
    import inspect

    return "num_classes" in inspect.signature(model_class(name)).parameters


def _all_configs(shape, levels):
    n = math.prod(shape)
    grid = torch.tensor(list(itertools.product(range(levels), repeat=n)))
    return grid.view(-1, *shape)


CAUSAL = [(n, s, k) for n in NAMES for s, k in _shapes(n, "causal")]
ENUM = [(n, s, k) for n in NAMES for s, k in _shapes(n, "enum")]


@pytest.mark.parametrize("name,shape,levels", CAUSAL, ids=lambda v: str(v))
def test_causal_at_every_position(name, shape, levels):
    model = _build(name, shape, levels)
    order = model.order()
    assert order.shape == shape and order.dtype == torch.long
    for pos in itertools.product(*[range(s) for s in shape]):
        bad = causality_violations(model, pos)
        assert not bad.any(), (f"{name}: output at {pos} (rank {int(order[pos])}) depends on "
                               f"inputs at {bad.nonzero().tolist()}, which come at or after it")
        if int(order[pos]) > int(order.min()):
            seen = receptive_field(model, pos)
            assert seen.any(), f"{name}: output at {pos} ignores every earlier input"


@pytest.mark.parametrize("name,shape,levels", ENUM, ids=lambda v: str(v))
def test_normalised_by_enumeration(name, shape, levels):
    model = _build(name, shape, levels)
    x = _all_configs(shape, levels)
    total = model.log_prob(x).logsumexp(0).exp().item()
    assert total == pytest.approx(1.0, abs=1e-5), f"{name}: probabilities sum to {total}"
    if _supports_cond(name):
        model = _build(name, shape, levels, num_classes=3)
        outs = []
        for c in range(3):
            lp = model.log_prob(x, torch.full((x.shape[0],), c))
            assert lp.logsumexp(0).exp().item() == pytest.approx(1.0, abs=1e-5)
            outs.append(lp)
        # the label matters (after a nudge away from the zero-initialised embedding)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.3 * torch.randn_like(p))
        a = model.log_prob(x, torch.zeros(x.shape[0], dtype=torch.long))
        b = model.log_prob(x, torch.ones(x.shape[0], dtype=torch.long))
        assert not torch.allclose(a, b), f"{name}: the class label does not change log_prob"


def _reference_probs(model, x):
    if getattr(model, "num_masks", 1) > 1:  # MADE samples with its current mask
        return model.mask_log_prob(x).exp()
    return model.log_prob(x).exp()


@pytest.mark.parametrize("name", NAMES)
def test_samples_follow_log_prob(name):
    shape, levels = (ONE_D[name], 5) if name in ONE_D else ((1, 2, 2), 4 if name in DLM else 2)
    if name == "two_variable":
        shape, levels = (2,), 3
    configs = _all_configs(shape, levels)
    # move away from the near-uniform initial distribution, but not onto one configuration
    # (deep stacks amplify a large nudge until a single image has all the mass)
    for scale in (0.5, 0.25, 0.1):
        model = _build(name, shape, levels, seed=1)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(scale * torch.randn_like(p))
        p = _reference_probs(model, configs)
        if p.max() < 0.9:
            break
    n = 6000
    xs = model.sample(n, generator=torch.Generator().manual_seed(0))
    assert xs.shape == (n, *shape) and xs.dtype == torch.long
    p = _reference_probs(model, configs)     # after sampling, as it used the current mask
    base = levels ** torch.arange(math.prod(shape) - 1, -1, -1)
    idx = (xs.view(n, -1) * base).sum(1)
    counts = torch.bincount(idx, minlength=configs.shape[0]).double()
    expected = n * p
    keep = expected > 5
    chi2 = (((counts - expected) ** 2) / expected)[keep].sum().item()
    df = int(keep.sum()) - 1
    # 1e-4 upper tail of chi-square(df) by the Wilson-Hilferty approximation
    crit = df * (1 - 2 / (9 * df) + 3.719 * math.sqrt(2 / (9 * df))) ** 3
    assert chi2 < crit, f"{name}: chi-square {chi2:.1f} > {crit:.1f} (df {df})"
    assert counts[~keep].sum() < 0.02 * n


TRAIN_DATA = {"histogram": "toy", "logistic_mixture": "toy", "two_variable": "smiley"}


@pytest.mark.parametrize("name", NAMES)
def test_training_lowers_test_nll(name):
    from arlab import data as D
    from arlab.train import fit

    kind = TRAIN_DATA.get(name, "digits")
    if kind == "toy":
        d = D.toy_1d("gaussian")
    elif kind == "smiley":
        d = D.smiley_2d(d=32, n_train=2000, n_test=500)
    else:
        d = D.digits()
        if name in DLM:  # grey levels for the logistic-mixture heads
            import numpy as np

            from arlab.data.base import data_dir

            raw = torch.from_numpy(np.load(data_dir() / "digits8x8.npz")["images"].astype("int64"))
            d.train, d.test, d.levels = raw[:1400, None] // 2, raw[1400:, None] // 2, 9
    torch.manual_seed(0)
    model = zoo()[name](data_shape=d.data_shape, levels=d.levels)
    # the 1-D models have few parameters and a high entropy floor: larger steps, smaller gain
    lr, gain = (5e-2, 0.95) if kind != "digits" else (3e-3, 0.9)
    hist = fit(model, d.train, d.test[:300], epochs=3, max_steps=40, batch_size=64, lr=lr,
               progress=False, device="cpu")
    first, last = hist.test_nats_per_dim[0], hist.test_nats_per_dim[-1]
    assert math.isfinite(last) and last < gain * first, f"{name}: test NLL {first:.4f} -> {last:.4f}"
