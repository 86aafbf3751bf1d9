"""Run an exercise's hidden tests on mutants of its answer, each in a forked child.

The assignment's notebook runs once in this process, in order: given cells and reference
answers, never the test cells. When it reaches an exercise's first test cell, the namespace is
exactly what a grading kernel would hold there; each mutant then runs in a child forked from
it: the mutated answer cell, then every test cell's graded part through the public entry
``arlab.grading.grade(cell, ns)``. A mutant is killed when one part raises (a GradingError or
anything else), when the child dies, or when it runs past its time.
"""
from __future__ import annotations

import contextlib
import importlib
import io
import multiprocessing
import os
import pkgutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

from arlab.grading import contract

ROOT = Path(__file__).resolve().parents[1]
HIDDEN = "### BEGIN HIDDEN TESTS"
_FORK = multiprocessing.get_context("fork")


@dataclass(frozen=True)
class Verdict:
    killed: bool
    by: str          # the test cell that failed, "answer cell", "timeout" or "crash"
    reason: str      # the first line of the failure
    seconds: float


def notebook(assignment: str) -> list:
    """The code cells of the assignment's source notebook (reference answers included)."""
    path = ROOT / "solutions" / assignment / f"{assignment}.ipynb"
    return [c for c in nbformat.read(str(path), as_version=4).cells if c.cell_type == "code"]


def kernel_code(source: str) -> str:
    """A cell's code as plain Python: shell (``!``) and magic (``%``) lines become ``pass``."""
    out = []
    for line in source.splitlines():
        body = line.lstrip()
        out.append(line[:len(line) - len(body)] + "pass" if body[:1] in ("!", "%") else line)
    return "\n".join(out)


def _quiet_exec(code: str, name: str, ns: dict) -> None:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        exec(compile(code, name, "exec"), ns)


def _close_figures() -> None:
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


def load_grading(warn: Callable[[str], None]) -> None:
    """Import every module of arlab.grading here, before any fork: all children then judge
    with one snapshot of the grading code, even while its files are being edited."""
    import arlab.grading

    for info in pkgutil.walk_packages(arlab.grading.__path__, "arlab.grading."):
        try:
            importlib.import_module(info.name)
        except Exception as err:  # noqa: BLE001  (the run still says what each part does)
            warn(f"importing {info.name} failed: {type(err).__name__}: {err}")


def walk(assignment: str, chosen: set[str] | None,
         warn: Callable[[str], None]) -> Iterator[tuple[str, str, list[str], dict]]:
    """Run the notebook; yield ``(exercise, reference answer, test cells, namespace)`` at each
    chosen exercise's first test cell (all exercises when ``chosen`` is None)."""
    load_grading(warn)
    cells = notebook(assignment)
    tests = contract.exercises(cells)
    answers = {contract.grade_id(c): c.source for c in cells if contract.is_answer(c)}
    ns: dict[str, Any] = {"__name__": "__main__"}
    done: set[str] = set()
    for cell in cells:
        gid = contract.grade_id(cell) or "?"
        if contract.is_test(cell):
            owner = contract.exercise_of(gid, tests)
            if owner and owner not in done and (chosen is None or owner in chosen):
                done.add(owner)
                yield owner, answers[owner], tests[owner], ns
            continue
        try:
            _quiet_exec(kernel_code(cell.source), f"<cell {gid}>", ns)
        except Exception as err:  # noqa: BLE001  (a figure cell may fail; grading goes on)
            warn(f"{assignment}: given cell {gid} raised {type(err).__name__}: {err}")
        _close_figures()


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"[:300]


def visible_tests(assignment: str) -> dict[str, str]:
    """Test cell -> its visible code (what the student sees: the cell less its hidden part)."""
    return {contract.grade_id(c): kernel_code(c.source.split(HIDDEN)[0])
            for c in notebook(assignment) if contract.is_test(c)}


def _child(conn, ns: dict, source: str, tests: list[str], visible: dict | None) -> None:
    """In the forked child: run the answer, then the graded parts (or, given ``visible``,
    the test cells' visible code); send one verdict."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    from arlab.grading import grade  # the public entry: survives changes inside grading/

    try:
        exec(compile(kernel_code(source), "<answer>", "exec"), ns)
    except BaseException as err:  # noqa: BLE001
        conn.send((True, "answer cell", _first_line(err)))
        return
    for cell in tests:
        try:
            if visible is None:
                grade(cell, ns)
            else:
                exec(compile(visible[cell], f"<visible {cell}>", "exec"), ns)
        except BaseException as err:  # noqa: BLE001
            conn.send((True, cell, _first_line(err)))
            return
    conn.send((False, "", ""))


def _stop(proc) -> None:
    proc.terminate()
    proc.join(5)
    if proc.is_alive():
        proc.kill()
        proc.join()


def judge(ns: dict, sources: list[str], tests: list[str], timeout: float,
          workers: int = 1, visible: dict[str, str] | None = None) -> list[Verdict]:
    """The verdict on each answer source, run in children forked from ``ns``, at most
    ``workers`` at a time, each stopped after ``timeout`` seconds. ``visible`` (test cell ->
    code): judge by the test cells' visible code instead of their graded parts."""
    verdicts: dict[int, Verdict] = {}
    pending = list(enumerate(sources))
    running: list[tuple[int, Any, Any, float]] = []
    while pending or running:
        while pending and len(running) < workers:
            index, source = pending.pop(0)
            sys.stdout.flush()
            sys.stderr.flush()
            receive, send = _FORK.Pipe(duplex=False)
            proc = _FORK.Process(target=_child, args=(send, ns, source, tests, visible),
                                 daemon=True)
            proc.start()
            send.close()
            running.append((index, proc, receive, time.perf_counter()))
        for item in list(running):
            index, proc, receive, start = item
            spent = time.perf_counter() - start
            verdict = None
            if receive.poll(0.05):
                try:
                    killed, by, reason = receive.recv()
                    verdict = Verdict(killed, by, reason, spent)
                except EOFError:
                    verdict = Verdict(True, "crash", f"exit code {proc.exitcode}", spent)
            elif not proc.is_alive() and not receive.poll(0):
                verdict = Verdict(True, "crash", f"exit code {proc.exitcode}", spent)
            elif spent > timeout:
                verdict = Verdict(True, "timeout", f"ran past {timeout:.0f} s", spent)
            if verdict is not None:
                _stop(proc)
                receive.close()
                verdicts[index] = verdict
                running.remove(item)
    return [verdicts[i] for i in range(len(sources))]
