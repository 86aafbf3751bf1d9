"""Every single-point mutant of one answer cell, made on its syntax tree.

The operators are the plausible slips of a student: a comparison flipped or moved off by its
boundary, a small integer literal ±1, a unary minus dropped or added on a number or a name,
``+``/``-`` or ``*``/``/`` swapped, ``and``/``or`` swapped, and a default argument changed.
Strings, f-strings and annotations are never touched (messages and type hints do not decide
a grade). Mutants whose whole cell unparses to the same code are one mutant.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass

SMALL = 10  # integer literals up to this size are "small" (sizes, axes, offsets)

_COMPARE: dict[type, tuple[type, ...]] = {  # the negation and the boundary neighbour
    ast.Lt: (ast.LtE, ast.GtE), ast.LtE: (ast.Lt, ast.Gt),
    ast.Gt: (ast.GtE, ast.LtE), ast.GtE: (ast.Gt, ast.Lt),
    ast.Eq: (ast.NotEq,), ast.NotEq: (ast.Eq,),
    ast.Is: (ast.IsNot,), ast.IsNot: (ast.Is,), ast.In: (ast.NotIn,), ast.NotIn: (ast.In,)}
_ARITH: dict[type, type] = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div,
                            ast.Div: ast.Mult}
_BOOL: dict[type, type] = {ast.And: ast.Or, ast.Or: ast.And}
_NO_MINUS = frozenset({"self", "cls"})
_IDENTITY = (ast.Is, ast.IsNot, ast.In, ast.NotIn)


@dataclass(frozen=True)
class Mutant:
    """One mutated answer cell: where it differs (1-based line of the cell) and how."""

    line: int
    before: str      # the original line, stripped
    after: str       # the same line mutated, stripped
    kind: str        # compare, int, minus, arith, bool, default
    source: str      # the whole cell, mutated (unparsed)


def _is_number(node: ast.AST) -> bool:
    return (isinstance(node, ast.Constant) and isinstance(node.value, (int, float))
            and not isinstance(node.value, bool))


def _copy_with(node: ast.AST, **fields) -> ast.AST:
    new = type(node)(**{**{f: getattr(node, f) for f in node._fields}, **fields})
    return ast.copy_location(new, node)


def _skipped(tree: ast.AST) -> set[int]:
    """Ids of nodes inside f-strings and annotations."""
    roots: list[ast.AST] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            roots.append(node)
        elif isinstance(node, ast.arg) and node.annotation is not None:
            roots.append(node.annotation)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.returns:
            roots.append(node.returns)
        elif isinstance(node, ast.AnnAssign):
            roots.append(node.annotation)
    return {id(n) for root in roots for n in ast.walk(root)}


def _default_change(node: ast.AST) -> list[ast.AST]:
    """A default argument's changed values: ints ±1, bools negated, None -> 0, floats +1."""
    try:
        value = ast.literal_eval(node)
    except ValueError:
        return []
    if isinstance(value, bool):
        new = [not value]
    elif isinstance(value, int):
        new = [value - 1, value + 1]
    elif isinstance(value, float):
        new = [value + 1.0]
    elif value is None:
        new = [0]
    else:
        return []
    out = []
    for v in new:
        expr = ast.parse(repr(v), mode="eval").body
        out.append(ast.copy_location(expr, node))
    return out


def _minus_allowed(node: ast.Name, parent: ast.AST) -> bool:
    """A name gets an added minus where its value is used as a number: an operand, an
    argument or an index (not what is called, not what is indexed or looked into)."""
    if not isinstance(node.ctx, ast.Load) or node.id in _NO_MINUS:
        return False
    if isinstance(parent, ast.Compare):  # an ordering or equality, not `is` / `in`
        return not any(isinstance(op, _IDENTITY) for op in parent.ops)
    if isinstance(parent, (ast.BinOp, ast.keyword, ast.Slice)):
        return True
    if isinstance(parent, ast.Call):
        return node is not parent.func
    if isinstance(parent, ast.Subscript):
        return node is parent.slice
    if isinstance(parent, ast.Tuple):  # an index tuple x[i, j]
        return getattr(parent, "_in_slice", False)
    return False


def _alternatives(node: ast.AST, parent: ast.AST | None,
                  defaults: set[int]) -> list[tuple[str, ast.AST]]:
    """(kind, replacement node) for every mutation at ``node``."""
    out: list[tuple[str, ast.AST]] = []
    if isinstance(node, ast.Compare):
        for k, op in enumerate(node.ops):
            for new in _COMPARE.get(type(op), ()):
                ops = [*node.ops[:k], new(), *node.ops[k + 1:]]
                out.append(("compare", _copy_with(node, ops=ops)))
    elif isinstance(node, ast.BinOp) and type(node.op) in _ARITH:
        out.append(("arith", _copy_with(node, op=_ARITH[type(node.op)]())))
    elif isinstance(node, ast.AugAssign) and type(node.op) in _ARITH:
        out.append(("arith", _copy_with(node, op=_ARITH[type(node.op)]())))
    elif isinstance(node, ast.BoolOp):
        out.append(("bool", _copy_with(node, op=_BOOL[type(node.op)]())))
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and (
            _is_number(node.operand) or isinstance(node.operand, ast.Name)):
        out.append(("minus", node.operand))
    negated = isinstance(parent, ast.UnaryOp) and isinstance(parent.op, ast.USub)
    if _is_number(node):
        if isinstance(node.value, int) and abs(node.value) <= SMALL:
            for v in (node.value - 1, node.value + 1):
                out.append(("int", ast.copy_location(ast.Constant(v), node)))
        if node.value != 0 and not negated:
            out.append(("minus", ast.copy_location(ast.UnaryOp(ast.USub(), node), node)))
    elif isinstance(node, ast.Name) and not negated and _minus_allowed(node, parent):
        out.append(("minus", ast.copy_location(ast.UnaryOp(ast.USub(), node), node)))
    if id(node) in defaults:
        out += [("default", new) for new in _default_change(node)]
    return out


def _slot(parent: ast.AST, child: ast.AST) -> tuple[str, int | None]:
    """Where ``child`` sits in ``parent``: (field, index in a list field or None)."""
    for field, value in ast.iter_fields(parent):
        if value is child:
            return field, None
        if isinstance(value, list):
            for i, item in enumerate(value):
                if item is child:
                    return field, i
    raise LookupError("child not found in its parent")


def _put(parent: ast.AST, slot: tuple[str, int | None], node: ast.AST) -> None:
    field, index = slot
    if index is None:
        setattr(parent, field, node)
    else:
        getattr(parent, field)[index] = node


def _line_after(lines: list[str], node: ast.AST, new: ast.AST) -> str:
    """The node's line with the node's text replaced by the mutated node's."""
    if node.lineno != node.end_lineno or isinstance(node, ast.stmt):
        return ast.unparse(new).splitlines()[0].strip()
    raw = lines[node.lineno - 1].encode()
    text = raw[:node.col_offset] + ast.unparse(new).encode() + raw[node.end_col_offset:]
    return text.decode().strip()


def mutants(source: str) -> list[Mutant]:
    """Every distinct single-point mutant of ``source`` (one cell), in the order of the tree."""
    tree = ast.parse(source)
    lines = source.splitlines()
    skipped = _skipped(tree)
    defaults = {id(d) for n in ast.walk(tree) if isinstance(n, ast.arguments)
                for d in [*n.defaults, *n.kw_defaults] if d is not None}
    parents: dict[int, ast.AST] = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[id(child)] = node
            if isinstance(node, ast.Subscript) and child is node.slice:
                child._in_slice = True  # lets an index tuple's names take a minus
    original = ast.unparse(tree)
    seen, found = {original}, []
    for node in list(ast.walk(tree)):
        if id(node) in skipped or id(node) not in parents:
            continue
        parent = parents[id(node)]
        for kind, new in _alternatives(node, parent, defaults):
            slot = _slot(parent, node)
            _put(parent, slot, new)
            try:
                code = ast.unparse(tree)
            finally:
                _put(parent, slot, node)
            if code in seen:
                continue
            seen.add(code)
            line = node.lineno
            found.append(Mutant(line, lines[line - 1].strip(), _line_after(lines, node, new),
                                kind, code))
    return sorted(found, key=lambda m: m.line)  # stable: tree order within a line


def by_hand(source: str, edits: list[tuple[str, str]]) -> tuple[list[Mutant], list[str]]:
    """Mutants from whole-line edits ``(original line, replacement)``, both stripped; and the
    originals not found in ``source`` (a stale edit)."""
    lines = source.splitlines()
    found, stale = [], []
    for before, after in edits:
        where = [k for k, line in enumerate(lines) if line.strip() == before]
        if not where:
            stale.append(before)
            continue
        k = where[0]
        indent = lines[k][:len(lines[k]) - len(lines[k].lstrip())]
        code = "\n".join([*lines[:k], indent + after, *lines[k + 1:]])
        found.append(Mutant(k + 1, before, after, "hand", code))
    return found, stale
