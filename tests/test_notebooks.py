"""The walkthrough runs: every notebook executes under ARLAB_BUDGET=smoke, ends with finite
results better than the untrained models, displays its widgets, and is committed executed
with outputs that belong to its code."""
import json
import math
import re

import nbformat
import pytest

from arlab.walkthrough import COLAB, code_hash, is_progress_bar, notebooks
from test_walkthrough_integrity import answer_cells, cell_text_outputs, overlaps

NOTEBOOKS = notebooks()
RESULT_PROBE = "import json as _json; print('ARLAB_RESULTS=' + _json.dumps(results))"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def test_there_are_eleven_notebooks_in_order():
    assert [p.name[:2] for p in NOTEBOOKS] == [f"{i:02d}" for i in range(1, 12)]


# Notebooks not yet committed executed, nor their checkpoints shipped: run `make checkpoints
# NOTEBOOKS=...` and `make walkthrough NOTEBOOKS=...` for them, commit, and empty this set.
PENDING: set[str] = set()
MAX_NOTEBOOK_BYTES = 4 * 2 ** 20
MAX_TEXT_OUTPUT_CHARS = 20_000


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_outputs_belong_to_the_committed_code(path):
    """The notebooks are committed executed (``make walkthrough``: cpu budget, checkpoints);
    an edited code cell without re-execution fails here."""
    nb = nbformat.read(path, as_version=4)
    stamp = nb.metadata.get("arlab", {})
    if path.stem in PENDING:
        assert not stamp and not any(c.get("outputs") for c in nb.cells), (
            f"{path.name} is executed now: remove it from PENDING")
        return
    assert stamp.get("code_sha256") == code_hash(nb), (
        f"{path.name}: its outputs were computed from other code; run "
        f"`make walkthrough NOTEBOOKS=notebooks/{path.name}` and commit the result")
    assert stamp.get("budget") == "cpu", f"{path.name} was executed at {stamp.get('budget')!r}"
    counts = [c.execution_count for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    assert counts == list(range(1, len(counts) + 1)), f"{path.name}: not run top to bottom once"
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            assert out.output_type != "error", f"{path.name} cell {i} shows an error"
            assert not is_progress_bar(out), f"{path.name} cell {i} shows a bar frozen at 0%"
            text = out.get("text", "") + out.get("data", {}).get("text/plain", "")
            assert len(text) <= MAX_TEXT_OUTPUT_CHARS, f"{path.name} cell {i} prints {len(text)} chars"
    assert path.stat().st_size <= MAX_NOTEBOOK_BYTES, f"{path.name} is {path.stat().st_size} bytes"


def test_progress_bars_are_recognised_and_live_widgets_kept():
    bar = {"data": {WIDGET_MIME: {}, "text/plain": ["MADE:   0%|          | 0/630 [00:00<?, ?it/s]"]}}
    live = {"data": {WIDGET_MIME: {}, "text/plain": "Live widget: run this cell (with its kernel) "
                                                    "to get the controls."}}
    assert is_progress_bar(bar) and not is_progress_bar(live)
    assert not is_progress_bar({"text": "MADE: 100%|##| 630/630 [00:10<00:00]"}), "text stays"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_figure_cell_shows_its_figure(path):
    """Where the committed page is read, each plot is there: a cell that draws shows a PNG."""
    nb = nbformat.read(path, as_version=4)
    if path.stem in PENDING:
        return   # checked by test_committed_outputs_belong_to_the_committed_code
    draws = re.compile(r"^(fig|plt\.show\(\)|display\(fig|sample_grid\(|training_curves\("
                       r"|[\w\[\]\"']+\.(plot|show)\()")
    for i, cell in enumerate(nb.cells):
        lines = [line for line in cell.source.splitlines() if line.strip()] if cell.cell_type == "code" else []
        if not lines or not draws.match(lines[-1]):
            continue
        mimes = {m for o in cell.outputs for m in o.get("data", {})}
        assert "image/png" in mimes, f"{path.name} cell {i} ends drawing but shows no picture"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_first_cells_are_title_badge_setup_and_budget(path):
    nb = nbformat.read(path, as_version=4)
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# ")
    assert f"{COLAB}notebooks/{path.name}" in first.source, "the Colab badge links this notebook"
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    assert "google.colab" in code[0], "the first code cell is the Colab setup cell"
    assert any("arlab.budget()" in c for c in code[:3]), "a budget and device cell comes early"


def _execute(source, path, attempts: int = 2):
    """Run a copy of ``source`` in a fresh kernel. On this shared machine a kernel has been
    seen to go idle while the client still waited for its reply (a lost message, not a slow
    cell: every smoke cell takes seconds), so a cell timeout gets one fresh retry; errors in
    the notebook's own code are never retried."""
    import copy

    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError

    for attempt in range(attempts):
        nb = copy.deepcopy(source)
        try:
            NotebookClient(nb, timeout=240, kernel_name="python3",
                           resources={"metadata": {"path": str(path.parent)}}).execute()
            return nb
        except CellTimeoutError:
            if attempt == attempts - 1:
                raise


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_executes_under_smoke_budget(path, monkeypatch):
    monkeypatch.setenv("ARLAB_BUDGET", "smoke")
    source = nbformat.read(path, as_version=4)
    source.cells.append(nbformat.v4.new_code_cell(RESULT_PROBE))
    nb = _execute(source, path)
    text = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.output_type == "stream")
    results = json.loads(text.split("ARLAB_RESULTS=", 1)[1])
    assert results, f"{path.name}: the results dict is empty"
    for name, r in results.items():
        assert math.isfinite(r["nats_per_dim"]) and math.isfinite(r["bits_per_dim"]), name
        assert r["nats_per_dim"] < r["untrained_nats_per_dim"], (
            f"{path.name}: {name} is no better than untrained")
        assert r["bits_per_dim"] == pytest.approx(r["nats_per_dim"] / math.log(2))
    answers = answer_cells()
    for i, cell in enumerate(nb.cells):
        copied = overlaps(cell_text_outputs(cell), answers)
        assert not copied, f"{path.name} cell {i} prints the reference answer of {copied}"
        warned = [o["text"] for o in cell.get("outputs", []) if o.output_type == "stream"
                  and o.name == "stderr" and "Warning" in o["text"]]
        assert not warned, f"{path.name} cell {i} shows a learner a warning: {warned[0][:300]}"
        if "widget" in cell.metadata.get("tags", []):
            mimes = [m for o in cell.outputs for m in o.get("data", {})]
            assert WIDGET_MIME in mimes, f"{path.name} cell {i}: the widget was not displayed"
            assert "image/png" in mimes, f"{path.name} cell {i}: no static twin figure shown"


def test_widget_cells_export_their_static_twin_to_html(tmp_path):
    from arlab.walkthrough import main

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "import torch\nfrom arlab.viz import InverseCDFWidget\n"
        "w = InverseCDFWidget(torch.tensor([0.2, 0.3, 0.5]))\nw.show()")]
    path = tmp_path / "widget.ipynb"
    nbformat.write(nb, path)
    assert main([str(path), "--out", str(tmp_path / "html"), "--budget", "smoke"]) == 0
    html = (tmp_path / "html" / "widget.html").read_text()
    assert "data:image/png;base64" in html  # the static twin, readable without widgets
    timings = json.loads((tmp_path / "html" / "timings.json").read_text())
    assert "widget" in timings["smoke"]


def test_readme_course_map_links_every_notebook_and_colab():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for path in NOTEBOOKS:
        assert f"(notebooks/{path.name})" in readme, f"README's course map lacks {path.name}"
        assert f"{COLAB}notebooks/{path.name}" in readme, f"no Colab link for {path.name}"
