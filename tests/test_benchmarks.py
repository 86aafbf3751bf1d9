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
    from benchmarks import pixelsnail

    def values(fast_nats):
        v = {}
        for name, seconds, nats in [("full", 20.0, 0.1246), ("rows_2x1", 8.0, 0.1250),
                                    ("rows_1x1", 4.0, fast_nats)]:
            v[f"pixelsnail.{name}.seconds_per_epoch"] = {"value": seconds, "note": "sizes"}
            v[f"pixelsnail.{name}.nats_per_dim"] = {"value": nats}
            v[f"pixelsnail.{name}.parameters"] = {"value": 1}
        return v

    assert "`rows_2x1`, 2.50x; the 4x target at equal nats/dim is not met" in \
        pixelsnail.summarize("pixelsnail", values(0.1689))[-1]
    assert "`rows_1x1`, 5.00x; the 4x target at equal nats/dim is met" in \
        pixelsnail.summarize("pixelsnail", values(0.1240))[-1]
