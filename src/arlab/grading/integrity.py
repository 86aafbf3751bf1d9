"""``arlab-grade check``: compare each submission with the released notebook, repair
nbgrader metadata that was stripped (a Colab round trip drops it) when the match is
unambiguous, and report the rest (missing cells, deleted or edited read-only cells).

A stripped cell is matched to a release cell by, in this order: identical source (read-only
cells and tests); the name an answer cell defines (its ``grade_id``) or the text it starts
with (what the release shows above ``# YOUR CODE HERE``); position, where the cells between
two matched neighbours line up one to one with the release. The repair code imports no
nbgrader, so the students' self-check can use it.
"""
from __future__ import annotations

import ast
import copy
import shutil
from dataclasses import dataclass, field

from arlab.grading import contract
from arlab.grading.course import (Course, CourseError, format_table, read_notebook,
                                  write_notebook)
from arlab.grading.imports import _python_source

_STUB = "# YOUR CODE HERE"
_META_KEYS = ("nbgrader", "editable", "deletable")


@dataclass
class Report:
    """What ``check`` found in one notebook."""

    notebook: str
    repaired: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        return "issues" if self.problems else ("repaired" if self.repaired else "ok")


def _defined_names(source: str) -> set[str]:
    try:
        tree = ast.parse(_python_source(source))
    except SyntaxError:
        return set()
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


def _answer_prefix(cell) -> str:
    """The given text above the stub in a released answer cell (a signature, a docstring)."""
    source = cell.get("source", "")
    return source.split(_STUB)[0].strip() if _STUB in source else ""


def _matches_answer(release_cell, cell) -> bool:
    if cell.get("cell_type") != release_cell.get("cell_type") or cell.get("cell_type") != "code":
        return False
    prefix = _answer_prefix(release_cell)
    return (contract.grade_id(release_cell) in _defined_names(cell.get("source", ""))
            or bool(prefix) and cell.get("source", "").strip().startswith(prefix))


def _same_source(release_cell, cell) -> bool:
    return (cell.get("cell_type") == release_cell.get("cell_type")
            and cell.get("source", "").strip() == release_cell.get("source", "").strip())


def _unique_pairs(targets: list[int], candidates: list[int], fits) -> dict[int, int]:
    """target -> candidate where each is the other's only fit."""
    pairs = {}
    for t in targets:
        fitting = [c for c in candidates if fits(t, c)]
        if len(fitting) == 1 and sum(fits(o, fitting[0]) for o in targets) == 1:
            pairs[t] = fitting[0]
    return pairs


def repair_metadata(nb, release) -> tuple[list[str], list[str]]:
    """Give stripped cells of ``nb`` their nbgrader metadata back from the ``release``
    notebook, in place. Returns (what was repaired, release cells still unmatched)."""
    rel = release.cells
    ids = {contract.grade_id(c): i for i, c in enumerate(rel) if contract.grade_id(c)}
    match: dict[int, int] = {}  # release index -> nb index
    for j, cell in enumerate(nb.cells):
        gid = contract.grade_id(cell)
        if gid in ids and ids[gid] not in match:
            match[ids[gid]] = j
    how: dict[int, str] = {}

    def open_targets():
        return [i for i in ids.values() if i not in match]

    def open_candidates():
        taken = set(match.values())
        return [j for j, c in enumerate(nb.cells)
                if j not in taken and not contract.grade_id(c)]

    passes = [
        ("identical source", lambda t, c: contract.is_locked(rel[t]) and
         _same_source(rel[t], nb.cells[c])),
        ("the name it defines", lambda t, c: contract.is_answer(rel[t]) and
         _matches_answer(rel[t], nb.cells[c])),
    ]
    for label, fits in passes:
        for t, c in _unique_pairs(open_targets(), open_candidates(), fits).items():
            match[t], how[t] = c, label
    # position: between two matched neighbours, the cells line up one to one
    anchors = sorted(match.items())
    bounds = [(-1, -1)] + [a for a in anchors] + [(len(rel), len(nb.cells))]
    for (r0, n0), (r1, n1) in zip(bounds, bounds[1:]):
        gap_rel, gap_nb = list(range(r0 + 1, r1)), list(range(n0 + 1, n1))
        if not gap_rel or len(gap_rel) != len(gap_nb) or n1 <= n0:
            continue
        if all(rel[t].cell_type == nb.cells[c].cell_type for t, c in zip(gap_rel, gap_nb)):
            for t, c in zip(gap_rel, gap_nb):
                if t in ids.values() and t not in match and not contract.grade_id(nb.cells[c]):
                    match[t], how[t] = c, "position"
    repaired = []
    for t, label in sorted(how.items()):
        cell = nb.cells[match[t]]
        for key in _META_KEYS:
            if key in rel[t].metadata:
                cell.metadata[key] = copy.deepcopy(rel[t].metadata[key])
        repaired.append(f"{contract.grade_id(rel[t])}: metadata restored (matched by {label})")
    return repaired, [contract.grade_id(rel[t]) for t in open_targets()]


def check_notebook(nb, release, name: str) -> Report:
    """Repair what can be repaired (in place) and report everything else."""
    from nbgrader.utils import compute_checksum

    report = Report(name)
    seen: dict[str, int] = {}
    known = {contract.grade_id(c) for c in release.cells if contract.grade_id(c)}
    for cell in nb.cells:
        gid = contract.grade_id(cell)
        if gid:
            seen[gid] = seen.get(gid, 0) + 1
            if gid not in known:
                report.problems.append(f"{gid}: unknown grade id (the grader ignores the cell)")
    report.problems += [f"{gid}: appears {n} times (the grader keeps the first)"
                        for gid, n in seen.items() if n > 1]
    report.repaired, missing = repair_metadata(nb, release)
    for gid in missing:
        cell = next(c for c in release.cells if contract.grade_id(c) == gid)
        if contract.is_answer(cell):
            report.problems.append(f"{gid}: answer cell missing or not recognisable: the "
                                   "exercise scores 0 unless you restore its metadata by hand")
        else:
            report.problems.append(f"{gid}: deleted (restored from the gradebook when grading)")
    by_id = {contract.grade_id(c): c for c in nb.cells if contract.grade_id(c)}
    for original in release.cells:
        gid = contract.grade_id(original)
        cell = by_id.get(gid)
        if cell is None or gid in missing:
            continue
        meta, want = contract.nbgrader_meta(cell), contract.nbgrader_meta(original)
        if cell.cell_type != original.cell_type:
            report.problems.append(f"{gid}: cell type changed to {cell.cell_type} (restored "
                                   "when grading)")
        if contract.is_locked(original) and compute_checksum(cell) != want.get("checksum"):
            report.problems.append(f"{gid}: read-only cell edited (the original is restored "
                                   "when grading)")
        if "points" in want and float(meta.get("points", -1)) != float(want["points"]):
            report.problems.append(f"{gid}: points changed to {meta.get('points')} (the "
                                   f"release's {want['points']} count)")
    return report


def check(course: Course, assignment: str, students: list[str] | None = None,
          write: bool = True) -> dict[str, list[Report]]:
    """Check (and, with ``write``, repair in place, keeping a backup under
    ``backup/check/``) every submission of ``assignment``."""
    course.require_released(assignment)
    notebooks = course.notebooks(assignment)
    releases = {n: read_notebook(course.release(assignment) / f"{n}.ipynb") for n in notebooks}
    results: dict[str, list[Report]] = {}
    chosen = students or course.students(assignment)
    if not chosen:
        raise CourseError(f"no submissions of {assignment} in {course.root / 'submitted'}; run "
                           f"`arlab-grade collect {assignment} DOWNLOAD --course {course.root}`.")
    for student in chosen:
        results[student] = []
        for name in notebooks:
            path = course.submitted(student, assignment) / f"{name}.ipynb"
            if not path.exists():
                report = Report(name, problems=[f"no {name}.ipynb submitted"])
            else:
                try:
                    nb = read_notebook(path)
                except Exception as err:  # noqa: BLE001 - reported, never fatal
                    report = Report(name, problems=[f"not a readable notebook ({err})"])
                else:
                    report = check_notebook(nb, releases[name], name)
                    if report.repaired and write:
                        backup = course.root / "backup" / "check" / student / assignment
                        backup.mkdir(parents=True, exist_ok=True)
                        if not (backup / path.name).exists():
                            shutil.copyfile(path, backup / path.name)
                        write_notebook(nb, path)
            results[student].append(report)
    return results


def table(results: dict[str, list[Report]]) -> str:
    rows = []
    for student, reports in results.items():
        for r in reports:
            details = r.problems + r.repaired or ["-"]
            rows.append([student, r.notebook, r.status, details[0]])
            rows += [["", "", "", more] for more in details[1:]]
    return format_table(["student", "notebook", "status", "details"], rows)
