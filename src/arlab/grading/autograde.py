"""``arlab-grade autograde``: every submission graded by nbgrader in its own process and its
own throwaway course, then merged by this (trusted) process into the real course.

Per submission: a temporary course holding only that submission, the config and a gradebook
with this assignment alone; a wall-clock limit on the whole process tree; the kernel under a
memory limit; nbgrader's per-cell timeout. Whatever happens there, the parent reads the
graded notebook (or, when the run was killed, rebuilds it from the progress record: the
cells that finished keep their outputs, the rest are marked not run), applies the output
limits, the stderr rule and the reference-import rule itself, scores every grade cell with the
points of the REAL gradebook, and writes scores, comments and the notebook into the course.
The throwaway gradebook's scores are never read: the student's code could have written them.

Trusted points: where the assignment's table (``arlab.grading.homework``) lists parts, each
part's ``probe`` runs on the student's definitions: in a last cell the graded kernel runs after
the notebook, or, where that kernel did not get there, in a second sandboxed run of the
submission's code without the test cells. The arrays come back as ``.npz`` and this process
runs each ``judge``. Those
cells score full points or 0 whatever the in-kernel run showed (its result can be faked by
the student's code); a disagreement flags the submission for review. Cells without a part
keep the in-kernel score and are listed as untrusted. The trusted result is written to
``autograded/<student>/<a>/grading.json`` (read by ``export``).
"""
from __future__ import annotations

import copy
import json
import os
import shutil
import sqlite3
import tempfile
import warnings
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import nbformat

from arlab.grading import confine, contract, sandbox, trusted
from arlab.grading.course import (CONFIG_NAME, Course, CourseError, copy_tree_files,
                                  load_config, read_notebook, write_notebook)
from arlab.grading.preprocessors import (NOT_RUN, apply_refusals, error_output,
                                         limit_cell_outputs, mark_not_run, stderr_as_stdout)
from arlab.grading.progress import read_progress

NOTES_KEY = "arlab_grading_notes"
REASON_CHARS = 2000  # a reason is the student's only explanation: keep it whole
_GRADER_ERRORS = ("CellTimeoutError", "DeadKernelError", "GradingStopped")


@dataclass
class Definitions:
    """What the real gradebook and source say the assignment is: the points that count, and
    which cells are the instructor's (never the submission's own metadata)."""

    notebooks: list[str]
    grade_cells: dict[str, dict[str, float]]  # notebook -> grade id -> max score
    solution_cells: dict[str, list[str]]
    locked: dict[str, set[str]]               # notebook -> read-only cells (given code, tests)
    by_notebook: dict[str, dict[str, list[str]]]  # notebook -> exercise -> test cells
    max_total: float

    @property
    def exercises(self) -> dict[str, list[str]]:
        return {name: tests for nb in self.notebooks
                for name, tests in self.by_notebook.get(nb, {}).items()}

    def autograded(self, notebook: str) -> set[str]:
        """Test cells: scored by running, as opposed to answers graded by hand."""
        return set(self.grade_cells[notebook]) - set(self.solution_cells[notebook])


@dataclass
class Result:
    """One student's outcome, as the summary table shows it."""

    student: str
    total: float
    max_total: float
    exercises: dict[str, float]
    reasons: list[str] = field(default_factory=list)
    seconds: float = 0.0
    review: list[str] = field(default_factory=list)     # in-kernel and trusted disagree
    untrusted: list[str] = field(default_factory=list)  # test cells scored in-kernel only


def definitions(course: Course, assignment: str) -> Definitions:
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(course.db_url) as gb:
        try:
            found = gb.find_assignment(assignment)
        except MissingEntry:
            raise CourseError(f"{assignment} is not in {course.gradebook}; run `arlab-grade "
                               f"release {assignment} --course {course.root}` first.") from None
        grade_cells = {nb.name: {c.name: float(c.max_score) for c in nb.grade_cells}
                       for nb in found.notebooks}
        solutions = {nb.name: [c.name for c in nb.solution_cells] for nb in found.notebooks}
        locked = {nb.name: {c.name for c in nb.source_cells if c.locked} | set(grade_cells[nb.name])
                  for nb in found.notebooks}
        max_total = float(found.max_score)
    by_notebook = {}
    for name in sorted(grade_cells):
        path = course.source(assignment) / f"{name}.ipynb"
        by_notebook[name] = contract.exercises(read_notebook(path).cells) if path.exists() else {}
    return Definitions(sorted(grade_cells), grade_cells, solutions, locked, by_notebook,
                       max_total)


def _template(course: Course, assignment: str, dest: Path) -> Path:
    """Config, non-notebook source files and a gradebook holding only this assignment (a copy
    of the real one with every other assignment and every student removed, then vacuumed so
    the removed rows are gone from the file too)."""
    from nbgrader.api import Gradebook

    dest.mkdir(parents=True)
    shutil.copyfile(course.config, dest / CONFIG_NAME)
    copy_tree_files(course.source(assignment), dest / "source" / assignment,
                    skip_suffix=".ipynb")
    (dest / "source" / assignment).mkdir(parents=True, exist_ok=True)
    database = dest / "gradebook.db"
    shutil.copyfile(course.gradebook, database)
    with Gradebook(f"sqlite:///{database}") as gb:
        for other in [a.name for a in gb.assignments if a.name != assignment]:
            gb.remove_assignment(other)
        for student in [s.id for s in gb.students]:
            gb.remove_student(student)
    with closing(sqlite3.connect(database)) as connection:
        connection.execute("VACUUM")
    return dest


@dataclass
class _Outcome:
    student: str
    notebooks: dict[str, object]  # notebook name -> graded notebook (None: nothing to grade)
    reasons: list[str]
    seconds: float
    probes: dict[str, Path] = field(default_factory=dict)  # notebook -> probe results folder
    probe_why: str = ""


def _job_env(memory_mb: int, workers: int, progress: Path,
             cell_timeout: int | None) -> dict[str, str]:
    env = dict(os.environ)
    if cell_timeout:
        env["ARLAB_CELL_TIMEOUT"] = str(cell_timeout)
    env["ARLAB_MEMORY_MB"] = str(memory_mb)
    env["ARLAB_GRADING_PROGRESS"] = str(progress)
    env.setdefault("ARLAB_BUDGET", "smoke")
    # N kernels share the cores: one BLAS/OpenMP pool each would oversubscribe them
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // max(1, workers))))
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def _log_tail(path: Path) -> str:
    try:
        lines = [l for l in path.read_text(errors="replace").splitlines() if l.strip()]
    except OSError:
        return "no log"
    errors = [l for l in lines if "Error" in l or "error" in l.lower()]
    return (errors or lines or ["no log"])[-1].strip()[:300]


def _rebuild(progress_dir: Path, name: str, reason: str):
    """The notebook as far as a killed run got: finished cells keep their outputs, the cell
    that was running gets the reason, the cells after it are marked not run. Returns
    (notebook or None when nothing ran, where the run was cut)."""
    progress = read_progress(progress_dir, name)
    nb = progress.notebook
    if nb is None:
        return None, ""
    where = ""
    if progress.running is not None:
        cell = nb.cells[progress.running]
        where = f" (cut in {contract.grade_id(cell) or f'cell #{progress.running + 1}'})"
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        record = progress.finished.get(index)
        if record is not None:
            cell.outputs = [nbformat.from_dict(o) for o in record["outputs"]]
            cell.execution_count = record.get("execution_count")
        elif index == progress.running:
            cell.outputs = [error_output("GradingStopped", reason + where)]
        else:
            cell.outputs = []
            mark_not_run(cell, f"not run: {reason}")
    return nb, where


@dataclass(frozen=True)
class _Ending:
    """How a submission's graded run ended, and where its records are."""

    ended: sandbox.Ended
    why: str          # why grading did not finish ("" when it did)
    progress: Path    # the progress records of the killed run
    log: Path


def _graded_notebook(path: Path, name: str, ending: _Ending) -> tuple[object, str]:
    """The graded notebook and, when grading did not finish, why (with where it was cut)."""
    why = ending.why
    if ending.ended.ok and path.exists():
        try:
            return read_notebook(path), ""
        except Exception:  # noqa: BLE001 - a mangled file is graded as a failed run
            why = "the graded notebook could not be read"
    why = why or f"nbgrader could not grade it: {_log_tail(ending.log)}"
    nb, where = _rebuild(ending.progress, name, why)
    if nb is None:
        return None, (f"{name}: {why} (nothing ran; run `arlab-grade check` and look at the "
                      "notebook)")
    return nb, why + where


@dataclass(frozen=True)
class Limits:
    """Per-submission limits of both sandboxed runs."""

    wall_seconds: float
    memory_mb: int
    cell_timeout: int | None
    max_processes: int = 256
    max_file_mb: int = 256
    isolate: bool = True


def hidden_paths(course: Course, work: Path) -> tuple[str, ...]:
    """Folders a submission must not see: the real course, the repository's solutions,
    every temporary folder (the other submissions' boxes are there) and shared memory."""
    import arlab

    repo_solutions = Path(arlab.__file__).resolve().parents[2] / "solutions"
    found = [course.root, repo_solutions, Path(tempfile.gettempdir()), Path("/tmp"), work,
             Path("/dev/shm"), Path.home()]
    return tuple(str(p) for p in found if p.is_dir() and str(p) != "/")


def exposed_paths() -> tuple[str, ...]:
    """Folders the sandboxed interpreter needs even when they lie under a hidden one (a
    Python installed in the grader's home): its prefixes and every folder on its path."""
    import sys

    found = {sys.base_prefix, sys.prefix, *(p for p in sys.path if p and os.path.isabs(p))}
    return tuple(sorted(p for p in found if os.path.isdir(p)))


@dataclass(frozen=True)
class _Run:
    """What every submission of one autograde run shares."""

    course: Course
    assignment: str
    defs: Definitions
    limits: Limits
    parts: dict[str, dict[str, object]]   # notebook -> test cell -> part
    work: Path                            # the run's temporary folder
    template: Path                        # the throwaway course every submission starts from
    hide: tuple[str, ...]
    workers: int
    output_limits: tuple[int, int]        # max_chars, max_data_chars of one cell's outputs


def _sandboxed(run: _Run, student: str, kind: str, box: Path, **where) -> sandbox.Ended:
    """One sandboxed run of ``student``'s submission (``kind``: nbgrader's autograde, or the
    probe run) in ``box``, under the run's limits; ``where``: the job's ``course``, ``env``,
    ``log`` and ``probe_spec`` (see :class:`arlab.grading.sandbox.Job`)."""
    limits = run.limits
    job = sandbox.Job(assignment=run.assignment, student=student, kind=kind, box=str(box),
                      wall_seconds=limits.wall_seconds, hide=run.hide,
                      fsize_mb=limits.max_file_mb, nproc=limits.max_processes,
                      memory_mb=limits.memory_mb, expose=exposed_paths(),
                      isolate=limits.isolate, **where)
    return sandbox.run(job)


def _run_probes(run: _Run, student: str, env: dict[str, str],
                parts: dict[str, dict[str, object]]) -> tuple[dict[str, Path], str]:
    """The separate black-box run of each notebook in ``parts`` (those whose graded kernel
    did not leave probe results): returns notebook -> results folder, and why the run did not
    finish (empty when it did)."""
    course, assignment, limits = run.course, run.assignment, run.limits
    found, why = {}, ""
    for name, cells in parts.items():
        path = course.submitted(student, assignment) / f"{name}.ipynb"
        if not cells or not path.exists():
            continue
        box = run.work / f"{student}.probe-{name}"
        box.mkdir()
        try:
            code = trusted.probe_cells(read_notebook(path),
                                       read_notebook(course.source(assignment) / f"{name}.ipynb"),
                                       run.defs.autograded(name), run.defs.locked[name])
        except Exception as err:  # noqa: BLE001 - an unreadable notebook: every part fails
            why = f"the notebook could not be read ({type(err).__name__})"
            continue
        spec = trusted.write_spec(box, code, sorted(cells), limits.cell_timeout)
        ended = _sandboxed(run, student, "probe", box, course=str(box), env=env,
                           log=str(run.work / f"{student}.probe-{name}.log"),
                           probe_spec=str(spec))
        if ended.timed_out:
            why = f"the probe run was stopped after {limits.wall_seconds:g} s"
        elif not ended.ok:
            why = f"the probe run failed (exit code {ended.exitcode})"
        found[name] = box / "out"
    return found, why


def _grade_one(run: _Run, student: str) -> _Outcome:
    """Runs in a worker thread: prepare the throwaway course, run the job, read what it left,
    then run the probes. Whatever the submission did, this returns an outcome."""
    limits = run.limits
    box = run.work / student
    root = box / "course"
    submitted = run.course.submitted(student, run.assignment)
    shutil.copytree(run.template, root)
    copy_tree_files(submitted, root / "submitted" / student / run.assignment)
    progress, log = box / "progress", run.work / f"{student}.log"
    progress.mkdir()
    env = _job_env(limits.memory_mb, run.workers, progress, limits.cell_timeout)
    in_kernel = _in_kernel_probes(box, run.parts, limits)
    graded_env = {**env, "ARLAB_PROBE_SPEC": str(box / "probes.json")} if in_kernel else env
    ended = _sandboxed(run, student, "autograde", box, course=str(root), env=graded_env,
                       log=str(log))
    if ended.timed_out:
        why = (f"stopped after {limits.wall_seconds:g} s, the limit for one submission; cells "
               "that finished before kept their points")
    elif ended.exitcode != 0:
        why = f"the grading process failed (exit code {ended.exitcode}): {_log_tail(log)}"
    else:
        why = ""
    ending = _Ending(ended, why, progress, log)
    reasons: list[str] = []
    graded: dict[str, object] = {}
    for name in run.defs.notebooks:
        graded[name] = None
        if not (submitted / f"{name}.ipynb").exists():
            reasons.append(f"no submitted notebook {name}.ipynb")
            continue
        path = root / "autograded" / student / run.assignment / f"{name}.ipynb"
        try:
            graded[name], problem = _graded_notebook(path, name, ending)
        except Exception as err:  # noqa: BLE001 - e.g. a progress record the kernel mangled
            problem = f"{name}: what grading left could not be read ({err}); 0 points"
        if problem:
            reasons.append(problem)
    probes = {name: out for name, out in in_kernel.items() if trusted.has_results(out)}
    rest = {name: cells for name, cells in run.parts.items() if name not in probes}
    more, probe_why = _run_probes(run, student, env, rest)
    return _Outcome(student, graded, reasons, ended.seconds, {**probes, **more}, probe_why)


def _in_kernel_probes(box: Path, parts: dict[str, dict[str, object]],
                      limits: Limits) -> dict[str, Path]:
    """Ask the graded kernel to run the probes after each notebook (see
    :class:`~arlab.grading.preprocessors.GuardedExecute`): writes ``box/probes.json`` and
    returns notebook -> the folder its results will be in."""
    outs = {name: box / f"probes-{name}" for name, cells in parts.items() if cells}
    if outs:
        (box / "probes.json").write_text(json.dumps({
            name: {"parts": sorted(parts[name]), "out": str(out),
                   "cell_timeout": limits.cell_timeout} for name, out in outs.items()}))
    return outs


def _score_test(cell, max_score: float) -> float:
    """nbgrader's rule for an autograded test cell, read by the parent: an error output
    scores 0, a numeric result is partial credit (clamped), anything else full marks."""
    from nbgrader.utils import get_partial_grade

    outputs = cell.get("outputs", [])
    if any(o.get("output_type") == "error" for o in outputs):
        return 0.0
    for out in outputs:
        if out.get("output_type") == "execute_result":
            try:
                return min(max(float(get_partial_grade(out, max_score)), 0.0), max_score)
            except Exception:  # noqa: BLE001 - no usable number: nbgrader gives full marks
                return max_score
    return max_score


def _score(cell, max_score: float, autograded: bool) -> float | None:
    """A grade cell's score; ``autograded`` comes from the gradebook, not from the cell."""
    if cell is None:
        return 0.0
    if autograded:
        return _score_test(cell, max_score)
    from nbgrader.utils import determine_grade  # a written answer: nbgrader decides

    probe = copy.deepcopy(cell)
    meta = dict(probe.metadata.get("nbgrader", {}))
    probe.metadata["nbgrader"] = {**meta, "grade": True, "solution": True, "points": max_score}
    try:
        return determine_grade(probe)[0]
    except Exception:  # noqa: BLE001 - mangled metadata: leave it to a human
        return None


def whole(text: str, limit: int = REASON_CHARS) -> str:
    """A message as one line, whole: only a message longer than ``limit`` (never one of the
    grader's own) is cut, at a word, and says so."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0] + f" [... {len(text) - limit:,} more characters]"


def _first_error(cell):
    return next((o for o in cell.get("outputs", []) if o.get("output_type") == "error"), None)


def _cell_reasons(nb) -> list[str]:
    """One line per code cell that ended in an error: where, which error, its first line.
    Refusals and cells not run are summarised elsewhere."""
    reasons = []
    for index, cell in enumerate(nb.cells):
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        # a timeout also leaves the KeyboardInterrupt of the interrupt: name the timeout
        error = next((e for e in errors if e.get("ename") in _GRADER_ERRORS), None) or \
            (errors[0] if errors else None)
        if error is None or error.get("ename") in ("RefusedImport", NOT_RUN, "GradingStopped"):
            continue
        label = contract.grade_id(cell) or f"cell #{index + 1}"
        text = whole(error.get("evalue") or "")
        message = f": {text}" if text else ""
        reasons.append(f"{label}: {error.get('ename')}{message}")
    return reasons


def _notes_cell(reasons: list[str]):
    text = "\n".join(f"- {r}" for r in reasons) if reasons else "- nothing to report"
    cell = nbformat.v4.new_markdown_cell(f"## Grading notes\n\n{text}")
    cell.metadata[NOTES_KEY] = True
    return cell


def _finalise(nb, name: str, run: _Run) -> tuple[object, list[str], dict[str, str]]:
    """A copy of the graded notebook with the output limits, the stderr rule and the
    refusals applied; returns (the copy, reasons, exercise -> comment)."""
    nb = copy.deepcopy(nb)
    nb.cells = [c for c in nb.cells if not c.metadata.get(NOTES_KEY)]
    tests = run.defs.autograded(name)
    for cell in nb.cells:
        limit_cell_outputs(cell, *run.output_limits)
        if contract.grade_id(cell) in tests:
            cell.metadata.setdefault("nbgrader", {})["grade"] = True  # what the gradebook says
            stderr_as_stdout(cell)
    refused = apply_refusals(nb, run.defs.by_notebook[name], run.defs.locked[name])
    reasons = [f"{exercise}: 0 points, the answer uses arlab's reference ({why[0]})"
               for exercise, why in refused.items()]
    comments = {exercise: "Refused (0 points): " + "; ".join(why)
                for exercise, why in refused.items()}
    return nb, reasons, comments


def _trusted_output(verdict: trusted.Verdict):
    if verdict.passed:
        return nbformat.v4.new_output("stream", name="stdout", text=verdict.message + "\n")
    return error_output("GradingError", verdict.message)


@dataclass(frozen=True)
class _Trusted:
    """The trusted check of one submission: the scores with the judged cells replaced, the
    output each judged cell shows, the review lines and the test cells without a part."""

    scores: dict[str, float | None]
    outputs: dict[tuple[str, str], list]   # (notebook, grade id) -> the cell's new outputs
    review: list[str]
    untrusted: list[str]


def _apply_trusted(outcome: _Outcome, run: _Run, scores: dict[str, float | None],
                   cells: dict[str, dict[str, object]], refused: set[str]) -> _Trusted:
    """Replace the in-kernel scores of cells with parts by the judged ones (in a new dict)."""
    defs, scores = run.defs, dict(scores)
    outputs: dict[tuple[str, str], list] = {}
    review, untrusted = [], []
    for name in defs.notebooks:
        mine = run.parts.get(name, {})
        verdicts = trusted.judge(outcome.probes[name], mine, outcome.probe_why) \
            if name in outcome.probes else \
            {c: trusted.Verdict(False, "not evaluated: no submitted notebook") for c in mine}
        for grade_id in sorted(defs.autograded(name)):
            if grade_id not in mine:
                untrusted.append(grade_id)
                continue
            verdict = verdicts[grade_id]
            exercise = contract.exercise_of(grade_id, defs.by_notebook[name])
            full = defs.grade_cells[name][grade_id]
            trusted_points = full if verdict.passed and exercise not in refused else 0.0
            kernel = scores.get(grade_id)
            # no submission gains from a disagreement: the visible checks ran in the kernel,
            # the hidden ones outside it, and a cell earns its points only if both passed
            points = trusted_points if kernel is None else min(kernel, trusted_points)
            if kernel is not None and kernel != trusted_points:
                review.append(f"{grade_id}: the notebook run gave {kernel:g}, the trusted "
                              f"check {trusted_points:g}; scored {points:g}"
                              + ("" if verdict.passed else f" ({whole(verdict.message)})"))
            scores[grade_id] = points
            kernel_failed = kernel is not None and kernel < trusted_points
            if grade_id in cells[name] and exercise not in refused and not kernel_failed:
                outputs[(name, grade_id)] = [_trusted_output(verdict)]  # else the kernel's error
    return _Trusted(scores, outputs, review, untrusted)


@dataclass
class _Evaluation:
    """A submission scored: its finalised notebooks (copies), scores, cells, reasons, comments
    and the trusted check's review lines and untrusted cells."""

    notebooks: dict[str, object]
    scores: dict[str, float | None]
    cells: dict[str, dict[str, object]]
    reasons: list[str]
    comments: dict[str, str]
    review: list[str] = field(default_factory=list)
    untrusted: list[str] = field(default_factory=list)


def _score_notebook(nb, name: str, run: _Run) -> _Evaluation:
    """One graded notebook (None: not submitted) finalised and scored with the real points:
    its copy, scores, cells, reasons and comments (may raise on a mangled notebook)."""
    defs = run.defs
    reasons: list[str] = []
    comments: dict[str, str] = {}
    cells: dict[str, object] = {}
    if nb is not None:
        nb, reasons, comments = _finalise(nb, name, run)
        cells = {contract.grade_id(c): c for c in nb.cells if contract.grade_id(c)}
    scores: dict[str, float | None] = {}
    for grade_id, max_score in defs.grade_cells[name].items():
        cell = cells.get(grade_id)
        scores[grade_id] = _score(cell, max_score, grade_id in defs.autograded(name)) \
            if nb is not None else 0.0
        if nb is not None and cell is None:
            reasons.append(f"{grade_id}: the cell is missing (0 points)")
        elif cell is not None and _first_error(cell) is None and \
                scores[grade_id] is not None and scores[grade_id] < max_score:
            reasons.append(f"{grade_id}: partial credit {scores[grade_id]:g}/{max_score:g}")
    return _Evaluation({name: nb}, scores, {name: cells}, reasons, comments)


def _evaluate(outcome: _Outcome, run: _Run) -> _Evaluation:
    """Scores and cells of every notebook of a submission, with the trusted check. A
    notebook it cannot read scores 0 for the whole submission, with the reason (the reasons
    and comments found before it are kept)."""
    defs = run.defs
    reasons, comments = list(outcome.reasons), {}
    notebooks: dict[str, object] = {}
    scores: dict[str, float | None] = {}
    cells: dict[str, dict[str, object]] = {}
    try:
        for name in defs.notebooks:
            found = _score_notebook(outcome.notebooks.get(name), name, run)
            notebooks.update(found.notebooks)
            scores.update(found.scores)
            cells.update(found.cells)
            reasons += found.reasons
            comments.update(found.comments)
        refused = {ex for ex, text in comments.items() if text.startswith("Refused")}
        checked = _apply_trusted(outcome, run, scores, cells, refused)
        for (name, grade_id), outputs in checked.outputs.items():
            cells[name][grade_id].outputs = outputs   # cells of the finalised copies
        for nb in notebooks.values():
            if nb is not None:
                reasons += _cell_reasons(nb)
        return _Evaluation(notebooks, checked.scores, cells, reasons, comments, checked.review,
                           checked.untrusted)
    except Exception as err:  # noqa: BLE001 - a hostile notebook must not stop the others
        reasons.append(f"the graded notebook could not be read ({type(err).__name__}: "
                       f"{whole(str(err))}); 0 points")
        return _Evaluation({}, {g: 0.0 for name in defs.notebooks for g in defs.grade_cells[name]},
                           {name: {} for name in defs.notebooks}, reasons, comments, [],
                           sorted(g for n in defs.notebooks for g in defs.autograded(n)))


def _merge(run: _Run, outcome: _Outcome) -> Result:
    """Finalise each graded notebook, score it with the real points, write course files and
    gradebook. Runs in the main thread only (one gradebook writer); a notebook it cannot
    read scores 0 instead of stopping the run."""
    from nbgrader.api import Gradebook

    course, assignment, defs = run.course, run.assignment, run.defs
    ev = _evaluate(outcome, run)
    scores, reasons = ev.scores, ev.reasons

    dest = course.autograded(outcome.student, assignment)
    if dest.exists():
        shutil.rmtree(dest)
    submitted = course.submitted(outcome.student, assignment)
    copy_tree_files(course.source(assignment), dest, skip_suffix=".ipynb")
    copy_tree_files(submitted, dest, skip_suffix=".ipynb")
    for name in defs.notebooks:
        nb = ev.notebooks.get(name)
        if nb is not None:
            nb.cells.insert(0, _notes_cell(reasons))
            try:
                write_notebook(nb, dest / f"{name}.ipynb")
            except Exception as err:  # noqa: BLE001 - scores stand; the file is for reading
                reasons.append(f"{name}: the graded notebook could not be written ({err})")
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "grading.json").write_text(json.dumps(
        {"scores": scores, "review": ev.review, "untrusted": ev.untrusted}, indent=1) + "\n")
    stamp = submitted / "timestamp.txt"
    text = stamp.read_text().strip() if stamp.exists() else ""
    if text:
        (dest / "timestamp.txt").write_text(text + "\n")

    with warnings.catch_warnings(), Gradebook(course.db_url) as gb:
        # nbgrader's own update_or_create_submission trips a harmless SQLAlchemy warning
        warnings.filterwarnings("ignore", message=".*not in session.*")
        gb.update_or_create_student(outcome.student)
        gb.update_or_create_submission(assignment, outcome.student,
                                       **({"timestamp": text} if text else {}))
        for name in defs.notebooks:
            for grade_id in defs.grade_cells[name]:
                grade = gb.find_grade(grade_id, name, assignment, outcome.student)
                grade.auto_score = scores[grade_id]
                grade.needs_manual_grade = (scores[grade_id] is None
                                            or grade.manual_score is not None)
            for solution in defs.solution_cells[name]:
                comment = gb.find_comment(solution, name, assignment, outcome.student)
                cell = ev.cells[name].get(solution)
                checksum = contract.nbgrader_meta(cell).get("checksum") if cell else None
                untouched = cell is None or (checksum and _checksum(cell) == checksum)
                comment.auto_comment = ev.comments.get(solution) or (
                    "No response." if untouched else None)
        gb.db.commit()
    per_exercise = {ex: sum(scores.get(t) or 0.0 for t in tests)
                    for ex, tests in defs.exercises.items()}
    total = sum(s or 0.0 for s in scores.values())
    return Result(outcome.student, total, defs.max_total, per_exercise, reasons, outcome.seconds,
                  ev.review, ev.untrusted)


def _checksum(cell) -> str:
    from nbgrader.utils import compute_checksum

    try:
        return compute_checksum(cell)
    except Exception:  # noqa: BLE001 - mangled metadata: not "untouched"
        return ""


@dataclass(frozen=True)
class Settings:
    """How :func:`autograde` runs: ``workers`` submissions at a time; ``wall_seconds``, the
    limit for each of a submission's two runs; ``memory_mb``, the kernel's (and the probe
    run's) address-space limit; ``cell_timeout``, seconds per cell (default: the course
    config's); ``max_processes``, processes and threads of one run (a pids cgroup where
    writable, else RLIMIT_NPROC of its own uid); ``max_file_mb``, the largest file a run may
    write; ``trusted_grading=False`` grades the old way (in-kernel scores, no confinement
    beyond the process-group kill: for comparisons, never for real grading)."""

    workers: int = 2
    wall_seconds: float = 1800
    memory_mb: int = 8192
    cell_timeout: int | None = None
    max_processes: int = 256
    max_file_mb: int = 256
    trusted_grading: bool = True


def autograde(course: Course, assignment: str, settings: Settings = Settings(),
              students: list[str] | None = None,
              report: Callable[[str], None] = print) -> list[Result]:
    """Grade every submission (or ``students``) as ``settings`` say; see the module doc."""
    course.require_released(assignment)
    found = course.students(assignment)
    if students:
        missing = sorted(set(students) - set(found))
        if missing:
            raise CourseError(f"no submission of {assignment} for {', '.join(missing)} in "
                               f"{course.root / 'submitted'}; run `arlab-grade collect` first.")
        found = [s for s in found if s in students]
    if not found:
        raise CourseError(f"no submissions of {assignment} in {course.root / 'submitted'}; "
                           f"run `arlab-grade collect {assignment} DOWNLOAD --course "
                           f"{course.root}` first.")
    sandbox.warm_up()  # the fork server imports nbgrader while the course is prepared
    defs = definitions(course, assignment)
    config = load_config(course)
    output_limits = (int(config.LimitOutputSize.get("max_chars", 10_000)),
                     int(config.LimitOutputSize.get("max_data_chars", 2_000_000)))
    parts = {name: trusted.parts_for(assignment, defs.autograded(name))
             if settings.trusted_grading else {} for name in defs.notebooks}
    limits = Limits(settings.wall_seconds, settings.memory_mb, settings.cell_timeout,
                    settings.max_processes, settings.max_file_mb, settings.trusted_grading)
    report(f"sandbox: {confine.describe()}")
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix=f"arlab-grade-{assignment}-") as tmp:
        work = Path(tmp)
        os.chmod(work, 0o711)  # each sandbox uid reaches its own box, lists nothing
        run = _Run(course, assignment, defs, limits, parts, work,
                   _template(course, assignment, work / "_template"),
                   hidden_paths(course, work), max(1, settings.workers), output_limits)
        with ThreadPoolExecutor(max_workers=run.workers) as pool:
            futures = [pool.submit(_grade_one, run, s) for s in found]
            for future in as_completed(futures):
                result = _merge(run, future.result())
                results.append(result)
                flag = f"; REVIEW: {'; '.join(result.review)}" if result.review else ""
                report(f"graded {result.student}: {result.total:g}/{result.max_total:g} "
                       f"({result.seconds:.1f} s){flag}")
    return sorted(results, key=lambda r: r.student)
