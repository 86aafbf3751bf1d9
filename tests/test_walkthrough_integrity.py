"""The walkthrough teaches the ideas; it never shows the answers of the homework.

Two checks, on the committed sources of notebooks/01..11 (and, in test_notebooks, on the text
outputs of their smoke run):

* no code cell of the walkthrough shares a run of ``RUN`` or more consecutive *normalised*
  code lines with an answer cell of ``solutions/`` (the reference solutions, which are near
  copies of the library functions that back the exercises);
* no walkthrough cell prints source code (``inspect.getsource``, ``??``, ``%psource``,
  ``%pycat``, ...).

A line is normalised from its tokens: names that are not keywords become ``N``, numbers and
strings ``L``; comments, blank lines, docstrings and imports are dropped (imports are what every
cell shares, and they are no answer). So renaming variables or changing constants does not hide
a copied body, while sharing an idea, or a line or two, is allowed.
"""
from __future__ import annotations

import io
import keyword
import re
import token
import tokenize
from pathlib import Path

import nbformat
import pytest

from arlab.grading.contract import grade_id, is_answer
from arlab.walkthrough import notebooks

ROOT = Path(__file__).resolve().parents[1]
RUN = 4
SHOWS_SOURCE = re.compile(
    r"getsource|getsourcelines|\bpsource\b|\bpycat\b|%load\b|\?\?|dis\.dis|linecache")
_MAGIC = re.compile(r"^\s*[!%]")


def _code(source: str) -> str:
    """Python source of a cell: IPython shell and magic lines blanked, solution markers gone."""
    lines = []
    for line in source.splitlines():
        if _MAGIC.match(line) or "### BEGIN SOLUTION" in line or "### END SOLUTION" in line:
            lines.append("")
        else:
            lines.append(line)
    return "\n".join(lines) + "\n"


def normalised_lines(source: str) -> list[str]:
    """The logical code lines of ``source``, each as its abstracted token string."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(_code(source)).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        # text that is not Python (an output, a traceback): fall back to one line per line
        out = []
        for line in source.splitlines():
            try:
                out.extend(normalised_lines(line))
            except RecursionError:  # pragma: no cover
                pass
        return out
    lines, current = [], []
    for tok in tokens:
        if tok.type in (token.NEWLINE, token.ENDMARKER):
            kinds = [k for k, _ in current]
            is_docstring = kinds == [token.STRING]
            is_import = bool(current) and current[0][1] in ("import", "from")
            if current and not is_docstring and not is_import:
                lines.append(" ".join(text for _, text in current))
            current = []
        elif tok.type in (token.COMMENT, token.NL, token.INDENT, token.DEDENT,
                          token.ENCODING, token.ERRORTOKEN):
            continue
        elif tok.type == token.NAME:
            word = tok.string
            current.append((tok.type, word if keyword.iskeyword(word) else "N"))
        elif tok.type in (token.NUMBER, token.STRING):
            current.append((tok.type, "L"))
        else:
            current.append((tok.type, tok.string))
    return lines


def _runs(lines: list[str], n: int = RUN) -> set[tuple[str, ...]]:
    return {tuple(lines[i:i + n]) for i in range(len(lines) - n + 1)}


def answer_cells() -> dict[str, set[tuple[str, ...]]]:
    """``hw/exercise`` -> the runs of RUN normalised lines of its reference answer."""
    found = {}
    for path in sorted((ROOT / "solutions").glob("*/*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code" and is_answer(cell):
                found[f"{path.parent.name}/{grade_id(cell)}"] = _runs(normalised_lines(cell.source))
    return found


def overlaps(text: str, answers: dict[str, set[tuple[str, ...]]]) -> list[str]:
    """The exercises whose answer shares a run of RUN normalised lines with ``text``."""
    runs = _runs(normalised_lines(text))
    return [name for name, theirs in answers.items() if runs & theirs]


def cell_text_outputs(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append(out.get("text", ""))
        else:
            parts.append(out.get("data", {}).get("text/plain", ""))
    return "".join(parts)


def offending_cells(nbs=None) -> list[tuple[str, int, str]]:
    """(notebook, cell index, reason) for every walkthrough cell that shows an answer."""
    answers = answer_cells()
    found = []
    for path in nbs or notebooks():
        nb = nbformat.read(path, as_version=4)
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            if SHOWS_SOURCE.search(cell.source):
                found.append((path.name, i, "prints source code"))
            for text, where in ((cell.source, "source"), (cell_text_outputs(cell), "output")):
                for name in overlaps(text, answers):
                    found.append((path.name, i, f"its {where} copies {name}"))
    return found


def test_the_normaliser_sees_through_renaming_and_ignores_comments_and_imports():
    a = "import torch\ndef f(x, k=3):\n    '''doc'''\n    y = x + 1  # one\n    return y * k\n"
    b = "from torch import nn\ndef g(z, m=7):\n\n    w = z + 2\n    return w * m\n"
    assert normalised_lines(a) == normalised_lines(b) == [
        "def N ( N , N = L ) :", "N = N + L", "return N * N"]
    assert normalised_lines("!pip install x\n%time y = 1\n") == []


def test_the_overlap_check_finds_a_renamed_copy_and_spares_a_different_body():
    answer = ("def h(samples, d, alpha=0.0):\n    counts = torch.bincount(samples, minlength=d)\n"
              "    counts = counts.to(torch.float32)\n    total = counts.sum() + alpha * d\n"
              "    return (counts + alpha) / total\n")
    copy = answer.replace("counts", "c").replace("0.0", "1.0")
    answers = {"hw/h": _runs(normalised_lines(answer))}
    assert overlaps(copy, answers) == ["hw/h"]
    assert overlaps("p = torch.bincount(x, minlength=4) / len(x)\nprint(p)\n", answers) == []


def test_there_are_answer_cells_to_compare_with():
    assert len(answer_cells()) >= 21


def test_the_walkthrough_shows_no_homework_answer_and_prints_no_source():
    found = offending_cells()
    report = "\n".join(f"{nb} cell {i}: {why}" for nb, i, why in found)
    assert not found, (f"{len({(nb, i) for nb, i, _ in found})} walkthrough cells show "
                       f"reference code; teach the idea with other material:\n{report}")
