"""The instructor's course folder (an nbgrader course root) and what every command shares:
finding and loading the nbgrader config, running an nbgrader converter, reading and writing
notebooks deterministically, printing tables.

Layout: ``source/<a>/`` (copied from the repo's ``solutions/``), ``release/<a>/``,
``submitted/<student>/<a>/``, ``autograded/``, ``feedback/``, ``gradebook.db`` and
``nbgrader_config.py`` (copied from the repo's ``grader/``).
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import nbformat

CONFIG_NAME = "nbgrader_config.py"


class CourseError(Exception):
    """A problem the instructor can fix; the message says what to do."""


@dataclass(frozen=True)
class Course:
    root: Path

    @classmethod
    def at(cls, root: str | Path) -> Course:
        return cls(Path(root).expanduser().resolve())

    @property
    def config(self) -> Path:
        return self.root / CONFIG_NAME

    @property
    def gradebook(self) -> Path:
        return self.root / "gradebook.db"

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.gradebook}"

    def source(self, assignment: str) -> Path:
        return self.root / "source" / assignment

    def release(self, assignment: str) -> Path:
        return self.root / "release" / assignment

    def submitted(self, student: str, assignment: str) -> Path:
        return self.root / "submitted" / student / assignment

    def autograded(self, student: str, assignment: str) -> Path:
        return self.root / "autograded" / student / assignment

    def feedback(self, student: str, assignment: str) -> Path:
        return self.root / "feedback" / student / assignment

    def notebooks(self, assignment: str) -> list[str]:
        """The assignment's notebook names (without .ipynb), from its source folder."""
        folder = self.source(assignment)
        names = sorted(p.stem for p in folder.glob("*.ipynb")) if folder.is_dir() else []
        if not names:
            raise CourseError(
                f"no notebooks in {folder}; run `arlab-grade release {assignment} --course "
                f"{self.root}` first (it copies solutions/{assignment} there).")
        return names

    def require_released(self, assignment: str) -> None:
        self.notebooks(assignment)
        if not self.gradebook.exists() or not self.release(assignment).is_dir():
            raise CourseError(
                f"{assignment} is not released in {self.root}; run `arlab-grade release "
                f"{assignment} --course {self.root}` first.")

    def students(self, assignment: str) -> list[str]:
        """Students with a submission folder for the assignment, sorted."""
        base = self.root / "submitted"
        if not base.is_dir():
            return []
        return sorted(p.name for p in base.iterdir() if (p / assignment).is_dir())


def find_grader_config(explicit: str | Path | None = None) -> Path:
    """The repo's ``grader/nbgrader_config.py``: ``explicit``, else ``./grader/``, else next to
    the arlab sources (an editable install of the repository)."""
    candidates = [Path(explicit)] if explicit else [Path.cwd() / "grader" / CONFIG_NAME]
    if not explicit:
        spec = importlib.util.find_spec("arlab")
        if spec is not None and spec.origin:
            candidates.append(Path(spec.origin).resolve().parents[2] / "grader" / CONFIG_NAME)
    for path in candidates:
        if path.is_file():
            return path
    raise CourseError(
        f"cannot find the nbgrader config (looked at {', '.join(map(str, candidates))}); pass "
        "--config PATH to the grader/nbgrader_config.py of the arlab repository.")


def install_config(course: Course, explicit: str | Path | None = None) -> Path:
    """Copy the grader config into the course unless it has one (``explicit`` replaces it)."""
    course.root.mkdir(parents=True, exist_ok=True)
    if explicit or not course.config.exists():
        shutil.copyfile(find_grader_config(explicit), course.config)
    return course.config


def load_config(course: Course):
    """The course's nbgrader config as a traitlets ``Config`` (only the course's file is read,
    so a personal ~/.jupyter config cannot change how grades come out)."""
    from traitlets.config.loader import PyFileConfigLoader

    if not course.config.exists():
        raise CourseError(f"{course.config} is missing; run `arlab-grade release ASSIGNMENT "
                           f"--course {course.root}` (it installs the config), or copy "
                           "grader/nbgrader_config.py there.")
    return PyFileConfigLoader(CONFIG_NAME, path=str(course.root)).load_config()


def ensure_tools_on_path() -> None:
    """nbgrader runs the ``alembic`` script when it creates a gradebook; make this
    interpreter's scripts folder findable even when the virtual environment is not active."""
    scripts = str(Path(sys.executable).parent)
    if scripts not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = scripts + os.pathsep + os.environ.get("PATH", "")


def run_converter(converter_cls, course: Course, assignment: str, student: str | None = None,
                  **attributes) -> str:
    """Run one nbgrader converter (GenerateAssignment, Autograde, GenerateFeedback) on the
    course in this process; returns its log, raises CourseError with the log's tail."""
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.utils import capture_log

    ensure_tools_on_path()
    config = load_config(course)
    coursedir = CourseDirectory(config=config, root=str(course.root))
    coursedir.assignment_id = assignment
    if student:
        coursedir.student_id = student
    converter = converter_cls(coursedir=coursedir, config=config)
    for name, value in attributes.items():
        setattr(converter, name, value)
    result = capture_log(converter)
    log = result.get("log", "")
    if not result["success"]:
        tail = "\n".join((log + "\n" + result.get("error", "")).strip().splitlines()[-25:])
        raise CourseError(f"nbgrader {converter_cls.__name__} failed for {assignment}:\n{tail}\n"
                           "Fix the notebook or setting the log names, then run the command "
                           "again.")
    return log


def read_notebook(path: str | Path):
    return nbformat.read(str(path), as_version=4)


def write_notebook(nb, path: str | Path) -> None:
    """nbformat's own layout (1-space indent, sorted keys) and a final newline."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = nbformat.writes(nb)
    path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")


def nbgrader_timestamp(moment: datetime) -> str:
    """A submission time as nbgrader's timestamp.txt holds it (UTC, named)."""
    if moment.tzinfo is None:
        raise ValueError("a submission time must know its time zone")
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f UTC")


def format_points(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def format_table(headers: list[str], rows: list[list[object]]) -> str:
    """A plain-text table, columns padded to their widest cell."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def copy_tree_files(src: Path, dest: Path, skip_suffix: str | None = None) -> None:
    """Copy the regular files under ``src`` (links are skipped: a submission could point one
    at a file outside its folder)."""
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]
        for name in filenames:
            path = Path(dirpath) / name
            if path.is_symlink() or (skip_suffix and name.endswith(skip_suffix)):
                continue
            target = dest / path.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
