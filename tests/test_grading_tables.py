"""Grading declared as data: each assignment's table (exercise, points, parts) agrees with the
points the homework states everywhere else, and the grading package imports without cycles.

The points live in four places: the tables in :mod:`arlab.grading.homework`, the test cells'
nbgrader points in the solution and starter notebooks, the contract in
``test_homework_contract.CONTRACT``, and the points column of ``shared/HOMEWORK.md``.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from arlab.grading.contract import exercises, grade_id, nbgrader_meta
from arlab.grading.homework import ASSIGNMENTS
from test_homework_contract import CONTRACT, ROOT, _cells

GRADING = ROOT / "src" / "arlab" / "grading"
HOMEWORK_MD = ROOT.parent / "shared" / "HOMEWORK.md"


def _notebook_points(folder: str, hw: str) -> dict[str, float]:
    """Exercise -> the points of its test cells, read from the notebooks in ``folder/hw``."""
    cells = _cells(folder, hw)
    points = {grade_id(c): nbgrader_meta(c).get("points", 0) for c in cells
              if nbgrader_meta(c).get("grade") and not nbgrader_meta(c).get("solution")}
    return {name: sum(points[t] for t in tests) for name, tests in exercises(cells).items()}


def _markdown_points(text: str) -> dict[str, dict[str, float]]:
    """Assignment -> exercise -> points, from the ``## hw...`` tables of HOMEWORK.md."""
    found: dict[str, dict[str, float]] = {}
    section = None
    for line in text.splitlines():
        heading = re.match(r"## (hw\w+)", line)
        if heading:
            section = found.setdefault(heading.group(1), {})
            continue
        row = re.match(r"\|\s*`(\w+)`\s*\|.*\|\s*([\d.]+)\s*\|\s*$", line)
        if section is not None and row:
            section[row.group(1)] = float(row.group(2))
    return found


def test_the_registry_lists_every_assignment_of_the_contract():
    assert list(ASSIGNMENTS) == list(CONTRACT)
    assert all(table.name == hw for hw, table in ASSIGNMENTS.items())


@pytest.mark.parametrize("hw", CONTRACT)
def test_table_points_equal_the_contract_and_the_notebooks(hw):
    table = ASSIGNMENTS[hw].points
    assert table == CONTRACT[hw]
    for folder in ("solutions", "starter"):
        assert _notebook_points(folder, hw) == table, f"{folder}/{hw} states other points"


@pytest.mark.parametrize("hw", CONTRACT)
def test_table_cells_are_the_notebooks_test_cells_with_their_points(hw):
    """Each part's cell and points are those of one test cell in the notebooks."""
    for folder in ("solutions", "starter"):
        cells = _cells(folder, hw)
        tests = {grade_id(c): nbgrader_meta(c).get("points", 0) for c in cells
                 if nbgrader_meta(c).get("grade") and not nbgrader_meta(c).get("solution")}
        parts = ASSIGNMENTS[hw].parts
        assert {cell: part.points for cell, part in parts.items()} == tests, folder
        owners = exercises(cells)
        assert all(part.cell in owners[part.exercise] for part in parts.values()), folder


@pytest.mark.skipif(not HOMEWORK_MD.exists(), reason="shared/HOMEWORK.md is not beside the "
                    "repository")
def test_table_points_equal_the_homework_contract_document():
    stated = _markdown_points(HOMEWORK_MD.read_text(encoding="utf-8"))
    assert set(stated) == set(ASSIGNMENTS)
    for hw, table in ASSIGNMENTS.items():
        assert stated[hw] == table.points, f"HOMEWORK.md states other points for {hw}"


def test_markdown_points_are_read_from_the_tables_only():
    text = ("## hw9_demo (x)\n| exercise | contract | points |\n|---|---|---|\n"
            "| `f` | `(a \\| b) -> int`: 3 things | 2 |\n| `g` | g | 1.5 |\nprose | 7 |\n")
    assert _markdown_points(text) == {"hw9_demo": {"f": 2.0, "g": 1.5}}


def _module_of(path: Path) -> str:
    parts = path.relative_to(ROOT / "src").with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The modules of ``modules`` that ``path`` imports anywhere (a function's own imports
    included): ``from arlab.grading import contract`` names the submodule."""
    here = _module_of(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in modules else base)
    return found & modules - {here}


def _import_graph() -> dict[str, set[str]]:
    paths = sorted(GRADING.rglob("*.py"))
    modules = {_module_of(p) for p in paths}
    return {_module_of(p): _imports(p, modules) for p in paths}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}     # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


def test_no_module_of_the_grading_package_imports_in_a_cycle():
    graph = _import_graph()
    assert "arlab.grading.homework.hw1_foundations" in graph
    assert "arlab.grading.homework" not in graph["arlab.grading.parts"]
    assert not any(m.startswith("arlab.grading.homework") for m in graph["arlab.grading.parts"])
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_the_cycle_check_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_function_of_autograde_takes_more_than_five_parameters():
    tree = ast.parse((GRADING / "autograde.py").read_text(encoding="utf-8"))
    wide = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            a = node.args
            count = len(a.posonlyargs) + len(a.args) + len(a.kwonlyargs) + \
                (a.vararg is not None) + (a.kwarg is not None)
            if count > 5:
                wide.append(f"{node.name} ({count})")
    assert wide == []
