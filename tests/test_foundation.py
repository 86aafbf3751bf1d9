"""Units, budgets, the training loop, and the environment files."""
import math
import re
import tomllib
from pathlib import Path

import pytest
import torch
from torch import nn

import arlab
from arlab import compute as budget, units
from arlab.data import shapes
from arlab.models.base import ARModel
from arlab.train import History, evaluate, fit

ROOT = Path(__file__).resolve().parents[1]


def test_units_round_trip_and_values():
    assert units.nats_to_bits(math.log(2)) == pytest.approx(1.0)
    assert units.bits_to_nats(units.nats_to_bits(3.7)) == pytest.approx(3.7)
    nll = torch.tensor([784 * math.log(2), 2 * 784 * math.log(2)])
    assert units.bits_per_dim(nll, 784) == pytest.approx(1.5)
    assert units.nats_per_dim(nll, 784) == pytest.approx(1.5 * math.log(2))
    assert arlab.bits_per_dim is units.bits_per_dim
    with pytest.raises(ValueError, match="num_dims"):
        units.bits_per_dim(nll, 0)


def test_budget_from_env_and_device(monkeypatch):
    for b in ("smoke", "cpu", "gpu"):
        monkeypatch.setenv("ARLAB_BUDGET", b)
        assert budget.budget() == b
        assert budget.by_budget(1, 2, 3) == {"smoke": 1, "cpu": 2, "gpu": 3}[b]
    monkeypatch.setenv("ARLAB_BUDGET", "huge")
    with pytest.raises(ValueError, match="smoke, cpu, gpu"):
        budget.budget()
    monkeypatch.delenv("ARLAB_BUDGET")
    expected = "gpu" if torch.cuda.is_available() else "cpu"
    assert budget.budget() == expected
    monkeypatch.setenv("ARLAB_DEVICE", "cpu")
    assert budget.device() == torch.device("cpu")


class PixelBias(ARModel):
    """Independent pixels with a linear dependence on the pixel to the left: tiny and causal."""

    def __init__(self, data_shape, levels=2):
        super().__init__(data_shape, levels)
        self.bias = nn.Parameter(torch.zeros(levels, *data_shape))
        self.left = nn.Parameter(torch.zeros(levels))

    def forward(self, x, cond=None):
        s = self.scale_input(x)
        left = torch.nn.functional.pad(s, (1, 0))[..., :-1]
        return self.bias + self.left.view(1, -1, 1, 1, 1) * left.unsqueeze(1)


def test_fit_lowers_test_loss_and_records_history():
    data = shapes(n_train=512, n_test=128)
    model = PixelBias(data.data_shape)
    hist = fit(model, data.train, data.test, epochs=2, batch_size=64, lr=0.05, progress=False,
               device="cpu")
    assert isinstance(hist, History)
    assert hist.test_epochs == [0, 1, 2] and len(hist.train_steps) == 16
    assert hist.test_nats_per_dim[-1] < 0.6 * hist.test_nats_per_dim[0]
    assert hist.test_nats_per_dim[0] == pytest.approx(math.log(2), rel=1e-6)  # untrained: uniform
    assert hist.final_test_bits_per_dim == pytest.approx(hist.test_nats_per_dim[-1] / math.log(2))
    assert evaluate(model, data.test) == pytest.approx(hist.final_test_nats_per_dim)


def test_fit_is_seeded_and_respects_max_steps_and_conditioning():
    data = shapes(n_train=256, n_test=64)
    runs = [fit(PixelBias(data.data_shape), data.train, data.test, epochs=3, max_steps=5,
                progress=False, device="cpu", seed=7) for _ in range(2)]
    assert runs[0].train_nats_per_dim == runs[1].train_nats_per_dim
    assert len(runs[0].train_steps) == 5
    with pytest.raises(ValueError, match="labels"):
        fit(PixelBias(data.data_shape), data.train, conditional=True, progress=False)


def test_fit_trains_for_a_time_counting_only_its_steps(monkeypatch):
    """max_seconds stops after the first step that ends that far into training; test passes
    are not counted, and a stop at an epoch's end tests once, not twice."""
    import itertools
    import types

    import arlab.train as train

    ticks = itertools.count()   # every reading of the clock is one second later
    monkeypatch.setattr(train, "time", types.SimpleNamespace(perf_counter=lambda: next(ticks)))
    data = shapes(n_train=256, n_test=64)   # 4 steps per epoch at batch 64
    hist = fit(PixelBias(data.data_shape), data.train, data.test, epochs=10, max_seconds=3,
               progress=False, device="cpu")
    assert hist.train_steps == [1, 2, 3] and hist.test_epochs == [0, 0.75]
    hist = fit(PixelBias(data.data_shape), data.train, data.test, epochs=10, max_seconds=4,
               progress=False, device="cpu")
    assert hist.train_steps == [1, 2, 3, 4] and hist.test_epochs == [0, 1]
    with pytest.raises(ValueError, match="checkpoint"):
        fit(PixelBias(data.data_shape), data.train, data.test, max_seconds=1,
            checkpoint="07_pixelcnn/mnist", progress=False)


def test_fit_applies_transform_and_reports_nan(monkeypatch):
    data = shapes(n_train=64, n_test=16)
    seen = []
    fit(PixelBias(data.data_shape), data.train, epochs=1, progress=False, device="cpu",
        transform=lambda x: seen.append(1) or x)
    assert len(seen) == 1

    class Broken(PixelBias):
        def loss(self, x, cond=None):
            return super().loss(x) * float("nan")

    with pytest.raises(FloatingPointError, match="learning rate"):
        fit(Broken(data.data_shape), data.train, progress=False, device="cpu")


def test_training_modes_after_fit_evaluate_and_sampling():
    """fit leaves the model in eval mode (documented), also when it stops with an error;
    evaluate and sampling restore the mode they found, also on an error."""
    from arlab.models.sampling import sample_autoregressive

    data = shapes(n_train=64, n_test=16)
    model = PixelBias(data.data_shape).train()
    fit(model, data.train, data.test, epochs=1, progress=False, device="cpu")
    assert not model.training
    model.train()
    evaluate(model, data.test)
    sample_autoregressive(model, 2, generator=torch.Generator().manual_seed(0))
    assert model.training

    class Failing(PixelBias):
        def forward(self, x, cond=None):
            raise RuntimeError("broken forward")

    broken = Failing(data.data_shape).train()
    for call in (lambda: evaluate(broken, data.test),
                 lambda: sample_autoregressive(broken, 2)):
        with pytest.raises(RuntimeError, match="broken forward"):
            call()
        assert broken.training
    with pytest.raises(RuntimeError, match="broken forward"):
        fit(broken, data.train, progress=False, device="cpu")
    assert not broken.training


def test_history_concat_continues_steps_and_epochs():
    data = shapes(n_train=128, n_test=32)
    model = PixelBias(data.data_shape)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    runs = [fit(model, data.train, data.test, epochs=1, batch_size=64, optimizer=opt,
                progress=False, device="cpu", seed=s) for s in range(3)]
    joined = History.concat(runs)
    assert joined.train_steps == [1, 2, 3, 4, 5, 6]
    assert joined.test_epochs == [0, 1, 2, 3]
    assert joined.test_nats_per_dim == [runs[0].test_nats_per_dim[0]] + [
        r.test_nats_per_dim[-1] for r in runs]
    assert runs[1].test_nats_per_dim[0] == runs[0].test_nats_per_dim[-1]  # the dropped point
    assert joined.train_nats_per_dim == sum((r.train_nats_per_dim for r in runs), [])
    assert joined.seconds == pytest.approx(sum(r.seconds for r in runs))
    with pytest.raises(ValueError, match="at least one"):
        History.concat([])


def test_bf16_autocast_only_where_native(monkeypatch):
    monkeypatch.setattr(budget, "_cpu_flags", lambda: {"avx2", "fma"})
    assert not budget.native_bf16("cpu")
    for flag in ("amx_bf16", "avx512_bf16"):
        monkeypatch.setattr(budget, "_cpu_flags", lambda flag=flag: {"avx2", flag})
        assert budget.native_bf16("cpu")
    assert not budget.native_bf16("meta")

    class Spy(PixelBias):
        def loss(self, x, cond=None):
            seen.append(torch.is_autocast_enabled("cpu"))
            return super().loss(x)

        def log_prob(self, x, cond=None):
            if not self.training:  # evaluation, not a training step
                evaluated.append(torch.is_autocast_enabled("cpu"))
            return super().log_prob(x)

    data = shapes(n_train=64, n_test=16)
    for native, asked, expected in ((True, True, True), (False, True, False),
                                    (True, False, False)):
        seen, evaluated = [], []
        monkeypatch.setattr("arlab.train.native_bf16", lambda device, native=native: native)
        fit(Spy(data.data_shape), data.train, data.test, progress=False, device="cpu",
            bf16=asked)
        assert seen == [expected] and evaluated and not any(evaluated)


def test_history_plot_has_labelled_axes(tmp_path):
    data = shapes(n_train=64, n_test=16)
    hist = fit(PixelBias(data.data_shape), data.train, data.test, progress=False, device="cpu")
    ax = hist.plot()
    assert "bits/dim" in ax.get_ylabel() and ax.get_xlabel() == "epoch"
    ax.figure.savefig(tmp_path / "curve.png")
    assert (tmp_path / "curve.png").stat().st_size > 1000


def _name(req: str) -> str:
    return re.split(r"[<>=!~ \[]", req, 1)[0].lower()


def _bound(req: str) -> str:
    return req[len(_name(req)):].strip()


def test_environment_yml_matches_pyproject():
    import yaml

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["dev"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    rename = {"pytorch": "torch"}
    conda_map = {rename.get(_name(d), _name(d)): _bound(d) for d in conda}
    for req in wanted:
        assert _name(req) in conda_map, f"{_name(req)} is in pyproject.toml but not environment.yml"
        assert conda_map[_name(req)] == _bound(req), f"{_name(req)}: bounds differ"
    extra = set(conda_map) - {_name(r) for r in wanted} - {"python", "pip"}
    assert not extra, f"environment.yml has packages pyproject.toml lacks: {extra}"
    py = project["requires-python"]
    assert conda_map["python"] == py
    pip_part = [d for d in env["dependencies"] if isinstance(d, dict)][0]["pip"]
    assert pip_part == ['-e ".[dev]"']


def test_ci_and_makefile_use_make_test():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    make = (ROOT / "Makefile").read_text()
    assert "ARLAB_BUDGET=smoke" in make and "-m venv" in make and '-e ".[dev]"' in make
    readme = (ROOT / "README.md").read_text()
    assert "make lab" in readme and "make test" in readme
