"""Refusing answers that use arlab's reference implementations, decided on the syntax tree.

The references are public (the walkthrough teaches with them), so an answer cell that imports
them scores 0 for its exercise. The check reads the cell's syntax tree (never its text), so a
comment or a string that mentions ``arlab.models`` is fine, while every spelling of an import
is caught: ``import``/``from`` statements, ``import arlab`` then ``arlab.made_masks``,
``from arlab import *``, ``importlib.import_module``, ``__import__``, ``getattr``, ``exec`` of a
constant string, ``sys.modules[...]`` and ``%run``. Code whose target is computed at run time
(``import_module(name)``, ``exec(text)``) cannot be checked and is refused too.

This module imports neither nbgrader nor torch, so the students' self-check can use it.
"""
from __future__ import annotations

import ast
import functools
import importlib.util
import pkgutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from arlab.grading import contract

#: arlab modules an answer may use (``budget`` is the former name of ``compute``)
ALLOWED_MODULES = frozenset({"data", "units", "budget", "compute", "train", "viz"})
_ALLOWED_TEXT = "answers may use arlab.data, arlab.units, arlab.compute, arlab.train and arlab.viz"
RULES_BEGIN, RULES_END = "<!-- import rules -->", "<!-- /import rules -->"


def rules_text() -> str:
    """The import rules in words, as every homework introduction and the grader's README
    state them (between ``RULES_BEGIN`` and ``RULES_END``; a test keeps them equal)."""
    allowed = ", ".join(f"`arlab.{m}`" for m in sorted(ALLOWED_MODULES - {"budget"}))
    return (f"Your answers may use `torch`, `math` and, of the course's library, {allowed}. "
            "An answer that uses `arlab.models`, `arlab.grading` or any other part of `arlab` "
            "scores 0 for its exercise, and so does one that uses the exercise's own name "
            "from any module, even an allowed one (in `bits_per_dim`, `from arlab.units "
            "import bits_per_dim` scores 0). The grader reads your cells' syntax and also "
            "recognises the course's own code when it runs, however it was reached (a "
            "pickle, `sys.modules`, `getattr`, a subclass): write each exercise yourself.")
_NAMESPACE_DOORS = frozenset({"__dict__", "__getattr__", "__getattribute__", "__loader__",
                              "__spec__"})
_IMPORTERS = frozenset({"import_module", "__import__", "run_module"})
_CODE_RUNNERS = frozenset({"exec", "eval", "compile"})
_FILE_MAGICS = frozenset({"run", "load", "loadpy"})


@functools.lru_cache(maxsize=1)
def reference_names() -> frozenset[str]:
    """Exercise names whose references ``arlab`` re-exports (its ``_REFERENCE`` table).

    Read from the package source with ``ast`` rather than by importing ``arlab``, which would
    load torch into the grader's process for nothing.
    """
    spec = importlib.util.find_spec("arlab")
    if spec is not None and spec.origin:
        tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
        for node in tree.body:
            targets = node.targets if isinstance(node, ast.Assign) else (
                [node.target] if isinstance(node, ast.AnnAssign) else [])
            if any(isinstance(t, ast.Name) and t.id == "_REFERENCE" for t in targets):
                return frozenset(ast.literal_eval(node.value))
    import arlab  # the table is computed: fall back to the real thing

    return frozenset(getattr(arlab, "_REFERENCE", {}))


@functools.lru_cache(maxsize=1)
def arlab_submodules() -> frozenset[str]:
    """Names of arlab's modules and subpackages (found on disk, nothing imported)."""
    spec = importlib.util.find_spec("arlab")
    if spec is None or not spec.submodule_search_locations:
        return frozenset({"models", "grading"})
    found = {m.name for m in pkgutil.iter_modules(spec.submodule_search_locations)}
    return frozenset(found | {"models", "grading"})


def _verdict(path: str, exercise: str | None, module: bool) -> str | None:
    """Why the dotted arlab path may not appear in an answer, or None when it may.

    ``module``: the path names a module (an import), so anything outside the allowed list is
    refused; otherwise it may be a plain name such as ``arlab.device``.
    """
    parts = path.split(".")
    if parts[0] != "arlab":
        return None
    if exercise and exercise in parts[1:]:
        return f"{path} is arlab's own {exercise}, the very thing this exercise asks you to write"
    if len(parts) == 1:
        return None
    head = parts[1]
    if head == "*":
        return "a star import from arlab brings in the reference implementations"
    if head in reference_names():
        return f"arlab.{head} is the reference implementation of the exercise {head}"
    if head in _NAMESPACE_DOORS or any(p in _NAMESPACE_DOORS for p in parts[2:]):
        return "reaching into arlab's namespace cannot be checked"
    if head in ALLOWED_MODULES:
        if "*" in parts[2:]:
            return "a star import from arlab cannot be checked name by name; import what you need"
        return None
    if module or head in arlab_submodules():
        return f"arlab.{head} is not for answers ({_ALLOWED_TEXT})"
    return None


@dataclass
class Scan:
    """What one cell does with arlab: refusals, names it binds to refused things, aliases of
    allowed arlab modules, and the plain names it reads."""

    reasons: list[str] = field(default_factory=list)
    bound: set[str] = field(default_factory=set)
    aliases: dict[str, str] = field(default_factory=dict)
    names_used: set[str] = field(default_factory=set)


def _python_source(source: str) -> str:
    """Cell source as plain Python: IPython magics (``%run``, ``%%time``) become calls."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        return TransformerManager().transform_cell(source)
    except Exception:  # no IPython, or a cell it cannot read: drop magic and shell lines
        return "\n".join("" if line.lstrip().startswith(("%", "!")) else line
                         for line in source.splitlines())


def _constant_str(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


class _Scanner(ast.NodeVisitor):
    def __init__(self, source: str, exercise: str | None, aliases: Mapping[str, str]):
        self.source = source
        self.exercise = exercise
        self.aliases = {"arlab": "arlab", **aliases}
        self.result = Scan()

    # -- helpers -----------------------------------------------------------------------
    def refuse(self, node: ast.AST, why: str) -> None:
        code = ast.get_source_segment(self.source, node) or type(node).__name__
        code = " ".join(code.split())
        code = code if len(code) <= 70 else code[:67] + "..."
        reason = f"line {getattr(node, 'lineno', '?')}: `{code}`: {why}"
        if reason not in self.result.reasons:
            self.result.reasons.append(reason)

    def resolve(self, node: ast.AST) -> str | None:
        """The dotted arlab path of a ``name.attr.attr`` chain rooted at an arlab alias."""
        parts = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if isinstance(node, ast.Name) and node.id in self.aliases:
            return ".".join([self.aliases[node.id], *reversed(parts)])
        return None

    def nested(self, node: ast.AST, text: str) -> None:
        """Scan code held in a constant string (exec, a cell magic's body)."""
        inner = scan(text, self.exercise, self.aliases)
        for reason in inner.reasons:
            self.refuse(node, f"inside the string: {reason}")
        self.result.bound |= inner.bound

    # -- statements --------------------------------------------------------------------
    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name.split(".")[0] != "arlab":
                continue
            why = _verdict(alias.name, self.exercise, module=True)
            bound = alias.asname or alias.name.split(".")[0]
            if why:
                self.refuse(node, why)
                self.result.bound.add(bound)
            else:
                self.result.aliases[bound] = alias.name if alias.asname else "arlab"
                self.aliases[bound] = self.result.aliases[bound]

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level or not node.module or node.module.split(".")[0] != "arlab":
            return
        for alias in node.names:
            full = f"{node.module}.{alias.name}"
            why = (_verdict(node.module, self.exercise, module=True)
                   or _verdict(full, self.exercise, module=False))
            if why:
                self.refuse(node, why)
                if alias.name != "*":
                    self.result.bound.add(alias.asname or alias.name)
            elif alias.name != "*":
                self.result.aliases[alias.asname or alias.name] = full
                self.aliases[alias.asname or alias.name] = full

    # -- expressions -------------------------------------------------------------------
    def visit_Name(self, node: ast.Name) -> None:
        self.result.names_used.add(node.id)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        path = self.resolve(node)
        if path is None:
            self.generic_visit(node)
            return
        why = _verdict(path, self.exercise, module=False)
        if why:
            self.refuse(node, why)
        root = node
        while isinstance(root, ast.Attribute):
            root = root.value
        self.visit(root)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        target = node.value
        if isinstance(target, ast.Attribute) and target.attr == "modules" and \
                isinstance(target.value, ast.Name) and target.value.id == "sys":
            name = _constant_str(node.slice)
            if name and _verdict(name, self.exercise, module=True):
                self.refuse(node, _verdict(name, self.exercise, module=True))
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = func.id if isinstance(func, ast.Name) else (
            func.attr if isinstance(func, ast.Attribute) else None)
        first = node.args[0] if node.args else None
        if name in _IMPORTERS:
            self.check_importer(node, name, first)
        elif name == "getattr" and isinstance(func, ast.Name) and len(node.args) >= 2:
            owner = self.resolve(node.args[0])
            if owner is not None:
                attr = _constant_str(node.args[1])
                if attr is None:
                    self.refuse(node, "getattr on arlab with a computed name cannot be checked")
                elif _verdict(f"{owner}.{attr}", self.exercise, module=False):
                    self.refuse(node, _verdict(f"{owner}.{attr}", self.exercise, module=False))
        elif name in _CODE_RUNNERS and (isinstance(func, ast.Name) or (
                isinstance(func.value, ast.Name) and func.value.id == "builtins")):
            text = _constant_str(first)
            if text is None:
                self.refuse(node, f"{name}() of code built at run time cannot be checked")
            else:
                self.nested(node, text)
        elif name == "get" and isinstance(func, ast.Attribute) and \
                isinstance(func.value, ast.Attribute) and func.value.attr == "modules":
            text = _constant_str(first)
            if text and _verdict(text, self.exercise, module=True):
                self.refuse(node, _verdict(text, self.exercise, module=True))
        elif name in ("run_line_magic", "run_cell_magic") and first is not None:
            self.check_magic(node, name)
        self.generic_visit(node)

    def check_importer(self, node: ast.Call, name: str, first: ast.AST | None) -> None:
        module = _constant_str(first)
        if module is None:
            self.refuse(node, f"{name}() with a module name computed at run time cannot be "
                              "checked; write a plain import")
            return
        why = _verdict(module, self.exercise, module=True)
        if why:
            self.refuse(node, why)
            return
        if name == "__import__" and module == "arlab":
            fromlist = next((k.value for k in node.keywords if k.arg == "fromlist"),
                            node.args[3] if len(node.args) > 3 else None)
            if isinstance(fromlist, (ast.List, ast.Tuple)):
                for item in fromlist.elts:
                    text = _constant_str(item)
                    why = _verdict(f"arlab.{text}", self.exercise, module=False) if text else \
                        "__import__ with a computed fromlist cannot be checked"
                    if why:
                        self.refuse(node, why)
            elif fromlist is not None:
                self.refuse(node, "__import__ with a computed fromlist cannot be checked")

    def check_magic(self, node: ast.Call, name: str) -> None:
        magic = _constant_str(node.args[0])
        texts = [_constant_str(a) for a in node.args[1:]]
        if name == "run_cell_magic" and len(texts) >= 2 and texts[1] is not None:
            self.nested(node, texts[1])
        if magic in _FILE_MAGICS and any(t and "arlab" in t for t in texts):
            self.refuse(node, f"%{magic} of arlab's files brings in the reference implementations")


def scan(source: str, exercise: str | None = None,
         aliases: Mapping[str, str] | None = None) -> Scan:
    """Scan one cell. ``exercise``: the exercise the cell answers (its own name is refused
    from anywhere in arlab); ``aliases``: names earlier cells bound to allowed arlab modules.

    A cell that does not parse is not refused here: it fails when it runs.
    """
    source = _python_source(source)
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return Scan()
    scanner = _Scanner(source, exercise, aliases or {})
    scanner.visit(tree)
    return scanner.result


def forbidden_imports(source: str, exercise: str | None = None) -> list[str]:
    """Reasons (one line each, with the line number) why this answer cell may not be graded
    because it uses arlab's models, grading helpers or reference names; empty when it is fine.

    ``exercise``: the name the cell answers, refused even from allowed modules (so the
    ``bits_per_dim`` answer cannot be ``from arlab.units import bits_per_dim``).
    """
    return scan(source, exercise).reasons


def refusals(cells: Iterable, exercise_names: Iterable[str],
             locked_ids: Iterable[str] | None = None) -> dict[str, list[str]]:
    """Exercise -> reasons it scores 0, for one notebook's cells (nbformat dicts) in order.

    Answer cells (grade id = exercise name) are scanned with their exercise's name. Cells the
    student wrote outside the answer cells count too: a name they bind to a refused import
    charges the exercise of that name and every later answer that reads it. The instructor's
    read-only cells are not scanned: ``locked_ids`` (from the gradebook, which a submission
    cannot forge) or, without it, the cells' own metadata.
    """
    names = set(exercise_names)
    locked = set(locked_ids) if locked_ids is not None else None
    found: dict[str, list[str]] = {}
    aliases: dict[str, str] = {}
    tainted: dict[str, str] = {}  # name bound by a refused import -> where
    for index, cell in enumerate(cells):
        gid = contract.grade_id(cell)
        if cell.get("cell_type") != "code" or (
                gid in locked if locked is not None else contract.is_locked(cell)):
            continue
        exercise = gid if gid in names else None
        where = f"the answer cell {gid}" if gid else f"the added cell #{index + 1}"
        result = scan(cell.get("source", ""), exercise, aliases)
        if exercise and result.reasons:
            found.setdefault(exercise, []).extend(result.reasons)
        for name in sorted(result.bound):
            tainted[name] = where
            if name in names and name != exercise:
                found.setdefault(name, []).append(
                    f"{where} binds the name {name} with a refused import from arlab")
        if exercise:
            for name in sorted((result.names_used & tainted.keys()) - result.bound):
                found.setdefault(exercise, []).append(
                    f"uses {name}, which {tainted[name]} imported from arlab's references")
        aliases.update(result.aliases)
    return found
