"""nbgrader preprocessors that make autograding survive hostile or clumsy notebooks, and the
plain functions behind them (the trusted parent applies the same functions again).

Registered in ``grader/nbgrader_config.py``:

- :class:`GuardedExecute` runs the notebook like nbgrader's ``Execute`` and also: starts the
  kernel under a memory limit (``RLIMIT_AS``), caps the output it keeps while receiving it,
  turns a dead or unstoppable kernel into a failed cell (the cells before keep their points),
  records its progress so a killed run can be reconstructed, and, for trusted grading, runs
  the graded parts' probes in a last cell of its own (removed from the graded notebook).
- :class:`LimitOutputSize` caps every output's characters (nbgrader's ``LimitOutput`` caps lines
  only, so one 20 MB line would pass through).
- :class:`StderrIsNotFailure` keeps warnings and progress bars from zeroing a test cell
  (nbgrader counts any stderr output of a test cell as a failure).
- :class:`RefuseReferenceImports` gives 0 to an exercise whose answer imports the references.
- :class:`HideHiddenTests` removes the hidden tests' source and tracebacks from feedback.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import nbformat
from jupyter_client.manager import AsyncKernelManager
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbgrader.preprocessors import Execute, NbGraderPreprocessor
from traitlets import Integer, Unicode, default

from arlab.grading import contract
from arlab.grading.imports import refusals
from arlab.grading.progress import ProgressLog

REFUSED = "RefusedImport"
NOT_RUN = "NotRun"
_CUT_MARK = " more characters]\n"
_TEXT_TYPES = ("text/", "application/javascript")

# Runs in a fresh interpreter before the kernel replaces it (exec keeps the limit): stdlib
# only. Few malloc arenas, or a kernel's threads would reserve most of the address space.
_LIMIT_AND_EXEC = (
    "import os, resource, sys\n"
    "limit = int(sys.argv[1]) * 1024 * 1024\n"
    "hard = resource.getrlimit(resource.RLIMIT_AS)[1]\n"
    "limit = limit if hard == resource.RLIM_INFINITY else min(limit, hard)\n"
    "resource.setrlimit(resource.RLIMIT_AS, (limit, hard))\n"
    "os.environ.setdefault('MALLOC_ARENA_MAX', '2')\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)


def error_output(ename: str, evalue: str):
    """An error output as a failing test cell shows it (nbgrader scores the cell 0)."""
    return nbformat.v4.new_output("error", ename=ename, evalue=evalue,
                                  traceback=[f"{ename}: {evalue}"])


def mark_not_run(cell, reason: str) -> None:
    """A code cell the grader did not run; a test cell marked so scores 0."""
    if cell.get("cell_type") == "code" and cell.get("source", "").strip():
        if not any(o.get("ename") == NOT_RUN for o in cell.get("outputs", [])):
            cell.setdefault("outputs", []).append(error_output(NOT_RUN, reason))


def output_chars(output) -> int:
    """Characters an output holds (text, traceback, data), to budget what is kept."""
    if output.get("output_type") == "stream":
        return len(output.get("text", ""))
    if output.get("output_type") == "error":
        return len(output.get("evalue", "")) + sum(len(t) for t in output.get("traceback", []))
    return sum(len(v) if isinstance(v, str) else sum(map(len, v)) if isinstance(v, list) else 0
               for v in output.get("data", {}).values())


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit or (text.endswith(_CUT_MARK) and len(text) <= limit + 80):
        return text
    return f"{text[:limit]}\n[output truncated by the grader: {len(text) - limit:,}{_CUT_MARK}"


def limit_cell_outputs(cell, max_chars: int, max_data_chars: int) -> None:
    """Cap every output of a code cell: text to ``max_chars`` characters, rich data (images,
    HTML) to ``max_data_chars``; what is cut is replaced by a note saying how much."""
    if cell.get("cell_type") != "code":
        return
    for out in cell.get("outputs", []):
        kind = out.get("output_type")
        if kind == "stream":
            out["text"] = _clip(out.get("text", ""), max_chars)
        elif kind == "error":
            out["evalue"] = _clip(out.get("evalue", ""), max_chars)
            out["traceback"] = [_clip(line, max_chars) for line in out.get("traceback", [])]
        elif "data" in out:
            data = out["data"]
            for mime in list(data):
                value = data[mime]
                text = "".join(value) if isinstance(value, list) else value
                if not isinstance(text, str):
                    continue
                if mime == "text/plain":
                    data[mime] = _clip(text, max_chars)
                elif len(text) > (max_chars if mime.startswith(_TEXT_TYPES) else max_data_chars):
                    del data[mime]
                    data.setdefault("text/plain", f"[{mime} output of {len(text):,} characters "
                                                  "removed by the grader]")


def stderr_as_stdout(cell) -> None:
    """Warnings and progress bars go to stderr, which nbgrader reads as a failed test; in test
    cells they are kept as ordinary output instead. Only an error output fails a test."""
    if contract.is_test(cell):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                out["name"] = "stdout"


def apply_refusals(nb, exercises: dict[str, list[str]] | None = None,
                   locked_ids: set[str] | None = None) -> dict[str, list[str]]:
    """Give 0 to every exercise whose answer uses arlab's references: an error output with the
    reasons in the answer cell and in each of its test cells. ``exercises`` (exercise -> test
    cells) and ``locked_ids`` should come from the source or gradebook; without them they are
    read from the notebook. Idempotent; returns exercise -> reasons."""
    tests = exercises if exercises is not None else contract.exercises(nb.cells)
    found = refusals(nb.cells, tests, locked_ids)
    for name, reasons in found.items():
        text = (f"exercise {name} scores 0: its answer uses arlab's reference or grading code "
                "(write it yourself).\n" + "\n".join(f"  - {r}" for r in reasons))
        targets = set(tests[name]) | {name}
        for cell in nb.cells:
            if cell.get("cell_type") == "code" and contract.grade_id(cell) in targets:
                outputs = cell.setdefault("outputs", [])
                if not any(o.get("ename") == REFUSED for o in outputs):
                    # first, so nbgrader reads the failure before any partial-credit result
                    outputs.insert(0, error_output(REFUSED, text))
    return found


def hide_hidden_tests(cell, begin: str = "BEGIN HIDDEN TESTS",
                      end: str = "END HIDDEN TESTS") -> bool:
    """Remove hidden-test regions from a cell's source and reduce its error tracebacks to one
    line (a traceback quotes the failing source). True when the cell had hidden tests."""
    source = cell.get("source", "")
    if begin not in source:
        return False
    kept, hiding = [], False
    for line in source.split("\n"):
        if begin in line:
            hiding = True
            kept.append(line.split("#")[0] + "# (hidden tests, run by the grader, not shown)"
                        if cell.get("cell_type") == "code" else "(hidden tests not shown)")
        elif end in line:
            hiding = False
        elif not hiding:
            kept.append(line)
    cell["source"] = "\n".join(kept)
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            out["traceback"] = [f"{out.get('ename', 'Error')}: {out.get('evalue', '')}"]
    return True


class LimitedKernelManager(AsyncKernelManager):
    """Starts the kernel through a tiny launcher that sets ``RLIMIT_AS`` and then execs it,
    so the kernel and whatever it spawns live under the limit while the grader does not."""

    memory_mb = 0  # set per instance by GuardedExecute; 0: no limit

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        cmd = super().format_kernel_cmd(extra_arguments)
        if self.memory_mb > 0 and sys.platform != "win32":
            cmd = [sys.executable, "-c", _LIMIT_AND_EXEC, str(int(self.memory_mb)), *cmd]
        return cmd


class GuardedExecute(Execute):
    """nbgrader's ``Execute`` with a memory-limited kernel, bounded output, survivable
    crashes and a progress record (see the module docstring)."""

    memory_mb = Integer(help="RLIMIT_AS of the kernel in MiB (0: none); default from "
                             "ARLAB_MEMORY_MB").tag(config=True)
    max_receive_chars = Integer(1_000_000, help="characters of output kept per cell while "
                                                "receiving; the rest is dropped").tag(config=True)
    progress_dir = Unicode(help="folder for the progress record (empty: none); default from "
                                "ARLAB_GRADING_PROGRESS").tag(config=True)

    probe_spec = Unicode(help="JSON file naming, per notebook, the graded parts whose probes "
                              "run in a last cell added after the notebook (empty: none); "
                              "default from ARLAB_PROBE_SPEC").tag(config=True)

    @default("probe_spec")
    def _probe_spec_default(self) -> str:
        return os.environ.get("ARLAB_PROBE_SPEC", "")

    @default("memory_mb")
    def _memory_default(self) -> int:
        return int(os.environ.get("ARLAB_MEMORY_MB", "0") or 0)

    @default("progress_dir")
    def _progress_default(self) -> str:
        return os.environ.get("ARLAB_GRADING_PROGRESS", "")

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("kernel_manager_class", LimitedKernelManager)
        super().__init__(*args, **kwargs)
        self._halted: str | None = None
        self._log: ProgressLog | None = None
        self._probe_index: int | None = None
        self._received = self._dropped = 0

    def create_kernel_manager(self):
        km = super().create_kernel_manager()
        km.memory_mb = self.memory_mb
        return km

    def preprocess(self, nb, resources=None, km=None):
        self._halted = None
        self._log = None
        if self.progress_dir:
            name = ((resources or {}).get("nbgrader") or {}).get("notebook", "notebook")
            self._log = ProgressLog(self.progress_dir, name)
            self._log.begin(nb)
        probe = self._probe_cell(resources)
        if probe is None:
            return super().preprocess(nb, resources, km)
        nb.cells.append(probe)
        self._probe_index = index = len(nb.cells) - 1
        try:
            return super().preprocess(nb, resources, km)
        finally:
            self._probe_index = None
            del nb.cells[index]

    def _probe_cell(self, resources):
        """The trusted grader's probes, as a last cell run in this kernel after the notebook
        (so the student's code is not run a second time); None when none are asked for."""
        if not self.probe_spec:
            return None
        name = ((resources or {}).get("nbgrader") or {}).get("notebook", "")
        try:
            if name not in json.loads(Path(self.probe_spec).read_text()):
                return None
        except (OSError, ValueError):
            return None
        return nbformat.v4.new_code_cell(
            "import arlab.grading.probe_runner as __arlab_probe__\n"
            f"__arlab_probe__.in_kernel(globals(), {self.probe_spec!r}, {name!r})")

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code" or not cell.source.strip():
            return super().preprocess_cell(cell, resources, index)
        if self._halted:
            mark_not_run(cell, self._halted)
        else:
            self._run_guarded(cell, resources, index)
        if self._log and index != self._probe_index:
            self._log.finished(index, cell)
        return cell, resources

    def _run_guarded(self, cell, resources, index: int) -> None:
        self._received = self._dropped = 0
        if self._log and index != self._probe_index:
            self._log.started(index)
        try:
            super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            cell.outputs.append(error_output(
                "DeadKernelError", "the kernel died while running this cell (it called "
                "os._exit, crashed, or ran out of memory); the cells after it were not run"))
            self._halted = f"not run: the kernel died in cell #{index + 1}"
        except CellTimeoutError:
            cell.outputs.append(error_output(
                "CellTimeoutError", "this cell ran past the time limit and did not stop when "
                "interrupted; the cells after it were not run"))
            self._halted = f"not run: cell #{index + 1} could not be stopped"
        if self._dropped:
            cell.outputs.append(nbformat.v4.new_output(
                "stream", name="stdout",
                text=f"\n[the grader dropped {self._dropped:,} characters of output]\n"))

    def output(self, outs, msg, display_id, cell_index):
        """Keep at most ``max_receive_chars`` of a cell's output, so a flood of printing
        cannot exhaust the grader's memory before the cell times out."""
        out = super().output(outs, msg, display_id, cell_index)
        if out is None or self.max_receive_chars <= 0:
            return out
        size = output_chars(out)
        room = self.max_receive_chars - self._received
        self._received += size
        if size > room:
            if out.get("output_type") == "stream" and room > 0:
                out["text"] = out["text"][:room]
            elif outs and outs[-1] is out:
                outs.pop()
            self._dropped += size - max(room, 0)
        return out


class LimitOutputSize(NbGraderPreprocessor):
    """Cap the characters of every output (see :func:`limit_cell_outputs`)."""

    max_chars = Integer(10_000, help="characters kept per text output").tag(config=True)
    max_data_chars = Integer(2_000_000, help="characters kept per rich output (images, "
                                             "HTML)").tag(config=True)

    def preprocess_cell(self, cell, resources, index):
        limit_cell_outputs(cell, self.max_chars, self.max_data_chars)
        return cell, resources


class StderrIsNotFailure(NbGraderPreprocessor):
    """Stderr output of a test cell is not a failure (see :func:`stderr_as_stdout`)."""

    def preprocess_cell(self, cell, resources, index):
        stderr_as_stdout(cell)
        return cell, resources


class RefuseReferenceImports(NbGraderPreprocessor):
    """Zero the exercises whose answers import the references (see :func:`apply_refusals`);
    must run before ``SaveAutoGrades``."""

    def preprocess(self, nb, resources):
        exercises, locked = _trusted_layout(resources)
        apply_refusals(nb, exercises, locked)
        return nb, resources


def _trusted_layout(resources) -> tuple[dict[str, list[str]] | None, set[str] | None]:
    """Exercises and read-only cells of the notebook being graded, from the gradebook (the
    submission's own metadata could lie); (None, None) when there is no gradebook."""
    from nbgrader.api import Gradebook

    info = (resources or {}).get("nbgrader") or {}
    try:
        with Gradebook(info["db_url"]) as gb:
            notebook = gb.find_notebook(info["notebook"], info["assignment"])
            grades = [c.name for c in notebook.grade_cells]
            answers = [c.name for c in notebook.solution_cells]
            locked = {c.name for c in notebook.source_cells if c.locked} | set(grades)
    except Exception:  # noqa: BLE001 - plain nbconvert use: fall back to the metadata
        return None, None
    exercises: dict[str, list[str]] = {name: [] for name in answers}
    for test in grades:
        owner = contract.exercise_of(test, answers)
        if owner is not None and test not in answers:
            exercises[owner].append(test)
    return {k: v for k, v in exercises.items() if v}, locked


class HideHiddenTests(NbGraderPreprocessor):
    """Feedback without the hidden tests' source or tracebacks (see
    :func:`hide_hidden_tests`)."""

    begin_test_delimeter = Unicode("BEGIN HIDDEN TESTS").tag(config=True)
    end_test_delimeter = Unicode("END HIDDEN TESTS").tag(config=True)

    def preprocess_cell(self, cell, resources, index):
        hide_hidden_tests(cell, self.begin_test_delimeter, self.end_test_delimeter)
        return cell, resources
