"""Trusted grading (`arlab-grade autograde` with sandboxes and black-box parts), end to end on
real nbgrader with the real hw2 in a temporary course, in ONE autograde run:

- ``solution``, ``different`` (correct, written otherwise) and ``buggy`` (a bug in every
  exercise) score exactly what hw2's own end-to-end test expects;
- ``patcher`` (the same bugs, plus ``torch.allclose``/``assert_close``/``numpy.allclose``
  patched to pass) scores exactly what ``buggy`` scores, and is flagged for review;
- ``hostile`` (the starter's unanswered exercises plus every trick: patched comparisons, an
  input transformer that strips asserts and swallows every failure, reading the source and
  solution notebooks, writing the gradebook and the course, a detached background process, a
  fork loop of 200, a connection to a port this test listens on, a memory blow-up, a 20 MB
  line and an endless loop) scores 0, is flagged, and leaves nothing running.

Fork loops and allocations are bounded (200 forks under a pids limit of 100; zero pages under
the address-space limit), so the test cannot take the machine down.
"""
from __future__ import annotations

import copy
import csv
import importlib.util
import json
import os
import socket
import sqlite3
import uuid
from pathlib import Path

import nbformat
import numpy as np
import pytest

from arlab.grading import confine, contract, trusted
from arlab.grading.course import Course, read_notebook, write_notebook

ROOT = Path(__file__).resolve().parents[1]
HW = "hw2_masked_models"
FIXTURES = Path(__file__).parent / "fixtures"
CONFIG = ROOT / "grader" / "nbgrader_config.py"
SANDBOX_MARK = "arlab-grade-"  # in every sandboxed process's command line (its kernel file)


def _module(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


HW2 = _module(Path(__file__).parent / "test_homework_hw2_masked_models.py", "hw2_e2e")


def _processes_with(text: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            if text.encode() in cmdline:
                found.append(int(entry))
    return found


def _submission(released, answers: dict[str, str], first: list[str] = ()):
    nb = copy.deepcopy(released)
    for cell in nb.cells:
        if contract.is_answer(cell) and contract.grade_id(cell) in answers:
            cell.source = answers[contract.grade_id(cell)].strip("\n")
    for index, source in enumerate(first):  # after the given imports cell
        nb.cells.insert(2 + index, nbformat.v4.new_code_cell(source))
    return nb


def _twofaced() -> str:
    """The solution's made_masks, wrong only when a notebook cell calls it directly (where
    the visible tests look), right for the grader's probes."""
    return HW2._solution_answers()["made_masks"] + '''

_made_masks_right = made_masks


def made_masks(input_degrees, hidden_degrees):
    import sys
    masks = _made_masks_right(input_degrees, hidden_degrees)
    caller = sys._getframe(1).f_code
    if caller.co_name == "<module>" and "arlab" not in caller.co_filename:
        masks = [1 - m for m in masks]
    return masks
'''


def _outputs_text(nb) -> str:
    return "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                     for o in c.get("outputs", []) if o.get("output_type") == "stream")


# --- fast: the trusted parent's side alone ---------------------------------------------------
def test_judge_refuses_pickled_and_non_numeric_results(tmp_path):
    parts = trusted.parts_for(HW, {"test_wavenet_receptive_field"})
    assert list(parts) == ["test_wavenet_receptive_field"]
    np.savez(tmp_path / "arrays.npz", **{"test_wavenet_receptive_field::x":
                                         np.array([object()], dtype=object)})
    (tmp_path / "errors.json").write_text("{}")
    verdict = trusted.judge(tmp_path, parts)["test_wavenet_receptive_field"]
    assert not verdict.passed and "could not be read" in verdict.message
    (tmp_path / "arrays.npz").unlink()
    verdict = trusted.judge(tmp_path, parts, "stopped")["test_wavenet_receptive_field"]
    assert not verdict.passed and "stopped" in verdict.message


def test_probe_cells_take_given_code_from_the_source_and_skip_tests():
    source = read_notebook(ROOT / "solutions" / HW / f"{HW}.ipynb")
    submitted = copy.deepcopy(source)
    tests = {contract.grade_id(c) for c in source.cells if contract.is_test(c)}
    locked = {contract.grade_id(c) for c in source.cells if contract.is_locked(c)}
    given = next(c for c in submitted.cells if contract.grade_id(c) == "tiny_wavenet")
    given.source = "EDITED = True"
    answer = next(c for c in submitted.cells if contract.grade_id(c) == "made_masks")
    answer.source = "MINE = True"
    cells = trusted.probe_cells(submitted, source, tests, locked)
    assert "EDITED = True" not in cells and "MINE = True" in cells
    assert not any("BEGIN HIDDEN" in c for c in cells)
    tiny = next(c.source for c in source.cells if contract.grade_id(c) == "tiny_wavenet")
    assert tiny in cells


# --- slow: one autograde run with good, buggy and hostile submissions --------------------------
@pytest.mark.slow
@pytest.mark.skipif(not confine.is_root(), reason="the full sandbox needs root (namespaces)")
@pytest.mark.grading_e2e
def test_hostile_submissions_earn_nothing_and_leave_the_others_alone(tmp_path):
    from arlab.grading.autograde import Settings, autograde
    from arlab.grading.release import release
    from arlab.grading.reports import export

    course = Course.at(tmp_path / "course")
    release(HW, course, ROOT / "solutions", config=CONFIG)
    released = read_notebook(course.release(HW) / f"{HW}.ipynb")
    marker = f"arlab_background_{uuid.uuid4().hex}"
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    hostile = (FIXTURES / "trusted" / "hostile.py").read_text()
    for key, value in {"{port}": str(listener.getsockname()[1]), "{course}": str(course.root),
                       "{solutions}": str(ROOT / "solutions"), "{marker}": marker}.items():
        hostile = hostile.replace(key, value)
    patch = "\n".join(hostile.splitlines()[:12])  # the imports and the patched comparisons
    assert "numpy.allclose = " in patch
    combined = {HW2.BUGS[b]["exercise"]: HW2.BUGS[b]["source"] for b in HW2.COMBINED}
    loop = (FIXTURES / "trusted" / "hostile_loop.py").read_text()
    submissions = {"solution": _submission(released, HW2._solution_answers()),
                   "different": _submission(released, HW2.DIFFERENT),
                   "buggy": _submission(released, combined),
                   "patcher": _submission(released, combined, [patch]),
                   "hostile": _submission(released, {}, [hostile, loop]),
                   "twofaced": _submission(released, {**HW2._solution_answers(),
                                                      "made_masks": _twofaced()})}
    for student, nb in submissions.items():
        write_notebook(nb, course.submitted(student, HW) / f"{HW}.ipynb")
    before = (course.gradebook.stat().st_size, course.gradebook.read_bytes()[:16])

    lines: list[str] = []
    results = {r.student: r for r in autograde(
        course, HW, Settings(workers=2, wall_seconds=240, memory_mb=6144, cell_timeout=30,
                             max_processes=100), report=lines.append)}
    export(course, HW, tmp_path / "grades.csv")
    with open(tmp_path / "grades.csv", newline="") as fh:
        rows = {row["student"]: row for row in csv.DictReader(fh)}

    # exactly the scores of hw2's own end-to-end test; the cheats change nothing
    full = HW2._expected([])
    buggy = HW2._expected([c for b in HW2.COMBINED for c in HW2.BUGS[b]["fails"]])
    expected = {"solution": full, "different": full, "buggy": buggy,
                "hostile": dict.fromkeys(HW2.EXERCISES, 0.0),
                "twofaced": {**full, "made_masks": 0.0}}
    for student, points in expected.items():
        got = {name: float(rows[student][name]) for name in HW2.EXERCISES}
        assert got == points, (student, got, results[student].reasons)
        assert float(rows[student]["total"]) == sum(points.values())
    # the patched comparisons gain nothing; where they break the notebook run's own checks
    # of a part the trusted check passes, the lower score stands
    patcher = {name: float(rows["patcher"][name]) for name in HW2.EXERCISES}
    assert all(patcher[name] <= buggy[name] for name in HW2.EXERCISES), (patcher, buggy)
    assert rows["patcher"]["review"]
    assert list(rows["solution"])[-1] == "review"
    for student in ("solution", "different", "buggy"):
        assert rows[student]["review"] == "" and results[student].review == [], student
    # flagged wherever its kernel was fooled; when the endless loop could not be stopped the
    # kernel never reached the tests, and there is nothing to disagree about (on a busy
    # machine the interrupt can land too late: either way the points are 0)
    stopped = any("could not be stopped" in r or "did not stop" in r
                  for r in results["hostile"].reasons)
    if not stopped:
        assert results["hostile"].review and "trusted check 0" in rows["hostile"]["review"]
        assert any("REVIEW" in line and line.startswith("graded hostile") for line in lines)
    assert results["patcher"].review  # the review path itself, whatever the loop did
    # right for the hidden probes, wrong where the visible tests look: the notebook run says
    # 0, the trusted check 2, and the cell earns the lower (it used to earn the higher)
    assert "the notebook run gave 0, the trusted check 2; scored 0" in rows["twofaced"]["review"]
    twofaced = read_notebook(course.autograded("twofaced", HW) / f"{HW}.ipynb")
    shown = next(c for c in twofaced.cells if contract.grade_id(c) == "test_made_masks")
    assert any(o.get("output_type") == "error" for o in shown.outputs)  # not "passed"
    assert results["hostile"].untrusted == []

    # what the hostile cell saw, from its own outputs in the graded notebook
    graded = read_notebook(course.autograded("hostile", HW) / f"{HW}.ipynb")
    seen = dict(line[len("HOSTILE "):].split(": ", 1) for line in
                _outputs_text(graded).splitlines() if line.startswith("HOSTILE "))
    assert seen["source"] == seen["solutions"] == "FileNotFoundError", seen
    assert seen["found"] == "0", seen
    assert seen["network"] in ("ConnectionRefusedError", "OSError", "TimeoutError"), seen
    assert seen["memory"] == "MemoryError", seen
    forks = dict(kv.split("=") for kv in seen["forks"].split())
    assert int(forks["failed"]) > 0 and int(forks["ok"]) < 100, forks
    assert len(_outputs_text(graded)) < 2_000_000  # the 20 MB line was cut

    # nothing reached this machine's network, course, gradebook or process table
    with pytest.raises(BlockingIOError):
        listener.accept()
    listener.close()
    assert not (course.root / "pwned.txt").exists()
    assert course.gradebook.read_bytes()[:16] == before[1]  # still an SQLite file
    with sqlite3.connect(course.gradebook) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert _processes_with(marker) == []
    assert _processes_with(SANDBOX_MARK + HW) == []
    assert json.loads((course.autograded("hostile", HW) / "grading.json").read_text())["review"]
    leftover = [p for p in Path("/sys/fs/cgroup/pids").glob(f"arlab-{os.getpid()}-*")]
    assert leftover == []


@pytest.mark.grading_e2e
def test_probes_run_in_the_graded_kernel_and_again_only_where_it_died(tmp_path, monkeypatch):
    """The probes normally run in a last cell of the graded kernel (no second run of the
    student's code); a kernel that dies after the tests leaves no results there, and the
    separate probe run grades it instead."""
    from arlab.grading import autograde as grading
    from arlab.grading.release import release

    course = Course.at(tmp_path / "course")
    release(HW, course, ROOT / "solutions", config=CONFIG)
    released = read_notebook(course.release(HW) / f"{HW}.ipynb")
    answers = HW2._solution_answers()
    dies = _submission(released, answers)
    dies.cells.append(nbformat.v4.new_code_cell(  # the kernel dies; the probe run's shell not
        "import os, sys\nif 'ipykernel' in sys.modules:\n    os._exit(1)"))
    for student, nb in {"solution": _submission(released, answers), "dies": dies}.items():
        write_notebook(nb, course.submitted(student, HW) / f"{HW}.ipynb")

    separate = []
    run_probes = grading._run_probes

    def spy(run, student, *args, **kwargs):
        found, why = run_probes(run, student, *args, **kwargs)
        separate.extend((student, name) for name in found)
        return found, why

    monkeypatch.setattr(grading, "_run_probes", spy)
    results = {r.student: r for r in grading.autograde(
        course, HW, grading.Settings(workers=2, wall_seconds=240, cell_timeout=60),
        report=lambda line: None)}
    full = sum(HW2._expected([]).values())
    for student in ("solution", "dies"):
        assert results[student].total == full, (student, results[student].reasons)
        assert results[student].review == [] and results[student].untrusted == []
    assert separate == [("dies", HW)]
    graded = read_notebook(course.autograded("solution", HW) / f"{HW}.ipynb")
    kept = [c for c in graded.cells if "arlab_grading_notes" not in c.metadata]
    assert len(kept) == len(released.cells)   # the probe cell is not kept
    assert "__arlab_probe__" not in "".join(c.source for c in graded.cells)
