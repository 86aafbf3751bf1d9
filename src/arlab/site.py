"""Build the course site: a Jupyter Book (1.x: Sphinx + MyST-NB) of the walkthrough notebooks
with their committed outputs, the homework introductions and the instructor's guide.

    python -m arlab.site --out build/site [NOTEBOOK ...]

The book's config and table of contents are committed in ``site/``. The pages' sources are
copied into a work folder (default ``build/site-src/book``) under their repository paths, so
the Colab launch button and the links between pages point at the real files:

- ``README.md`` is the landing page; ``grader/README.md`` the instructor's guide;
- ``notebooks/NN_*.ipynb`` are shown as committed (they are never executed here), without
  their saved widget state; a widget cell shows its static twin (the PNG) and the live
  widget's one-line note (the mime priorities in ``site/_config.yml``);
- ``starter/<hw>/<hw>.ipynb`` become pages of the assignment's introduction only (the starter
  notebook's leading markdown cells): no code, and nothing from ``solutions/``, is on the site.

A relative link to a file that is not a page (source code, the benchmarks' results) becomes
a link to the file on GitHub; images the pages show (``docs/widgets/*.png``) are copied.
Given notebooks, the site has only those as its walkthrough (a quick build, e.g. in a test).
"""
from __future__ import annotations

import argparse
import posixpath
import re
import shutil
import sys
import time
import warnings
from pathlib import Path

from arlab.walkthrough import REPO

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "site"
GITHUB = f"https://github.com/{REPO}"
IMAGES = {".png", ".jpg", ".jpeg", ".gif", ".svg"}
# the target of a Markdown link or image: ](target) or ](target "title")
_LINK = re.compile(r"\]\(\s*<?([^)\s>]+)>?")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
# tqdm's notebook bar: a widget whose text is its state when first shown ("  0%|   | 0/64")
_PROGRESS_BAR = re.compile(r"\d+%\|.*\|\s*\d+/\d+")
HOMEWORK_NOTE = (
    "*This page is the assignment's introduction. The exercises are in the starter notebook "
    "[`{path}`]({url}): open it in Colab with the badge above, or locally with `make lab`.*")


def relink(text: str, doc: str, pages: set[str], assets: set[str]) -> str:
    """Rewrite the relative link targets in the Markdown ``text`` of the repository file
    ``doc``: a page of the site stays as it is, an image is kept and added to ``assets``,
    anything else in the repository becomes its GitHub address."""
    base = posixpath.dirname(doc)

    def fix(match: re.Match) -> str:
        target = match.group(1)
        if _SCHEME.match(target) or target.startswith(("#", "/")):
            return match.group(0)
        path, hash_, frag = target.partition("#")
        repo_path = posixpath.normpath(posixpath.join(base, path))
        if repo_path.startswith("..") or repo_path in pages:
            return match.group(0)
        where = ROOT / repo_path
        if where.is_file() and where.suffix.lower() in IMAGES:
            assets.add(repo_path)
            return match.group(0)
        kind = "tree" if where.is_dir() else "blob"
        return f"]({GITHUB}/{kind}/main/{repo_path}{hash_}{frag}"

    return _LINK.sub(fix, text)


def homework_intro(starter: Path, doc: str, pages: set[str], assets: set[str]):
    """The introduction page of one assignment: the starter notebook's leading markdown cells
    (its title, Colab badge, exercises and points), then a pointer to the notebook itself."""
    import nbformat

    nb = nbformat.read(starter, as_version=4)
    cells = []
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            break
        cells.append(nbformat.v4.new_markdown_cell(relink(cell.source, doc, pages, assets)))
    if not cells:
        raise ValueError(f"{starter} does not start with a markdown introduction")
    cells.append(nbformat.v4.new_markdown_cell(
        HOMEWORK_NOTE.format(path=doc, url=f"{GITHUB}/blob/main/{doc}")))
    meta = {k: nb.metadata[k] for k in ("kernelspec", "language_info") if k in nb.metadata}
    return nbformat.v4.new_notebook(cells=cells, metadata=meta)


def walkthrough_page(path: Path, doc: str, pages: set[str], assets: set[str]):
    """A walkthrough notebook as committed, with its outputs; markdown links fixed, the saved
    widget state dropped (the pages show the widgets' static twins instead) and so are
    progress bars (without a kernel they would read "0%" for ever)."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    nb.metadata.pop("widgets", None)
    # highlighted as IPython (the Colab setup cell's `!pip`), whatever kernel saved it
    nb.metadata.setdefault("language_info", {"name": "python"})
    nb.metadata.language_info.setdefault("pygments_lexer", "ipython3")
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = relink(cell.source, doc, pages, assets)
        elif cell.cell_type == "code":
            cell.outputs = [out for out in cell.outputs if not _progress_bar(out)]
    return nb


def _progress_bar(output) -> bool:
    data = output.get("data", {})
    return WIDGET_VIEW in data and bool(_PROGRESS_BAR.search(data.get("text/plain", "")))


def _write(path: Path, text: str | bytes, written: set[Path]) -> None:
    """Write only what changed, so that Sphinx rebuilds only the pages whose source did."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode() if isinstance(text, str) else text
    if not path.exists() or path.read_bytes() != data:
        path.write_bytes(data)
    written.add(path.resolve())


def stage(book: Path, notebooks: list[Path] | None = None, homework: bool = True,
          guide: bool = True) -> list[str]:
    """Write the book's sources into ``book``; returns the site's pages (repository paths)."""
    import nbformat
    import yaml

    toc = yaml.safe_load((SITE / "_toc.yml").read_text())
    parts = {part["caption"]: part for part in toc["parts"]}
    if notebooks is None:
        walk = {f"{c['file']}.ipynb": ROOT / f"{c['file']}.ipynb"
                for c in parts["Walkthrough"]["chapters"]}
    else:
        walk = {f"notebooks/{Path(p).name}": Path(p).resolve() for p in notebooks}
    homeworks = ({f"{c['file']}.ipynb": ROOT / f"{c['file']}.ipynb"
                  for c in parts["Homework"]["chapters"]} if homework else {})
    docs = {"README.md": ROOT / "README.md"}
    if guide:
        docs.update({f"{c['file']}.md": ROOT / f"{c['file']}.md"
                     for c in parts["Instructors"]["chapters"]})
    pages = {toc["root"] + ".md"} | set(walk) | set(homeworks) | set(docs)
    missing = [str(p) for p in [*walk.values(), *homeworks.values(), *docs.values()]
               if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"not found: {', '.join(missing)}")

    book.mkdir(parents=True, exist_ok=True)
    written: set[Path] = set()
    assets: set[str] = set()
    for doc, src in docs.items():
        _write(book / doc, relink(src.read_text(), doc, pages, assets), written)
    for doc, src in walk.items():
        _write(book / doc, nbformat.writes(walkthrough_page(src, doc, pages, assets)), written)
    for doc, src in homeworks.items():
        _write(book / doc, nbformat.writes(homework_intro(src, doc, pages, assets)), written)
    for asset in sorted(assets):
        _write(book / asset, (ROOT / asset).read_bytes(), written)

    def chapters(files):
        return [{"file": posixpath.splitext(f)[0]} for f in files]

    new_parts = [{"caption": "Walkthrough", "chapters": chapters(walk)}]
    if homeworks:
        new_parts.append({"caption": "Homework", "chapters": chapters(homeworks)})
    if guide:
        new_parts.append(parts["Instructors"])
    new_toc = {"format": toc["format"], "root": toc["root"], "parts": new_parts}
    _write(book / "_toc.yml", yaml.safe_dump(new_toc, sort_keys=False), written)
    _write(book / "_config.yml", (SITE / "_config.yml").read_text(), written)
    for old in sorted(book.rglob("*"), reverse=True):  # pages of an earlier, larger build
        if old.is_file() and old.resolve() not in written:
            old.unlink()
        elif old.is_dir() and not any(old.iterdir()):
            old.rmdir()
    return sorted(pages)


def build(out: Path | str = "build/site", notebooks: list[Path] | None = None, *,
          homework: bool = True, guide: bool = True, work: Path | str | None = None,
          quiet: bool = True) -> Path:
    """Build the site into ``out`` (its ``index.html`` opens the landing page); returns
    ``out``. ``notebooks``: the walkthrough notebooks to show (default: all of the table of
    contents); ``work``: where the sources and Sphinx's caches go (default: beside ``out``,
    ``<out>-src``). Raises ``RuntimeError`` when Sphinx fails."""
    from jupyter_book.sphinx import build_sphinx

    out = Path(out).resolve()
    work = Path(work).resolve() if work else out.with_name(out.name + "-src")
    book = work / "book"
    stage(book, notebooks, homework, guide)
    html = work / "_build" / "html"  # MyST-NB writes output images beside it (jupyter_execute)
    overrides = {"external_toc_path": (book / "_toc.yml").as_posix(),
                 "latex_individualpages": False}
    with warnings.catch_warnings():
        # Sphinx's collectors look at every live object; torch's deprecated aliases warn then
        warnings.simplefilter("ignore", FutureWarning)
        result = build_sphinx(book, html, noconfig=True, path_config=str(book / "_config.yml"),
                              confoverrides=overrides,
                              doctreedir=work / "_build" / ".doctrees", quiet=quiet,
                              builder="html", jobs=1)
    if isinstance(result, BaseException) or result:
        raise RuntimeError(f"the site build failed ({result!r}); see the messages above")
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(html, out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="walkthrough notebooks to show (default: all, as in site/_toc.yml)")
    parser.add_argument("--out", type=Path, default=Path("build/site"))
    parser.add_argument("--work", type=Path, default=None,
                        help="sources and caches (default: <out>-src)")
    parser.add_argument("--no-homework", action="store_true")
    parser.add_argument("--no-guide", action="store_true")
    parser.add_argument("--verbose", action="store_true", help="Sphinx's progress messages")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        out = build(args.out, args.notebooks or None, homework=not args.no_homework,
                    guide=not args.no_guide, work=args.work, quiet=not args.verbose)
    except (RuntimeError, FileNotFoundError, ValueError) as err:
        print(f"arlab.site: {err}", file=sys.stderr)
        return 1
    print(f"arlab: site built in {time.perf_counter() - start:.0f} s -> {out / 'index.html'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
