"""The shipped trained weights: each one rebuilds from its file alone and gives its recorded
test nats/dim; every checkpoint a notebook names exists; the loader refuses stale weights."""
import re

import pytest
import torch

from arlab import checkpoints
from arlab.models import PixelCNN
from arlab.train import evaluate, fit
from arlab.walkthrough import notebooks
from test_notebooks import PENDING

SHIPPED = sorted(checkpoints.ROOT.glob("*/*.pt"))
NAME = re.compile(r'checkpoint=f?"([^"]+)"')


def test_shipped_checkpoints_fit_the_size_limit():
    assert SHIPPED, "no checkpoints are shipped; run `make checkpoints`"
    assert checkpoints.total_bytes() <= checkpoints.MAX_BYTES


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_shipped_checkpoint_gives_its_recorded_nats_per_dim(path):
    measured, recorded = checkpoints.check(path)
    assert measured == pytest.approx(recorded, abs=checkpoints.tolerance(recorded, torch.device("cpu")))
    meta = checkpoints.read(path)["meta"]
    assert meta["budget"] == checkpoints.BUDGET and meta["seed"] == meta["settings"]["seed"]
    trained = meta["history"]["test_nats_per_dim"][-1]   # what fit measured at the end
    if meta.get("stored_dtype") == "float16":
        assert recorded == pytest.approx(trained, abs=0.01), "float16 storage cost too much"
    else:
        assert recorded == trained


def test_every_checkpoint_a_notebook_names_is_shipped_and_every_shipped_one_is_named():
    named = set()
    for path in notebooks():
        text = path.read_text()
        for name in NAME.findall(text.replace('\\"', '"')):
            named.add(name.split("{")[0])   # f-strings: the fixed prefix
    shipped = {f"{p.parent.name}/{p.stem}" for p in SHIPPED}
    for name in named:
        if name.split("/")[0] in PENDING:
            continue
        assert any(s.startswith(name) for s in shipped), f"no shipped checkpoint for {name}"
    for s in shipped:
        assert any(s.startswith(n) for n in named), f"checkpoints/{s}.pt is named by no notebook"


def _tiny(seed: int = 0) -> PixelCNN:
    torch.manual_seed(seed)
    return PixelCNN((1, 6, 6), 2, channels=8, layers=2)


def _data():
    g = torch.Generator().manual_seed(0)
    return (torch.rand(64, 1, 6, 6, generator=g) < 0.3).long(), \
        (torch.rand(32, 1, 6, 6, generator=g) < 0.3).long()


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoints, "ROOT", tmp_path)
    monkeypatch.setenv("ARLAB_BUDGET", "cpu")
    return tmp_path


def test_written_checkpoint_loads_instead_of_training(store, monkeypatch, capsys):
    train, test = _data()
    monkeypatch.setenv(checkpoints.MODE_ENV, "write")
    trained = _tiny()
    written = fit(trained, train, test, epochs=2, batch_size=16, lr=1e-2, device="cpu",
                  progress=False, checkpoint="nb/tiny")
    assert (store / "nb" / "tiny.pt").exists()
    meta = checkpoints.read("nb/tiny")["meta"]
    assert meta["rebuilt"] and all("mask" in k for k in meta["rebuilt"]), "masks are rebuilt, not stored"

    monkeypatch.setenv(checkpoints.MODE_ENV, "strict")
    fresh = _tiny(seed=1)   # other initial weights: loading must replace them
    loaded = fit(fresh, train, test, epochs=2, batch_size=16, device="cpu",
                 checkpoint="nb/tiny", train_yourself=False)
    assert "loaded trained weights checkpoints/nb/tiny.pt" in capsys.readouterr().out
    assert loaded.test_nats_per_dim == written.test_nats_per_dim
    assert loaded.train_nats_per_dim == written.train_nats_per_dim
    assert not fresh.training
    assert evaluate(fresh, test) == pytest.approx(written.final_test_nats_per_dim, abs=1e-6)
    measured, recorded = checkpoints.check(store / "nb" / "tiny.pt")
    assert measured == pytest.approx(recorded, abs=1e-6)

    again = _tiny(seed=2)
    fit(again, train, test, epochs=1, batch_size=16, device="cpu", progress=False,
        checkpoint="nb/tiny", train_yourself=True)
    assert evaluate(again, test) != pytest.approx(recorded, abs=1e-6), "train_yourself trains"


def test_stale_weights_are_refused_with_what_to_do(store, monkeypatch):
    train, test = _data()
    monkeypatch.setenv(checkpoints.MODE_ENV, "write")
    fit(_tiny(), train, test, epochs=1, batch_size=16, device="cpu", progress=False,
        checkpoint="nb/tiny")
    blob = checkpoints.read("nb/tiny")
    blob["meta"]["test_nats_per_dim"] += 1e-3   # as if the model's code had changed since
    torch.save(blob, store / "nb" / "tiny.pt")
    monkeypatch.delenv(checkpoints.MODE_ENV)
    with pytest.raises(checkpoints.CheckpointError, match="make checkpoints"):
        fit(_tiny(), train, test, device="cpu", progress=False, checkpoint="nb/tiny",
            train_yourself=False)


def test_missing_or_mismatched_checkpoint_trains_with_a_notice_or_fails_when_strict(
        store, monkeypatch, capsys):
    train, test = _data()
    monkeypatch.setenv(checkpoints.MODE_ENV, "write")
    fit(_tiny(), train, test, epochs=1, batch_size=16, device="cpu", progress=False,
        checkpoint="nb/tiny")
    monkeypatch.delenv(checkpoints.MODE_ENV)
    wider = PixelCNN((1, 6, 6), 2, channels=12, layers=2)
    history = fit(wider, train, test, epochs=1, batch_size=16, device="cpu",
                  checkpoint="nb/tiny", train_yourself=False)
    assert "another architecture" in capsys.readouterr().out and history.train_steps
    monkeypatch.setenv("ARLAB_BUDGET", "smoke")
    fit(_tiny(), train, test, epochs=1, batch_size=16, device="cpu",
        checkpoint="nb/tiny", train_yourself=False)
    assert "for the 'cpu' budget" in capsys.readouterr().out
    fit(_tiny(), train, test, epochs=1, batch_size=16, device="cpu", progress=False,
        checkpoint="nb/tiny", train_yourself=False)
    assert capsys.readouterr().out == "", "progress=False: quiet"
    monkeypatch.setenv(checkpoints.MODE_ENV, "strict")
    with pytest.raises(checkpoints.CheckpointError, match="budget"):
        fit(_tiny(), train, test, device="cpu", progress=False, checkpoint="nb/tiny",
            train_yourself=False)


def test_resume_keeps_what_fits_and_trains_the_rest(store, monkeypatch, capsys):
    """``make checkpoints --resume`` after an interrupted run: a checkpoint that still fits
    its model, settings and number is loaded; a missing, stale or differently trained one is
    trained again and saved."""
    train, test = _data()
    monkeypatch.setenv(checkpoints.MODE_ENV, "write")
    fit(_tiny(), train, test, epochs=1, batch_size=16, device="cpu", progress=False,
        checkpoint="nb/kept")
    fit(_tiny(), train, test, epochs=1, batch_size=16, device="cpu", progress=False,
        checkpoint="nb/stale")
    blob = checkpoints.read("nb/stale")
    first = blob["meta"]["test_nats_per_dim"]
    blob["meta"]["test_nats_per_dim"] += 1e-3
    torch.save(blob, store / "nb" / "stale.pt")
    kept_bytes = (store / "nb" / "kept.pt").read_bytes()
    capsys.readouterr()

    monkeypatch.setenv(checkpoints.MODE_ENV, "resume")
    fit(_tiny(), train, test, epochs=1, batch_size=16, device="cpu", checkpoint="nb/kept",
        train_yourself=True)   # resume loads whatever the notebook's switch says
    out = capsys.readouterr().out
    assert "loaded trained weights checkpoints/nb/kept.pt" in out and "saved" not in out
    assert (store / "nb" / "kept.pt").read_bytes() == kept_bytes
    for name, how in [("nb/stale", dict(epochs=1)), ("nb/new", dict(epochs=1)),
                      ("nb/kept", dict(epochs=2))]:   # kept, but with other settings now
        fit(_tiny(), train, test, batch_size=16, device="cpu", progress=False,
            checkpoint=name, **how)
        assert f"saved as {store.name}/{name}.pt" in capsys.readouterr().out, name
        measured, recorded = checkpoints.check(store / f"{name}.pt")
        assert measured == pytest.approx(recorded, abs=1e-6)
    assert checkpoints.read("nb/kept")["meta"]["settings"]["epochs"] == 2
    assert checkpoints.read("nb/stale")["meta"]["test_nats_per_dim"] == pytest.approx(
        first, abs=1e-6), "retrained from the seeded start, not from the stale weights"


def test_train_yourself_defaults_to_the_gpu_and_can_be_forced(monkeypatch):
    monkeypatch.setenv("ARLAB_DEVICE", "cpu")
    monkeypatch.delenv(checkpoints.TRAIN_ENV, raising=False)
    assert checkpoints.train_yourself() is False
    monkeypatch.setenv(checkpoints.TRAIN_ENV, "1")
    assert checkpoints.train_yourself() is True


def test_large_models_are_stored_in_float16_and_record_what_the_stored_weights_give(
        store, monkeypatch):
    from arlab.models import MADE

    train, test = _data()
    monkeypatch.setattr(checkpoints, "HALF_ABOVE", 100)
    monkeypatch.setenv(checkpoints.MODE_ENV, "write")
    torch.manual_seed(0)
    made = MADE((1, 6, 6), levels=2, hidden_sizes=(24,), ordering="random", num_masks=2)
    fit(made, train, test, epochs=1, batch_size=16, device="cpu", progress=False,
        checkpoint="nb/made")
    blob = checkpoints.read("nb/made")
    assert blob["meta"]["stored_dtype"] == "float16"
    assert {v.dtype for v in blob["state_dict"].values() if isinstance(v, torch.Tensor)} == {torch.float16}
    assert any("mask" in k for k in blob["meta"]["rebuilt"]), "MADE's masks come back from its degrees"
    measured, recorded = checkpoints.check(store / "nb" / "made.pt")
    assert measured == pytest.approx(recorded, abs=1e-6)
    assert evaluate(made, test) == pytest.approx(recorded, abs=1e-6), "the notebook goes on with the stored weights"
