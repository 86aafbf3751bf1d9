"""The benchmarks run (in their quick mode) and record machine-readable results; the numbers
themselves are figures for people, never asserted here."""
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import common, run  # noqa: E402


@pytest.mark.slow
def test_quick_benchmarks_write_results(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "RESULTS_JSON", tmp_path / "results.json")
    monkeypatch.setattr(common, "RESULTS_MD", tmp_path / "RESULTS.md")
    assert run.main(["--quick", "--only", "sampling,quality,throughput"]) == 0
    data = json.loads((tmp_path / "results.json").read_text())
    assert set(data["_sections"]) == {"sampling", "quality", "throughput"}
    for key in ("sampling.wavenet_cached_speedup", "quality.shapes.pixelcnn.bits_per_dim",
                "quality.shapes.pixelsnail.parameters", "throughput.cpu.made.images_per_second",
                "sampling.multiscale.f2_speedup"):
        assert key in data, key
    assert data["sampling.wavenet_cached_speedup"]["note"] == "same samples"
    md = (tmp_path / "RESULTS.md").read_text()
    assert "## sampling" in md and "`quality.shapes.made.bits_per_dim`" in md
    # a second section run keeps the first one's numbers
    assert run.main(["--quick", "--only", "sampling"]) == 0
    again = json.loads((tmp_path / "results.json").read_text())
    assert "quality.shapes.made.bits_per_dim" in again
    # a partial run (one model) adds to its section instead of replacing it
    before = again["quality.shapes.pixelcnn.bits_per_dim"]
    assert run.main(["--quick", "--only", "quality", "--models", "made"]) == 0
    merged = json.loads((tmp_path / "results.json").read_text())
    assert merged["quality.shapes.pixelcnn.bits_per_dim"] == before
    assert "--models made" in merged["_sections"]["quality"]["command"]
    assert "| pixelcnn |" in (tmp_path / "RESULTS.md").read_text()   # the reading table


def test_unknown_section_is_refused(capsys):
    with pytest.raises(SystemExit):
        run.main(["--only", "nonsense"])
    assert "unknown section" in capsys.readouterr().err


def test_pixelsnail_verdict_reads_speed_at_equal_quality():
    """Speed is read against today's model; quality against it and, when another learning
    rate makes the full model better, against that one too."""
    from benchmarks import pixelsnail

    def values(fast_nats, full_lr2=None):
        v = {}
        runs = [("full", 20.0, 0.1246), ("rows_2x1", 8.0, 0.1250), ("rows_1x1", 4.0, fast_nats)]
        if full_lr2 is not None:
            runs.append(("full_lr2", 20.0, full_lr2))
        for name, seconds, nats in runs:
            v[f"pixelsnail.{name}.seconds_per_epoch"] = {"value": seconds, "note": "sizes"}
            v[f"pixelsnail.{name}.nats_per_dim"] = {"value": nats}
            v[f"pixelsnail.{name}.parameters"] = {"value": 1}
        return v

    lines = pixelsnail.summarize("pixelsnail", values(0.1689))
    assert "of `full` (0.1246): `rows_2x1`, 2.50x faster per epoch than `full`; the 4x target " \
        "at equal nats/dim is not met" in lines[-1]
    lines = pixelsnail.summarize("pixelsnail", values(0.1240))
    assert "of `full` (0.1246): `rows_1x1`, 5.00x" in lines[-1] and "is met" in lines[-1]
    lines = pixelsnail.summarize("pixelsnail", values(0.1240, full_lr2=0.1200))
    assert "of `full` (0.1246): `rows_1x1`, 5.00x" in lines[-3]
    assert lines[-1] == "No faster model comes within 0.001 nats/dim of `full_lr2` (0.1200)."
    lines = pixelsnail.summarize("pixelsnail", values(0.1205, full_lr2=0.1200))
    assert "of `full_lr2` (0.1200): `rows_1x1`, 5.00x" in lines[-1] and "is met" in lines[-1]
    partial = {k: v for k, v in values(0.1240).items() if ".full." not in k}
    assert "| rows_1x1 |" in pixelsnail.summarize("pixelsnail", partial)[-1]   # no verdict


def test_timed_section_trains_each_model_for_its_time_and_names_who_is_behind(tmp_path,
                                                                               monkeypatch):
    monkeypatch.setattr(common, "RESULTS_JSON", tmp_path / "results.json")
    monkeypatch.setattr(common, "RESULTS_MD", tmp_path / "RESULTS.md")
    assert run.main(["--quick", "--only", "timed", "--models", "peer_made,made"]) == 0
    data = json.loads((tmp_path / "results.json").read_text())
    for name in ("peer_made", "made"):
        for at in ("1s", "2s"):
            assert data[f"timed.{name}.{at}.seconds"]["value"] >= float(at[:-1])
            assert 0 < data[f"timed.{name}.{at}.nats_per_dim"]["value"] < 1
        assert data[f"timed.{name}.2s.epochs"]["value"] > data[f"timed.{name}.1s.epochs"]["value"]
    assert data["timed.peer_made.batch"]["value"] == 128
    from benchmarks import timed

    values = {k: v for k, v in data.items() if k.startswith("timed.")}
    values["timed.made.2s.nats_per_dim"]["value"] = values["timed.peer_made.2s.nats_per_dim"][
        "value"] + 0.01
    lines = timed.summarize("timed", values)
    assert "| made | 361,600 |" in "\n".join(lines) and "| peer_made (peer) |" in "\n".join(lines)
    assert lines[-1].startswith("At 2 s: 0 of 1 course models match or beat the best peer")
    assert lines[-1].endswith("behind it: `made` (+0.0100).")


@pytest.mark.parametrize("name", ["peer_made", "peer_pixelcnn"])
def test_peers_are_causal_and_normalised(name):
    """The peers are proven as the course's own models are: float64 gradients, and
    enumeration of every 2x2 binary image."""
    import itertools

    import torch

    from arlab.receptive import causality_violations, receptive_field
    from benchmarks.peers import build_peer

    model = build_peer(name, (1, 3, 3), 2).double().eval()
    for pos in itertools.product(range(1), range(3), range(3)):
        assert not causality_violations(model, pos).any(), pos
        if pos != (0, 0, 0):
            assert receptive_field(model, pos).any(), pos
    model = build_peer(name, (1, 2, 2), 2).double()
    x = torch.tensor(list(itertools.product(range(2), repeat=4))).view(-1, 1, 2, 2)
    assert model.log_prob(x).logsumexp(0).exp().item() == pytest.approx(1.0, abs=1e-9)


def test_gpu_section_saves_samples_and_results_say_when_it_is_missing(tmp_path, monkeypatch):
    from benchmarks import gpu

    monkeypatch.setattr(common, "RESULTS_JSON", tmp_path / "results.json")
    monkeypatch.setattr(common, "RESULTS_MD", tmp_path / "RESULTS.md")
    monkeypatch.setattr(gpu, "QUICK_OUT", tmp_path / "gpu")
    with pytest.raises(SystemExit, match="--device cuda"):
        gpu.main(quick=False, device="cpu")
    assert run.main(["--quick", "--only", "gpu", "--models", "wavenet,made"]) == 0
    for name in ("wavenet", "made"):
        assert (tmp_path / "gpu" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["gpu.wavenet.sample_images_per_second"]["value"] > 0
    md = (tmp_path / "RESULTS.md").read_text()
    assert "| wavenet |" in md and "![wavenet](gpu/wavenet.png)" in md
    assert "Not measured: no run recorded here had a GPU" in md   # a CPU run is not the GPU's
    data["_sections"]["gpu_cuda"] = data["_sections"].pop("gpu")
    common.write_markdown(data)
    assert "Not measured" not in (tmp_path / "RESULTS.md").read_text()
