"""The instructor's grading workflow (`arlab-grade`) on real nbgrader, end to end, on the `toy`
fixture assignment (tests/fixtures/grading): release -> collect -> check -> autograde ->
feedback -> export, hostile submissions graded together with a good one, the reference-import
rule, the LMS collection rules, the metadata repair and the students' self-check.
"""
from __future__ import annotations

import csv
import os
import shutil
import time
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import nbformat
import pytest

from arlab.grading import cli, contract, selfcheck
from arlab.grading.collect import collect
from arlab.grading.course import Course, read_notebook, write_notebook
from arlab.grading.imports import forbidden_imports, refusals
from arlab.grading.integrity import repair_metadata

FIXTURES = Path(__file__).parent / "fixtures" / "grading"
SOLUTIONS = FIXTURES / "solutions"
VARIANTS = FIXTURES / "submissions"
CONFIG = Path(__file__).resolve().parents[1] / "grader" / "nbgrader_config.py"
MARKER = "toy_hidden_marker"  # every hidden test of the fixture defines a name with it
SQUARES, WORDS = ["test_squares"], ["test_word_count", "test_word_count_2"]


# --- helpers -----------------------------------------------------------------------------
def run_cli(capsys, *argv) -> tuple[int, str]:
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def submission(course: Course, variant: str | None = None):
    """The released notebook with the answers of ``submissions/<variant>/`` filled in."""
    nb = read_notebook(course.release("toy") / "toy.ipynb")
    if variant:
        folder = VARIANTS / variant
        for cell in nb.cells:
            answer = folder / f"{contract.grade_id(cell)}.py"
            if contract.is_answer(cell) and answer.exists():
                cell.source = answer.read_text().rstrip("\n")
        first = folder / "_first_cell.py"
        if first.exists():
            nb.cells.insert(0, nbformat.v4.new_code_cell(first.read_text().rstrip("\n")))
    return nb


def place(course: Course, student: str, nb) -> None:
    write_notebook(nb, course.submitted(student, "toy") / "toy.ipynb")


def cell_of(nb, grade_id: str):
    return next(c for c in nb.cells if contract.grade_id(c) == grade_id)


def points(course: Course, student: str) -> tuple[float, float]:
    """(squares, word_count) points of a student, read from the course's gradebook."""
    from nbgrader.api import Gradebook

    with Gradebook(course.db_url) as gb:
        found = gb.find_submission("toy", student)
        scores = {g.cell.name: g.auto_score for nb in found.notebooks for g in nb.grades}
    return sum(scores[t] for t in SQUARES), sum(scores[t] for t in WORDS)


def lines_about(output: str, student: str) -> str:
    return "\n".join(line for line in output.splitlines() if line.startswith(f"{student}:"))


def check_table(output: str) -> dict[str, str]:
    """Student -> all of their rows in `arlab-grade check`'s table."""
    rows: dict[str, str] = {}
    student = None
    for line in output.splitlines()[2:]:
        if line.strip() and not line.startswith(" "):
            student = line.split()[0]
        if student and line.strip():
            rows[student] = rows.get(student, "") + line + "\n"
    return rows


def leftover_processes(tag: str) -> list[int]:
    """Live processes whose environment mentions ``tag`` (the grading temp folders)."""
    pids = []
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and tag.encode() in Path(f"/proc/{entry}/environ").read_bytes():
                pids.append(int(entry))
        except OSError:
            continue
    return pids


@pytest.fixture(scope="module")
def released(tmp_path_factory) -> Path:
    """`arlab-grade release` once: a course with `toy` released, and the starter export."""
    root = tmp_path_factory.mktemp("released")
    code = cli.main(["release", "toy", "--course", str(root / "course"), "--solutions",
                     str(SOLUTIONS), "--to", str(root / "starter"), "--config", str(CONFIG)])
    assert code == 0
    return root


@pytest.fixture
def course(released: Path, tmp_path: Path) -> Course:
    shutil.copytree(released / "course", tmp_path / "course")
    return Course.at(tmp_path / "course")


# --- the workflow --------------------------------------------------------------------------
@pytest.mark.slow
def test_release_is_deterministic_and_hides_solutions(released, tmp_path, capsys):
    starter = released / "starter" / "toy" / "toy.ipynb"
    text = starter.read_text()
    assert text.endswith("}\n") and text.startswith('{\n "cells": [\n  {\n')
    nb = nbformat.reads(text, as_version=4)
    assert all(c.outputs == [] and c.execution_count is None
               for c in nb.cells if c.cell_type == "code")
    assert MARKER not in text and "BEGIN SOLUTION" not in text
    stub = "# YOUR CODE HERE\n    raise NotImplementedError()"
    assert cell_of(nb, "squares").source.endswith(stub)
    # `arlab-grade starter` (generate_starter) rebuilds the same bytes in another course
    code, out = run_cli(capsys, "starter", "toy", "--solutions", SOLUTIONS, "--to",
                        tmp_path / "starter", "--config", CONFIG)
    assert code == 0, out
    again = sorted((tmp_path / "starter").rglob("*.ipynb"))
    assert [p.relative_to(tmp_path / "starter") for p in again] == [Path("toy/toy.ipynb")]
    assert again[0].read_bytes() == starter.read_bytes()


@pytest.mark.slow
@pytest.mark.grading_e2e
def test_workflow_release_collect_check_autograde_feedback_export(course, tmp_path, capsys,
                                                                 monkeypatch):
    monkeypatch.delenv("ARLAB_BUDGET", raising=False)  # the kernels must get smoke by default
    alice = submission(course, "solution")
    alice.cells.insert(0, nbformat.v4.new_code_cell(
        "import os\nprint('budget:', os.environ.get('ARLAB_BUDGET'))"))
    download = tmp_path / "canvas.zip"
    with zipfile.ZipFile(download, "w") as archive:
        for name, nb, when in [
            ("alice_1001_5001_toy.ipynb", alice, (2024, 3, 1, 12, 0, 0)),
            ("bob_LATE_1002_5002_toy-1.ipynb", submission(course), (2024, 3, 2, 23, 30, 6)),
            ("carol_1003_5003_toy.ipynb", submission(course, "buggy"), (2024, 3, 1, 18, 45, 0)),
        ]:
            archive.writestr(zipfile.ZipInfo(name, date_time=when), nbformat.writes(nb))

    code, out = run_cli(capsys, "collect", "toy", download, "--course", course.root,
                        "--timezone", "America/New_York")
    assert code == 0, out
    assert course.students("toy") == ["alice", "bob", "carol"]
    # toy-1.ipynb (renamed by the LMS) became the assignment's only notebook; 23:30:06 EST
    # on 2 March is 04:30:06 UTC on 3 March (zip times have 2 s steps)
    assert (course.submitted("bob", "toy") / "timestamp.txt").read_text() == \
        "2024-03-03 04:30:06.000000 UTC\n"
    assert "LATE" in next(line for line in out.splitlines() if line.startswith("bob"))

    code, out = run_cli(capsys, "check", "toy", "--course", course.root)
    assert code == 0 and out.count(" ok ") == 3, out

    code, out = run_cli(capsys, "autograde", "toy", "--course", course.root, "--workers", 2,
                        "--timeout", 120, "--memory", 1024)
    assert code == 0, out
    assert points(course, "alice") == (2, 3)   # the solution: full marks
    graded = read_notebook(course.autograded("alice", "toy") / "toy.ipynb")
    assert "budget: smoke" in str(graded.cells[1].outputs)  # cell 0: the grading notes
    assert points(course, "bob") == (0, 0)     # the untouched release: 0, no crash
    assert points(course, "carol") == (2, 1)   # the bug costs exactly the hidden case test
    assert "NotImplementedError" in lines_about(out, "bob")
    assert "test_word_count_2: AssertionError: word_count must ignore case" in \
        lines_about(out, "carol")

    code, out = run_cli(capsys, "feedback", "toy", "--course", course.root)
    assert code == 0, out
    pages = {p.parents[1].name: p.read_text() for p in course.root.glob("feedback/*/toy/*.html")}
    assert sorted(pages) == ["alice", "bob", "carol"]
    for html in pages.values():
        assert MARKER not in html and "BEGIN HIDDEN TESTS" not in html
    assert "word_count must ignore case" in pages["carol"]  # the failure is explained

    grades = tmp_path / "grades.csv"
    code, out = run_cli(capsys, "export", "toy", "--course", course.root, "--out", grades)
    assert code == 0, out
    with open(grades, newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows == [["student", "assignment", "total", "max_total", "squares", "word_count",
                     "review"],
                    ["alice", "toy", "5", "5", "2", "3", ""],
                    ["bob", "toy", "0", "5", "0", "0", ""],
                    ["carol", "toy", "3", "5", "2", "1", ""]]


# --- hostile and broken submissions, one autograde run ----------------------------------
EXPECTED = {  # student: (squares points, word_count points, text in the reasons)
    "good": (2, 3, None),
    "loop": (2, 0, "word_count: CellTimeoutError"),
    "import_error": (0, 3, "ModuleNotFoundError"),
    "sys_exit": (0, 3, "squares: SystemExit"),
    "os_exit": (2, 0, "word_count: DeadKernelError"),
    "memory": (0, 3, "test_squares: MemoryError"),
    "flood": (2, 3, None),
    "deleted_test": (2, 3, None),
    "edited_test": (0, 3, "test_squares: AssertionError"),
    "colab": (2, 3, None),
    "stderr": (2, 3, None),
    "refused": (0, 3, "squares: 0 points, the answer uses arlab's reference"),
    "freeze": (2, 0, "stopped after 30 s"),
}


@pytest.mark.slow
@pytest.mark.grading_e2e
def test_hostile_submissions_never_spoil_the_others(course, capsys):
    for student in EXPECTED:
        nb = submission(course, "solution" if student in ("good", "deleted_test", "colab")
                        else student)
        if student == "deleted_test":
            nb.cells.remove(cell_of(nb, "test_squares"))
        if student == "edited_test":
            test = cell_of(nb, "test_squares")
            test.source = "assert True  # looks right to me"
            test.metadata.nbgrader["points"] = 100
        if student == "colab":  # a Colab round trip drops the cells' metadata
            for cell in nb.cells:
                cell.metadata = {}
            nb.metadata["colab"] = {"provenance": []}
        place(course, student, nb)

    code, out = run_cli(capsys, "check", "toy", "--course", course.root)
    assert code == 0
    report = check_table(out)
    assert "repaired" in report["colab"] and "squares: metadata restored" in report["colab"]
    colab = read_notebook(course.submitted("colab", "toy") / "toy.ipynb")
    assert [contract.grade_id(c) for c in colab.cells if contract.grade_id(c)] == \
        ["setup", "squares", "test_squares", "word_count", "test_word_count", "test_word_count_2"]
    assert (course.root / "backup/check/colab/toy/toy.ipynb").exists()
    assert "test_squares: deleted" in report["deleted_test"]
    assert "test_squares: read-only cell edited" in report["edited_test"]
    assert "points changed to 100" in report["edited_test"]

    code, out = run_cli(capsys, "autograde", "toy", "--course", course.root, "--workers", 2,
                        "--timeout", 30, "--memory", 1024, "--cell-timeout", 8)
    assert code == 0, out
    for student, (squares, words, reason) in EXPECTED.items():
        assert points(course, student) == (squares, words), (student, lines_about(out, student))
        if reason:
            assert reason in lines_about(out, student), (student, out)
    for _ in range(50):  # the frozen run's kernel was killed with its grading process
        if not leftover_processes("arlab-grade-toy-"):
            break
        time.sleep(0.1)
    assert leftover_processes("arlab-grade-toy-") == []

    graded = {s: read_notebook(course.autograded(s, "toy") / "toy.ipynb") for s in EXPECTED}
    restored = cell_of(graded["edited_test"], "test_squares")
    assert "squares(3)" in restored.source and restored.metadata.nbgrader["points"] == 2
    assert "squares(50)" in cell_of(graded["deleted_test"], "test_squares").source
    flood = (course.autograded("flood", "toy") / "toy.ipynb").stat().st_size
    assert flood < 100_000  # the 20 MB line was cut while it arrived and again after
    assert "output truncated" in str(cell_of(graded["flood"], "squares").outputs)

    code, out = run_cli(capsys, "feedback", "toy", "--course", course.root)
    assert code == 0, out
    pages = {p.parents[1].name: p.read_text() for p in course.root.glob("feedback/*/toy/*.html")}
    assert sorted(pages) == sorted(EXPECTED)
    assert all(MARKER not in html for html in pages.values())
    assert "RefusedImport" in pages["refused"] and "arlab.models" in pages["refused"]
    assert "CellTimeoutError" in pages["loop"]
    assert "stopped after 30 s" in pages["freeze"] and "(cut in word_count)" in pages["freeze"]
    assert len(pages["flood"]) < 1_000_000
    assert "<script>document.title" not in pages["flood"]  # outputs are sanitised


# --- the reference-import rule -----------------------------------------------------------
REFUSED = [
    "from arlab.models import made",
    "from arlab.models.made import made_masks as mine",
    "import arlab.grading.checks",
    "from arlab import made_masks",
    "from arlab import *",
    "import arlab\nmasks = arlab.made_masks",
    "import arlab as a\nlayer = a.models.made.MaskedLinear",
    "import importlib\nm = importlib.import_module('arlab.models')",
    "m = __import__('arlab.models.made')",
    "m = __import__('arlab', fromlist=['made_masks'])",
    "import importlib\nm = importlib.import_module(name)",
    "import arlab\nf = getattr(arlab, 'made_masks')",
    "exec('from arlab.models import made')",
    "import sys\nm = sys.modules['arlab.models.made']",
    "%run src/arlab/models/made.py",
    "def f():\n    from arlab import receptive\n    return receptive",
]
ALLOWED = [
    "from arlab.data import binary_shapes",
    "import arlab.units\nbits = arlab.units.nats_to_bits(1.0)",
    "from arlab import device, by_budget, nats_to_bits",
    "import arlab\narlab.train.fit",
    "# from arlab.models import made\ntext = 'arlab.models.made'",
    "import torch\nmodel.eval()\ncompiled = torch.compile(model)",
    "this is not python",
]


@pytest.mark.parametrize("source", REFUSED)
def test_reference_imports_are_refused(source):
    reasons = forbidden_imports(source)
    assert reasons and all(r.startswith("line ") for r in reasons)


@pytest.mark.parametrize("source", ALLOWED)
def test_allowed_code_is_not_refused(source):
    assert forbidden_imports(source) == []


def test_exercise_name_is_refused_even_from_allowed_modules_and_other_cells():
    assert forbidden_imports("from arlab.units import bits_per_dim", exercise="bits_per_dim")
    assert not forbidden_imports("from arlab.units import bits_per_dim", exercise="made_masks")

    def cell(source, gid=None):
        made = nbformat.v4.new_code_cell(source)
        if gid:
            made.metadata["nbgrader"] = {"solution": True, "grade_id": gid, "grade": False}
        return made

    cells = [cell("import arlab.models.made as M"),
             cell("def squares(n):\n    return M.made_masks(n)", "squares"),
             cell("from arlab import made_masks as word_count"),
             cell("pass", "word_count"),
             cell("def other(n):\n    return n", "other")]
    found = refusals(cells, ["squares", "word_count", "other"])
    assert sorted(found) == ["squares", "word_count"]
    assert "uses M" in found["squares"][0]

    # forged metadata does not hide a cell: what is read-only comes from the gradebook
    disguised = cell("from arlab import made_masks as word_count", "setup")
    disguised.metadata["nbgrader"].update(locked=True, solution=False)
    answer = cell("pass", "word_count")
    answer.metadata["nbgrader"]["solution"] = False
    assert refusals([disguised, answer], ["word_count"]) == {}  # fooled by the metadata
    assert list(refusals([disguised, answer], ["word_count"], locked_ids={"test_word_count"})) \
        == ["word_count"]


# --- collecting and repairing -----------------------------------------------------------
def test_collect_folders_and_pattern_timestamps(tmp_path):
    course = Course.at(tmp_path / "course")
    shutil.copytree(SOLUTIONS / "toy", course.source("toy"))
    text = (SOLUTIONS / "toy" / "toy.ipynb").read_text()
    folder = tmp_path / "export" / "hw" / "alice"
    folder.mkdir(parents=True)
    (folder / "My toy homework.ipynb").write_text(text)
    (folder / "notes.txt").write_text("extra file")
    os.utime(folder / "My toy homework.ipynb", (1_700_000_000, 1_700_000_000))
    (tmp_path / "export" / "hw" / "dave").mkdir()
    (tmp_path / "export" / "hw" / "dave" / "toy.ipynb").write_text(text)
    collected, problems = collect(course, "toy", tmp_path / "export")
    assert problems == [] and [c.student for c in collected] == ["alice", "dave"]
    assert (course.submitted("alice", "toy") / "toy.ipynb").read_text() == text
    assert (course.submitted("alice", "toy") / "notes.txt").exists()
    moment = datetime.fromtimestamp(1_700_000_000, timezone.utc)
    assert (course.submitted("alice", "toy") / "timestamp.txt").read_text() == \
        moment.strftime("%Y-%m-%d %H:%M:%S.000000 UTC\n")

    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "erin-20240301T090000+0100.ipynb").write_text(text)
    (flat / "stray.txt").write_text("nobody's")
    collected, problems = collect(course, "toy", flat, pattern=r"^(?P<student>[a-z]+)-"
                                  r"(?P<timestamp>[0-9T+]+)\.ipynb$")
    assert [c.student for c in collected] == ["erin"] and "stray.txt" in problems[0]
    assert (course.submitted("erin", "toy") / "timestamp.txt").read_text() == \
        "2024-03-01 08:00:00.000000 UTC\n"


def test_metadata_repair_matches_by_source_name_and_position():
    release = nbformat.read(str(SOLUTIONS / "toy" / "toy.ipynb"), as_version=4)
    nb = nbformat.reads(nbformat.writes(release), as_version=4)
    for cell in nb.cells:
        cell.metadata = {}
    nb.cells[3].source = "def squares(n):\n    return [0] * n"  # found by the name it defines
    nb.cells[6].source = "print('no idea yet')"                  # found by position only
    nb.cells.insert(0, nbformat.v4.new_code_cell("print('my own scratch cell')"))
    repaired, missing = repair_metadata(nb, release)
    assert [contract.grade_id(c) for c in nb.cells] == [
        None, None, "setup", None, "squares", "test_squares", None, "word_count",
        "test_word_count", "test_word_count_2"]
    assert missing == [] and len(repaired) == 6
    assert "squares: metadata restored (matched by the name it defines)" in repaired
    assert "word_count: metadata restored (matched by position)" in repaired
    assert "test_word_count_2: metadata restored (matched by identical source)" in repaired
    assert nb.cells[5].metadata["nbgrader"] == cell_of(release, "test_squares").metadata["nbgrader"]

    again = nbformat.reads(nbformat.writes(nb), as_version=4)
    for cell in again.cells:
        cell.metadata = {}
    again.cells.insert(4, nbformat.v4.new_code_cell("def squares(n):\n    return []"))
    again.cells.insert(5, nbformat.v4.new_code_cell("x = 1"))
    _, missing = repair_metadata(again, release)
    assert missing == ["squares"]  # two cells define squares and the positions do not line up


# --- the students' self-check ----------------------------------------------------------
@pytest.mark.slow
def test_selfcheck_reports_per_exercise_and_exit_code(released, tmp_path, capsys):
    starter = released / "starter" / "toy" / "toy.ipynb"
    untouched = tmp_path / "untouched.ipynb"
    shutil.copyfile(starter, untouched)
    assert selfcheck.main([str(untouched)]) == 1
    out = capsys.readouterr().out
    assert "FAIL  squares" in out and "test_squares failed: NotImplementedError" in out

    course = Course.at(released / "course")
    stripped = submission(course, "solution")
    for cell in stripped.cells:
        cell.metadata = {}
    write_notebook(stripped, tmp_path / "Copy of toy.ipynb")
    report = selfcheck.run(tmp_path / "Copy of toy.ipynb", exercise="squares",
                           reference=starter)
    assert report["passed"] and list(report["exercises"]) == ["squares"]
    assert report["exercises"]["squares"]["tests"] == [
        {"cell": "test_squares", "passed": True, "message": None}]


def test_grading_notes_keep_every_reason_whole():
    """A judge's reason reaches the student whole, however long (it used to be cut at about
    200 characters, mid-sentence); only a runaway message is cut, and says so."""
    from arlab.grading.autograde import REASON_CHARS, _cell_reasons, whole
    from arlab.grading.preprocessors import error_output

    reason = ("a 2-layer stack: the output at pixel (3, 2) sees the columns [0, 1, 2, 3, 4] of "
              "row 1; with 2 layers of reach 1 it should see exactly columns 0..4 of every row "
              "from 0 to 2, and in its own row columns 0..1. " * 4).strip()
    assert 400 < len(reason) < REASON_CHARS
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("grade()")
    cell.outputs = [error_output("GradingError", reason)]
    nb.cells = [cell]
    (line,) = _cell_reasons(nb)
    assert line.endswith(reason) and "GradingError" in line
    runaway = "x " * REASON_CHARS
    cut = whole(runaway)
    assert len(cut) < len(runaway) and cut.endswith("more characters]")
