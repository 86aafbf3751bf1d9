"""``arlab-grade release``: source notebooks -> nbgrader release notebooks (+ gradebook
entries), and :func:`generate_starter`, which rebuilds the repo's ``starter/`` from
``solutions/`` the same way, byte for byte."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from arlab.grading import contract
from arlab.grading.course import (Course, CourseError, copy_tree_files, find_grader_config,
                                  install_config, read_notebook, run_converter, write_notebook)


def normalize_release(nb):
    """Make a release notebook deterministic: no outputs, no execution counts or timing
    metadata, and a stable id on every cell (nbformat >= 4.5 wants ids)."""
    with_ids = (nb.nbformat, nb.nbformat_minor) >= (4, 5)
    seen: set[str] = set()
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.metadata.pop("execution", None)
        if with_ids:
            if not cell.get("id") or cell.id in seen:
                cell.id = f"cell-{index}"
            seen.add(cell.id)
    return nb


def export_release(course: Course, assignment: str, out_dir: str | Path) -> list[Path]:
    """Write the course's release of ``assignment`` to ``out_dir/<assignment>/`` (notebooks
    normalised, other files copied); older notebooks there are replaced."""
    src = course.release(assignment)
    dest = Path(out_dir) / assignment
    dest.mkdir(parents=True, exist_ok=True)
    for old in dest.glob("*.ipynb"):
        old.unlink()
    copy_tree_files(src, dest, skip_suffix=".ipynb")
    written = []
    for path in sorted(src.glob("*.ipynb")):
        write_notebook(normalize_release(read_notebook(path)), dest / path.name)
        written.append(dest / path.name)
    return written


def _copy_source(solutions_dir: Path, course: Course, assignment: str) -> None:
    src = solutions_dir / assignment
    if not any(src.glob("*.ipynb")):
        raise CourseError(f"no source notebooks in {src}; --solutions must be the folder that "
                           f"holds {assignment}/ (the repo's solutions/).")
    dest = course.source(assignment)
    if dest.exists():
        shutil.rmtree(dest)
    copy_tree_files(src, dest)


def release(assignment: str, course: Course, solutions_dir: str | Path,
            to: str | Path | None = None, config: str | Path | None = None) -> list[Path]:
    """Copy ``solutions/<assignment>`` into the course's ``source/``, run nbgrader's
    generate_assignment (release notebooks + gradebook entries), and, with ``to``, export the
    release notebooks there. Returns the release notebooks."""
    if not any((Path(solutions_dir) / assignment).glob("*.ipynb")):
        _copy_source(Path(solutions_dir), course, assignment)  # raises, saying what to pass
    install_config(course, config)
    _copy_source(Path(solutions_dir), course, assignment)
    from nbgrader.converters import GenerateAssignment

    run_converter(GenerateAssignment, course, assignment, force=True, create_assignment=True)
    if to is not None:
        export_release(course, assignment, to)
    return sorted(course.release(assignment).glob("*.ipynb"))


def generate_starter(solutions_dir: str | Path, out_dir: str | Path,
                     assignments: list[str] | None = None,
                     config: str | Path | None = None) -> list[Path]:
    """Regenerate starter notebooks from source notebooks in a throwaway course:
    ``out_dir/<assignment>/<notebook>.ipynb`` for every assignment folder of
    ``solutions_dir`` (or the ones named). Deterministic: equal inputs give equal bytes."""
    solutions_dir = Path(solutions_dir)
    names = assignments or sorted(d.name for d in solutions_dir.iterdir()
                                  if d.is_dir() and any(d.glob("*.ipynb")))
    if config is None:
        near = solutions_dir.resolve().parent / "grader" / "nbgrader_config.py"
        config = near if near.is_file() else find_grader_config()
    written: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="arlab-starter-") as tmp:
        course = Course.at(tmp)
        install_config(course, config)
        from nbgrader.converters import GenerateAssignment

        for name in names:
            _copy_source(solutions_dir, course, name)
            run_converter(GenerateAssignment, course, name, force=True, create_assignment=True)
            written += export_release(course, name, out_dir)
    return written


def describe(notebooks: list[Path]) -> list[list[object]]:
    """Rows (notebook, exercise, points, test cells) for the release summary."""
    rows: list[list[object]] = []
    for path in notebooks:
        nb = read_notebook(path)
        points = {contract.grade_id(c): float(contract.nbgrader_meta(c).get("points", 0))
                  for c in nb.cells if contract.is_test(c)}
        for name, tests in contract.exercises(nb.cells).items():
            rows.append([path.stem, name, f"{sum(points[t] for t in tests):g}", ", ".join(tests)])
    return rows
