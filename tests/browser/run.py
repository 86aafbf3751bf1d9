"""Browser test: every walkthrough widget drawn and redrawn in JupyterLab, seen by Chromium.

    .venv/bin/python tests/browser/run.py [--out build/browser] [--only NAME,...]

For each case of cases.py it opens a generated notebook in JupyterLab, runs it, and checks
that the widget's figure is a decoded image, that moving a slider, a dropdown, a button,
toggle buttons and a checkbox (one of each kind the widget has) changes it, and that the page
shows no widget error and raises no page error. Then it opens a saved executed notebook without running it (the static twin
must show) and a homework starter (its cells must render). Screenshots and report.md go to
``--out``. Exit status 1 when a check fails. Run by ``make test-browser``.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cases import CASES, notebook  # noqa: E402
from lab import find_chromium, jupyterlab  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
STARTER = ROOT / "starter" / "hw1_foundations" / "hw1_foundations.ipynb"
FIRST_DRAW_S, REDRAW_S = 240, 90

# The figure of the live widget: the image inside the widget's Output area.
FIGURE_JS = """w => { const img = w.querySelector('.widget-output img');
  return img ? {src: img.src, ok: img.complete && img.naturalWidth > 0,
                width: img.naturalWidth, height: img.naturalHeight} : null; }"""


class Page:
    """A fresh browser tab and lab workspace per notebook, collecting page and console
    errors; ``close()`` also shuts the lab's kernels down (two cores go a long way)."""

    def __init__(self, browser, base: str, name: str):
        self.base, self.token = base.split("|")
        self.page = browser.new_page(viewport={"width": 1500, "height": 1100})
        self.errors: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        self.page.on("console", lambda m: m.type == "error"
                     and self.errors.append(f"console error: {m.text[:300]}"))
        space = Path(name).stem.replace(".", "-")
        self.page.goto(f"{self.base}/lab/workspaces/{space}/tree/{name}?reset&token={self.token}")
        self.page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=120_000)
        self.page.get_by_text("| Idle").first.wait_for(timeout=120_000)  # kernel ready

    def run_all(self) -> None:
        self.page.locator(".jp-NotebookPanel .jp-Cell").first.click()
        self.page.locator(".lm-MenuBar-item", has_text="Run").first.click()
        self.page.locator(".lm-Menu-item", has_text="Run All Cells").first.click()

    def widget_errors(self) -> int:
        return self.page.get_by_text("Error displaying widget").count()

    def close(self) -> None:
        self.page.close()
        api = f"{self.base}/api/kernels?token={self.token}"
        for kernel in json.load(urllib.request.urlopen(api, timeout=10)):
            urllib.request.urlopen(urllib.request.Request(
                f"{self.base}/api/kernels/{kernel['id']}?token={self.token}", method="DELETE"),
                timeout=30)


def _wait_figure(page, widget, before: str | None, timeout_s: float) -> dict:
    """The widget's figure once it is a decoded image (and differs from ``before``); raises
    AssertionError with what was seen when it does not come."""
    deadline, seen = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        seen = widget.evaluate(FIGURE_JS)
        if seen and seen["ok"] and seen["src"] != before:
            return seen
        page.wait_for_timeout(250)
    if seen is None:
        raise AssertionError("no figure image in the widget")
    if not seen["ok"]:
        raise AssertionError(f"the figure is a broken image (src starts {seen['src'][:48]!r})")
    raise AssertionError("the figure did not change after the control moved")


def _controls(widget) -> list[tuple[str, object]]:
    """One control of each kind the widget has, with how to move it."""
    found = []
    slider = widget.locator(".widget-slider .noUi-handle")
    if slider.count():
        def move_slider(h=slider.first):
            h.focus()
            h.press("ArrowLeft")
        found.append(("slider", move_slider))
    dropdown = widget.locator(".widget-dropdown select:not([disabled])")
    if dropdown.count():
        def move_dropdown(s=dropdown.first):
            n, now = s.evaluate("s => [s.options.length, s.selectedIndex]")
            s.select_option(index=(now + 1) % n)
        found.append(("dropdown", move_dropdown))
    for kind, selector in (("button", "button.widget-button"),
                           ("toggle", ".widget-toggle-buttons button:not(.mod-active)"),
                           ("checkbox", ".widget-checkbox input[type=checkbox]")):
        control = widget.locator(selector)
        if control.count():
            found.append((kind, lambda c=control.first: c.click()))
    return found


def check_widget(browser, base: str, name: str, out: Path) -> dict:
    """Run case ``name`` and move each kind of control; returns its report row."""
    row = {"name": name, "checks": [], "failures": [], "redraw_s": []}
    lab = Page(browser, base, f"{name}.ipynb")
    page = lab.page
    lab.run_all()
    try:
        cell = page.locator(".jp-NotebookPanel .jp-Cell").last
        widget = cell.locator(".jupyter-widgets.widget-vbox").first
        widget.wait_for(timeout=FIRST_DRAW_S * 1000)
        fig = _wait_figure(page, widget, None, 30)
        row["checks"].append(f"first figure {fig['width']}x{fig['height']} px")
        twin = cell.locator("img[class^='arlab-twin']")
        if twin.count() and twin.first.is_visible():
            row["failures"].append("the static twin shows beside the live figure")
        widget.screenshot(path=str(out / f"{name}_0_first.png"))
        for k, (kind, move) in enumerate(_controls(widget), start=1):
            shot = widget.screenshot()
            start = time.monotonic()
            move()
            fig = _wait_figure(page, widget, fig["src"], REDRAW_S)
            row["redraw_s"].append(round(time.monotonic() - start, 2))
            page.wait_for_timeout(300)  # the new image is painted
            after = widget.screenshot(path=str(out / f"{name}_{k}_{kind}.png"))
            if after == shot:
                raise AssertionError(f"moving the {kind} left the pixels unchanged")
            row["checks"].append(f"{kind} redraws ({fig['width']}x{fig['height']} px)")
    except Exception as err:  # noqa: BLE001 - every failure goes into the report
        row["failures"].append(f"{type(err).__name__}: {str(err).splitlines()[0][:200]}")
        page.screenshot(path=str(out / f"{name}_failed.png"))
    if lab.widget_errors():
        row["failures"].append("'Error displaying widget' on the page")
    row["failures"] += [e for e in lab.errors if "console error" not in e]
    row["console"] = [e for e in lab.errors if "console error" in e]
    if any("ERR_INVALID_URL" in e for e in row["console"]):
        row["failures"].append("an image URL the browser cannot read (ERR_INVALID_URL)")
    lab.close()
    return row


def check_reopened(browser, base: str, out: Path) -> dict:
    """A saved executed notebook opened without running it shows the static twin."""
    row = {"name": "reopened (saved outputs, cells not run)", "checks": [], "failures": []}
    lab = Page(browser, base, "reopened.ipynb")
    try:
        cell = lab.page.locator(".jp-NotebookPanel .jp-Cell").last
        lab.page.wait_for_timeout(3000)  # widget views have tried to render
        # a picture outside any widget view: the static twin
        img = cell.locator(".jp-OutputArea-output:not(:has(.jupyter-widgets)) img").first
        img.wait_for(timeout=60_000)
        size = img.evaluate("i => i.complete ? i.naturalWidth : 0")
        assert size > 0 and img.is_visible(), "no visible static twin"
        row["checks"].append(f"static twin visible ({size} px wide)")
        row["checks"].append(f"widget error lines shown: {lab.widget_errors()} (expected: the "
                             "widget needs its kernel)")
        cell.screenshot(path=str(out / "reopened.png"))
    except Exception as err:  # noqa: BLE001
        row["failures"].append(f"{type(err).__name__}: {str(err).splitlines()[0][:200]}")
    row["failures"] += [e for e in lab.errors if "console error" not in e]
    lab.close()
    return row


def check_starter(browser, base: str, out: Path) -> dict:
    """The homework starter opens with every cell rendered and no page error."""
    row = {"name": f"starter {STARTER.name}", "checks": [], "failures": []}
    lab = Page(browser, base, STARTER.name)
    try:
        want = len(nbformat.read(STARTER, as_version=4).cells)
        cells = lab.page.locator(".jp-NotebookPanel .jp-Cell")
        lab.page.wait_for_function(f"document.querySelectorAll('.jp-NotebookPanel .jp-Cell')"
                                   f".length >= {want}", timeout=60_000)
        rendered = lab.page.locator(".jp-MarkdownCell .jp-RenderedMarkdown").count()
        assert cells.count() == want, f"{cells.count()} of {want} cells shown"
        assert rendered > 0, "no markdown cell rendered"
        assert not lab.page.locator(".jp-Dialog").count(), "a dialog opened over the page"
        row["checks"].append(f"{want} cells, {rendered} markdown cells rendered")
        lab.page.screenshot(path=str(out / "starter_hw1.png"))
    except Exception as err:  # noqa: BLE001
        row["failures"].append(f"{type(err).__name__}: {str(err).splitlines()[0][:200]}")
    row["failures"] += [e for e in lab.errors if "console error" not in e]
    lab.close()
    return row


def _prepare(root: Path, names: set[str]) -> None:
    for name, setup, call in CASES:
        if name in names:
            nbformat.write(notebook(setup, call), root / f"{name}.ipynb")
    from nbclient import NotebookClient  # the saved notebook of a finished session

    name, setup, call = CASES[0]
    saved = notebook(setup, call)
    NotebookClient(saved, timeout=300, kernel_name="python3").execute()
    saved.metadata.pop("widgets", None)  # as JupyterLab saves by default: no widget state
    nbformat.write(saved, root / "reopened.ipynb")
    shutil.copy(STARTER, root / STARTER.name)


def report(rows: list[dict], out: Path, seconds: float) -> bool:
    ok = not any(r["failures"] for r in rows)
    lines = ["# Browser test", "", f"JupyterLab in headless Chromium, ARLAB_BUDGET=smoke; "
             f"{'PASSED' if ok else 'FAILED'} in {seconds:.0f} s. Screenshots beside this file "
             "(`<case>_0_first.png`, then one per control moved).", "",
             "| case | result | checks | seconds per redraw (browser) |", "|---|---|---|---|"]
    for r in rows:
        result = "ok" if not r["failures"] else "FAIL: " + "; ".join(r["failures"])
        lines.append(f"| {r['name']} | {result} | {'; '.join(r['checks'])} | "
                     f"{', '.join(map(str, r.get('redraw_s', [])))} |")
    console = sorted({e for r in rows for e in r.get("console", [])})
    if console:
        lines += ["", "Console errors seen (not failures unless listed above):", ""]
        lines += [f"- `{e}`" for e in console[:20]]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    failed = sum(bool(r["failures"]) for r in rows)
    print(f"browser: {len(rows) - failed} passed, {failed} failed")  # the closing line CI reads
    return ok


def main(argv: list[str] | None = None) -> int:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description="arlab browser test")
    parser.add_argument("--out", default=str(ROOT / "build" / "browser"))
    parser.add_argument("--only", default=None, help="comma-separated case names")
    args = parser.parse_args(argv)
    names = set(args.only.split(",")) if args.only else {c[0] for c in CASES}
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="arlab-browser-") as tmp:
        root, state = Path(tmp) / "lab", Path(tmp) / "state"
        root.mkdir()
        _prepare(root, names)
        with jupyterlab(root, state, out / "jupyterlab.log") as base, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=find_chromium())
            try:
                rows = [check_widget(browser, base, name, out)
                        for name, _, _ in CASES if name in names]
                rows += [check_reopened(browser, base, out), check_starter(browser, base, out)]
            finally:
                browser.close()
    return 0 if report(rows, out, time.monotonic() - start) else 1


if __name__ == "__main__":
    raise SystemExit(main())
