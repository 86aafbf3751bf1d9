"""The course site (``make site``, :mod:`arlab.site`): its table of contents covers the course,
the homework pages carry no code, and a one-notebook book builds with a Colab launch link and
a widget shown as its static twin (the PNG), not as the widget's JSON."""
import base64
import re
from pathlib import Path

import nbformat
import pytest
import torch
import yaml

from arlab import site
from arlab.viz.widgets import LIVE_NOTE, InverseCDFWidget
from arlab.walkthrough import COLAB, notebooks

ROOT = Path(__file__).resolve().parents[1]
# a Sphinx extension that Jupyter Book loads still calls docutils' traverse()
pytestmark = pytest.mark.filterwarnings(
    "ignore::PendingDeprecationWarning:sphinx_jupyterbook_latex.transforms")
HOMEWORK = sorted(p.name for p in (ROOT / "starter").iterdir() if p.is_dir())


def test_table_of_contents_has_every_notebook_homework_and_the_guide():
    toc = yaml.safe_load((ROOT / "site" / "_toc.yml").read_text())
    files = {part["caption"]: [c["file"] for c in part["chapters"]] for part in toc["parts"]}
    assert toc["root"] == "README"
    assert files["Walkthrough"] == [f"notebooks/{p.stem}" for p in notebooks()]
    assert files["Homework"] == [f"starter/{hw}/{hw}" for hw in HOMEWORK]
    assert files["Instructors"] == ["grader/README"]
    config = yaml.safe_load((ROOT / "site" / "_config.yml").read_text())
    assert config["execute"]["execute_notebooks"] == "off"
    assert config["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    assert COLAB.startswith(config["launch_buttons"]["colab_url"])
    assert config["repository"]["url"] == site.GITHUB


def test_relink_keeps_pages_and_images_and_sends_the_rest_to_github():
    pages = {"README.md", "notebooks/01_histograms.ipynb", "grader/README.md"}
    assets: set[str] = set()
    text = ("[01](notebooks/01_histograms.ipynb) [guide](grader/README.md#workflow) "
            "[fit](src/arlab/train.py) [results](benchmarks/RESULTS.md \"numbers\") "
            "![w](docs/widgets/inverse_cdf.png) [web](https://example.org/a) [here](#top) "
            "[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
            "(https://colab.research.google.com/github/x/y/blob/main/a.ipynb)")
    out = site.relink(text, "README.md", pages, assets)
    assert "](notebooks/01_histograms.ipynb)" in out and "](grader/README.md#workflow)" in out
    assert f"]({site.GITHUB}/blob/main/src/arlab/train.py)" in out
    assert f"]({site.GITHUB}/blob/main/benchmarks/RESULTS.md \"numbers\")" in out
    assert "](docs/widgets/inverse_cdf.png)" in out and assets == {"docs/widgets/inverse_cdf.png"}
    assert "](https://example.org/a)" in out and "](#top)" in out
    assert "(https://colab.research.google.com/github/x/y/blob/main/a.ipynb)" in out
    # relative to the document's own folder
    assert site.relink("[g](../src)", "grader/README.md", pages, set()) == \
        f"[g]({site.GITHUB}/tree/main/src)"


def test_homework_pages_are_the_starter_introductions_only(tmp_path):
    pages = site.stage(tmp_path / "book", notebooks=[], homework=True, guide=True)
    assert "grader/README.md" in pages and "README.md" in pages
    staged = {p.relative_to(tmp_path / "book").as_posix()
              for p in (tmp_path / "book").rglob("*") if p.is_file()}
    assert not any(p.startswith("solutions/") for p in staged)
    for hw in HOMEWORK:
        doc = f"starter/{hw}/{hw}.ipynb"
        assert doc in staged
        page = nbformat.read(tmp_path / "book" / doc, as_version=4)
        starter = nbformat.read(ROOT / doc, as_version=4)
        assert {c.cell_type for c in page.cells} == {"markdown"}, f"{hw}: code on the site"
        assert page.cells[0].source == starter.cells[0].source  # the intro, as written
        assert f"{COLAB}{doc}" in page.cells[0].source             # with its Colab badge
        assert len(page.cells) <= 1 + sum(1 for _ in _leading_markdown(starter))
        solution = (ROOT / "solutions" / hw / f"{hw}.ipynb").read_text()
        assert "BEGIN SOLUTION" in solution and "BEGIN SOLUTION" not in nbformat.writes(page)


def _leading_markdown(nb):
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            return
        yield cell


def _widget_notebook(path: Path, monkeypatch) -> str:
    """Notebook 01's title cell (with its Colab badge) and a widget cell carrying the outputs
    that ``FigureWidget.show`` displays: the static twin (PNG) and the live widget (JSON view),
after a progress bar (tqdm's widget).
    Returns the twin's base64 PNG."""
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display",
                        lambda obj, raw=False, **kw: shown.append(dict(obj)))
    InverseCDFWidget(torch.tensor([0.1, 0.2, 0.3, 0.4])).show()
    twin, live = shown
    assert "image/png" in twin and "application/vnd.jupyter.widget-view+json" in live
    source = nbformat.read(ROOT / "notebooks" / "01_histograms.ipynb", as_version=4)
    progress = {"text/plain": "fit:   0%|          | 0/64 [00:00<?, ?it/s]",  # tqdm's widget
                "application/vnd.jupyter.widget-view+json": {
                    "version_major": 2, "version_minor": 0, "model_id": "f" * 32}}
    code = nbformat.v4.new_code_cell(
        "InverseCDFWidget(torch.tensor([0.1, 0.2, 0.3, 0.4]))", execution_count=1,
        outputs=[nbformat.v4.new_output("display_data", data=bundle)
                 for bundle in [progress, *shown]])
    nb = nbformat.v4.new_notebook(cells=[source.cells[0], code], metadata=source.metadata)
    nbformat.write(nb, path)
    return twin["image/png"]


def test_site_builds_one_notebook_with_colab_link_and_static_widget(tmp_path, monkeypatch):
    notebook = tmp_path / "01_histograms.ipynb"
    png = _widget_notebook(notebook, monkeypatch)
    widget_id = nbformat.read(notebook, as_version=4).cells[1].outputs[2]["data"][
        "application/vnd.jupyter.widget-view+json"]["model_id"]

    out = site.build(tmp_path / "site", [notebook], homework=False, guide=False)

    assert (out / "index.html").is_file() and (out / "README.html").is_file()
    page = out / "notebooks" / "01_histograms.html"
    html = page.read_text()
    colab = f"{COLAB}notebooks/01_histograms.ipynb"
    assert re.search(rf'<a href="{re.escape(colab)}"[^>]*title="Launch on Colab"', html), \
        "no Colab launch button"
    assert f'href="{colab}"><img alt="Open In Colab"' in html, "the badge is gone"
    # the static twin, as a picture: the very PNG of the output, written beside the page
    images = re.findall(r'<img [^>]*src="(\.\./_images/[^"]+\.png)"', html)
    assert len(images) == 1, images
    assert (page.parent / images[0]).read_bytes() == base64.b64decode(png)
    # the live widget: its one-line note, not its JSON view nor a widget manager
    assert LIVE_NOTE in html
    assert "widget-view+json" not in html and widget_id not in html
    assert "widget-state+json" not in html and "html-manager" not in html
    assert "0%|" not in html and "f" * 32 not in html, "a progress bar frozen at 0%"
    # the landing page is the README; its links to notebooks not on this site go to GitHub
    landing = (out / "README.html").read_text()
    assert 'href="notebooks/01_histograms.html"' in landing
    assert f'href="{site.GITHUB}/blob/main/notebooks/05_made.ipynb"' in landing
