"""``arlab-grade``: the instructor's workflow on nbgrader, one command per step.

    arlab-grade starter                                     # solutions/ -> starter/ (repo)
    arlab-grade release   hw1_foundations                   # source -> release + gradebook
    arlab-grade collect   hw1_foundations canvas.zip        # LMS download -> submitted/
    arlab-grade check     hw1_foundations                   # repair stripped metadata, report
    arlab-grade autograde hw1_foundations --workers 4       # every submission in a sandbox
    arlab-grade feedback  hw1_foundations                   # HTML per student, no hidden tests
    arlab-grade export    hw1_foundations --out grades.csv  # totals and points per exercise

Every command takes ``--course DIR`` (default ``./course``), an nbgrader course folder.
"""
from __future__ import annotations

import argparse
import os
import sys

from arlab.grading.course import Course, CourseError, format_points, format_table


def _release(args) -> int:
    from arlab.grading.release import describe, release

    notebooks = release(args.assignment, args.course, args.solutions, args.to, args.config)
    print(format_table(["notebook", "exercise", "points", "test cells"], describe(notebooks)))
    print(f"released {args.assignment} in {args.course.release(args.assignment)}"
          + (f" and {os.path.join(args.to, args.assignment)}" if args.to else ""))
    return 0


def _starter(args) -> int:
    from arlab.grading.release import generate_starter

    written = generate_starter(args.solutions, args.to, args.assignment or None, args.config)
    for path in written:
        print(f"wrote {path}")
    return 0


def _collect(args) -> int:
    from arlab.grading.collect import collect

    collected, problems = collect(args.course, args.assignment, args.download, args.pattern,
                                  args.timezone)
    rows = [[c.student, ", ".join(f"{n} <- {p}" for n, p in c.notebooks.items()) or "-",
             c.moment.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z") if c.moment else "-",
             "LATE" if c.late else "", "; ".join(c.notes)] for c in collected]
    print(format_table(["student", "notebooks", "submitted", "LMS", "notes"], rows))
    for problem in problems:
        print(f"problem: {problem}")
    print(f"collected {len(collected)} submissions into {args.course.root / 'submitted'}")
    return 1 if problems else 0


def _check(args) -> int:
    from arlab.grading.integrity import check, table

    results = check(args.course, args.assignment, args.student, write=not args.dry_run)
    print(table(results))
    repaired = sum(1 for rs in results.values() for r in rs if r.repaired)
    if repaired:
        print(f"{'would repair' if args.dry_run else 'repaired'} {repaired} notebooks"
              + ("" if args.dry_run else f" (originals in {args.course.root / 'backup/check'})"))
    return 0


def _autograde(args) -> int:
    from arlab.grading.autograde import Settings, autograde

    settings = Settings(workers=args.workers, wall_seconds=args.timeout, memory_mb=args.memory,
                        cell_timeout=args.cell_timeout)
    results = autograde(args.course, args.assignment, settings, students=args.student,
                        report=lambda line: print(line, flush=True))
    exercises = list(results[0].exercises) if results else []
    rows = [[r.student, f"{format_points(r.total)}/{format_points(r.max_total)}",
             *(format_points(r.exercises[e]) for e in exercises)] for r in results]
    print(format_table(["student", "points", *exercises], rows))
    for r in results:
        for reason in r.reasons:
            print(f"{r.student}: {reason}")
    for r in results:
        if r.review:
            print(f"REVIEW {r.student}: " + "; ".join(r.review))
    untrusted = sorted({c for r in results for c in r.untrusted})
    if untrusted:
        print(f"untrusted (scored in the student's kernel only): {', '.join(untrusted)}")
    return 0


def _feedback(args) -> int:
    from arlab.grading.reports import feedback

    pages = feedback(args.course, args.assignment, args.student)
    print(f"wrote {len(pages)} feedback pages under {args.course.root / 'feedback'}")
    return 0


def _export(args) -> int:
    from arlab.grading.reports import export

    rows = export(args.course, args.assignment, args.out)
    print(format_table(rows[0], rows[1:]))
    print(f"wrote {args.out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="arlab-grade", description="Grade arlab homework with nbgrader: release, collect, "
        "check, autograde, feedback, export.", epilog="Run `arlab-grade COMMAND --help` for "
        "a command's options; grader/README.md is the instructor's guide.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str, handler) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("assignment", help="assignment name, e.g. hw1_foundations")
        sub.add_argument("--course", type=Course.at, default=Course.at("course"),
                         help="the nbgrader course folder (default ./course)")
        sub.set_defaults(handler=handler)
        return sub

    sub = command("release", "copy solutions/<assignment> into the course, generate the "
                  "release notebooks and gradebook entries", _release)
    sub.add_argument("--solutions", default="solutions",
                     help="folder holding <assignment>/ with the source notebooks "
                          "(default ./solutions)")
    sub.add_argument("--to", help="also write the release notebooks to DIR/<assignment>/ "
                                  "(e.g. starter; notebooks there are replaced)")
    sub.add_argument("--config", help="nbgrader config to install in the course (default: "
                                      "keep the course's, else grader/nbgrader_config.py)")

    sub = commands.add_parser(
        "starter", help="regenerate starter/<assignment>/ from solutions/ (what the repository "
        "commits; no course needed)", description="Regenerate the release notebooks the "
        "repository commits under starter/, in a throwaway course; the output is deterministic.")
    sub.add_argument("assignment", nargs="*", help="assignments (default: every folder of "
                                                   "--solutions)")
    sub.add_argument("--solutions", default="solutions", help="default ./solutions")
    sub.add_argument("--to", default="starter", help="default ./starter")
    sub.add_argument("--config", help="nbgrader config (default grader/nbgrader_config.py)")
    sub.set_defaults(handler=_starter)

    sub = command("collect", "take an LMS download into submitted/<student>/<assignment>/",
                  _collect)
    sub.add_argument("download", help="the zip or folder downloaded from the LMS")
    sub.add_argument("--pattern", help="regex searched in each file's path, with a named group "
                                       "student (and optionally timestamp, notebook)")
    sub.add_argument("--timezone", help="zone of times that do not state one (zip entries, "
                                        "pattern timestamps): IANA name or +HH:MM; default: "
                                        "this computer's")

    sub = command("check", "compare submissions with the release; repair stripped metadata",
                  _check)
    sub.add_argument("--student", action="append", help="only this student (repeatable)")
    sub.add_argument("--dry-run", action="store_true", help="report only, change no file")

    sub = command("autograde", "grade every submission, each in its own sandboxed process",
                  _autograde)
    sub.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) // 2),
                     help="submissions graded in parallel (default: half the cores)")
    sub.add_argument("--timeout", type=float, default=1800,
                     help="wall-clock seconds for one submission, all cells (default 1800)")
    sub.add_argument("--memory", type=int, default=8192,
                     help="address-space limit of a kernel in MiB (default 8192; importing "
                          "torch alone reserves about 3.5 GiB; 0: none, e.g. with CUDA)")
    sub.add_argument("--cell-timeout", type=int,
                     help="seconds per cell (default: the config's, ARLAB_CELL_TIMEOUT or 300)")
    sub.add_argument("--student", action="append", help="only this student (repeatable)")

    sub = command("feedback", "write feedback HTML per student (hidden tests removed)",
                  _feedback)
    sub.add_argument("--student", action="append", help="only this student (repeatable)")

    sub = command("export", "write grades as CSV: student, assignment, total, max_total and "
                  "one column per exercise", _export)
    sub.add_argument("--out", default="grades.csv", help="CSV file to write (default grades.csv)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except CourseError as err:
        print(f"arlab-grade {args.command}: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"arlab-grade {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
