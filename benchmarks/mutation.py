"""The grader's strength: how many single-point mutants of each reference answer its hidden
tests kill.

    python -m benchmarks.mutation                      # all assignments; records the run
    python -m benchmarks.mutation --exercise MADE      # one exercise; prints only
    python -m benchmarks.mutation --assignment hw1_foundations --limit 5

Every mutant of an answer cell (see :mod:`benchmarks.mutation_gen`) runs with the exercise's
graded parts (:mod:`benchmarks.mutation_exec`); the unmutated reference runs first as the
control and must pass, or the exercise is reported as a broken baseline and not counted. A
survivor listed in :mod:`benchmarks.mutation_equivalent` cannot change behaviour: it leaves the
denominator and is reported apart. The rest are the hidden tests' weaknesses. The few mutants
of :mod:`benchmarks.mutation_hand` are judged too and reported apart (not in the kill rate).
"""
from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from arlab.grading import homework
from benchmarks.common import Record, command_line, fmt, table
from benchmarks.mutation_equivalent import EQUIVALENT
from benchmarks.mutation_exec import ROOT, Verdict, judge, visible_tests, walk
from benchmarks.mutation_gen import Mutant, by_hand, mutants
from benchmarks.mutation_hand import HAND

ASSIGNMENTS = tuple(homework.ASSIGNMENTS)  # the registry's assignments, in its order
TIMEOUT = 60.0        # seconds per mutant under ARLAB_BUDGET=smoke
SLACK = 4.0           # ... and at least this many times the control's time (a loaded machine)
DETAIL = ROOT / "build" / "mutation.json"


@dataclass
class ExerciseRun:
    assignment: str
    exercise: str
    control: Verdict
    mutants: list[Mutant] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    visible: dict[int, Verdict] = field(default_factory=dict)  # survivor -> visible tests

    def caught(self, m: Mutant) -> str:
        """Whether the test cells' visible code kills a survivor (where the hidden tests are
        laxer than what the student sees)."""
        v = self.visible.get(self.mutants.index(m))
        return "not run" if v is None else f"visible {v.by} kills it" if v.killed else \
            "visible tests miss it too"

    def equivalent(self, m: Mutant) -> str | None:
        return EQUIVALENT.get((self.exercise, m.before, m.after))

    def judged(self, hand: bool = False) -> list[tuple[Mutant, Verdict]]:
        """The single-point mutants with their verdicts (``hand``: the hand-made ones)."""
        return [(m, v) for m, v in zip(self.mutants, self.verdicts)
                if (m.kind == "hand") == hand]

    def counts(self) -> dict[str, int]:
        judged = self.judged()
        alive = [m for m, v in judged if not v.killed]
        equivalent = sum(self.equivalent(m) is not None for m in alive)
        return {"mutants": len(judged), "killed": len(judged) - len(alive),
                "equivalent": equivalent, "survivors": len(alive) - equivalent}

    def survivors(self, equivalent: bool = False) -> list[Mutant]:
        return [m for m, v in self.judged()
                if not v.killed and (self.equivalent(m) is not None) == equivalent]


def run(assignments: tuple[str, ...] = ASSIGNMENTS, exercise: str | None = None,
        limit: int | None = None, workers: int = 1, timeout: float = TIMEOUT,
        log: Callable[[str], None] = print) -> list[ExerciseRun]:
    """The control and every mutant of each exercise (``limit``: the first N mutants)."""
    import torch

    os.environ.setdefault("ARLAB_BUDGET", "smoke")
    os.environ.setdefault("MPLBACKEND", "Agg")
    torch.set_num_threads(1)
    runs = []
    for assignment in assignments:
        chosen = {exercise} if exercise else None
        for name, answer, tests, ns in walk(assignment, chosen, log):
            start = time.perf_counter()
            (control,) = judge(ns, [answer], tests, timeout * SLACK, workers=1)
            hand, stale = by_hand(answer, [(b, a) for ex, b, a in HAND if ex == name])
            for line in stale:
                log(f"{name}: the hand-made mutant of `{line}` no longer applies")
            found = (mutants(answer) + hand)[:limit]
            rec = ExerciseRun(assignment, name, control, found)
            if control.killed:
                log(f"{name}: BROKEN BASELINE: {control.by}: {control.reason}")
            else:
                budget = max(timeout, SLACK * control.seconds)
                rec.verdicts = judge(ns, [m.source for m in found], tests, budget, workers)
                alive = [k for k, v in enumerate(rec.verdicts) if not v.killed]
                seen = judge(ns, [found[k].source for k in alive], tests, budget, workers,
                             visible=visible_tests(assignment))
                rec.visible = dict(zip(alive, seen))
                c = rec.counts()
                log(f"{name}: {c['killed']}/{c['mutants']} killed, {c['equivalent']} "
                    f"equivalent, {c['survivors']} survivors "
                    f"({time.perf_counter() - start:.0f} s; control {control.seconds:.1f} s)")
                for m in rec.survivors():
                    log(f"    survives line {m.line}: {m.before}  ->  {m.after} "
                        f"({rec.caught(m)})")
                for m, v in rec.judged(hand=True):
                    log(f"    hand-made, {'killed' if v.killed else 'SURVIVES'}: "
                        f"{m.before}  ->  {m.after}"
                        + ("" if v.killed else f" ({rec.caught(m)})"))
            runs.append(rec)
    return runs


def _rate(killed: int, counted: int) -> float:
    return 100.0 * killed / counted if counted else 100.0


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def record(runs: list[ExerciseRun], seconds: float, workers: int, command: str,
           timeout: float = TIMEOUT) -> Record:
    notes = (f"machine shared with other jobs; ARLAB_BUDGET={os.environ.get('ARLAB_BUDGET')}, "
             f"{workers} worker(s), 1 thread, {timeout:.0f} s per mutant (at least {SLACK:g}x the "
             f"control); hidden tests only "
             "(each test cell's graded part); equivalents from benchmarks/mutation_equivalent.py; "
             "hand-made mutants (benchmarks/mutation_hand.py) apart, 1 = killed")
    rec = Record("mutation", command, notes=notes)
    total = {"mutants": 0, "killed": 0, "equivalent": 0, "survivors": 0}
    for r in runs:
        if r.control.killed:
            rec.add(f"{r.exercise}.broken_baseline", 1, "", _md(f"{r.control.by}: "
                                                                f"{r.control.reason}"))
            continue
        c = r.counts()
        total = {k: total[k] + c[k] for k in total}
        rec.add(f"{r.exercise}.kill_rate", _rate(c["killed"], c["mutants"] - c["equivalent"]),
                "%", f"{c['killed']} of {c['mutants']} killed, {c['equivalent']} equivalent, "
                     f"{c['survivors']} survive ({r.assignment})")
        for k, m in enumerate(r.survivors(), 1):
            rec.add(f"survivor.{r.exercise}.{k:02d}", m.line, "line",
                    _md(f"`{m.before}` → `{m.after}` ({r.caught(m)})"))
        for k, m in enumerate(r.survivors(equivalent=True), 1):
            rec.add(f"equivalent.{r.exercise}.{k:02d}", m.line, "line",
                    _md(f"`{m.before}` → `{m.after}`: {r.equivalent(m)}"))
        for k, (m, v) in enumerate(r.judged(hand=True), 1):
            rec.add(f"hand.{r.exercise}.{k:02d}", float(v.killed), "killed",
                    _md(f"line {m.line}: `{m.before}` → `{m.after}`"
                        + ("" if v.killed else f" ({r.caught(m)})")))
    rec.add("kill_rate", _rate(total["killed"], total["mutants"] - total["equivalent"]), "%",
            "killed / (mutants - equivalent), every counted exercise")
    for key in ("mutants", "killed", "equivalent", "survivors"):
        rec.add(key, total[key], "", "")
    rec.add("seconds", seconds, "s", "wall time of the whole run")
    return rec


def summarize(section: str, values: dict) -> list[str]:
    """Kill rate per exercise, by assignment, then all together."""
    rows = []
    for key, v in values.items():
        name = key[len(section) + 1:]
        if name.endswith(".kill_rate"):
            assignment = v["note"].rsplit("(", 1)[-1].rstrip(")")
            rows.append([assignment, f"`{name[:-len('.kill_rate')]}`", fmt(v["value"], 3),
                         v["note"].rsplit(" (", 1)[0]])
    rows.sort(key=lambda row: row[0])
    overall = values.get(f"{section}.kill_rate")
    if overall:
        counts = {k: values.get(f"{section}.{k}", {}).get("value", 0)
                  for k in ("mutants", "killed", "equivalent", "survivors")}
        rows.append(["**all**", "", f"**{fmt(overall['value'], 3)}**",
                     "{killed:.0f} of {mutants:.0f} killed, {equivalent:.0f} equivalent, "
                     "{survivors:.0f} survive".format(**counts)])
    return table(["assignment", "exercise", "kill rate (%)", "mutants"], rows)


def _save_detail(runs: list[ExerciseRun], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    detail = [{"assignment": r.assignment, "exercise": r.exercise,
               "control": asdict(r.control),
               "mutants": [{**{k: v for k, v in asdict(m).items() if k != "source"},
                            **asdict(v), "equivalent": r.equivalent(m),
                            "visible": None if v.killed else r.caught(m)}
                           for m, v in zip(r.mutants, r.verdicts)]} for r in runs]
    path.write_text(json.dumps(detail, indent=1) + "\n")


def main(quick: bool = False, device: str = "cpu", command: str = "") -> Record:
    """The ``mutation`` section of ``python -m benchmarks.run`` (``quick``: one exercise)."""
    start = time.perf_counter()
    runs = run(("hw1_foundations",), "bits_per_dim") if quick else run()
    return record(runs, time.perf_counter() - start, 1, command)


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.mutation",
                                     description="mutation run of the hidden tests")
    parser.add_argument("--assignment", choices=ASSIGNMENTS, help="one assignment")
    parser.add_argument("--exercise", help="one exercise (looked for in every assignment)")
    parser.add_argument("--limit", type=int, help="the first N mutants of each exercise")
    parser.add_argument("--workers", type=int, default=1, help="children at a time (1)")
    parser.add_argument("--timeout", type=float, default=TIMEOUT, help="seconds per mutant")
    parser.add_argument("--no-save", action="store_true", help="do not record a full run")
    parser.add_argument("--out", type=Path, default=DETAIL, help="every verdict, as JSON")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    assignments = (args.assignment,) if args.assignment else ASSIGNMENTS
    runs = run(assignments, args.exercise, args.limit, args.workers, args.timeout)
    seconds = time.perf_counter() - start
    _save_detail(runs, args.out)
    rec = record(runs, seconds, args.workers,
                 command_line(argv).replace("benchmarks.run", "benchmarks.mutation"),
                 args.timeout)
    partial = args.assignment or args.exercise or args.limit is not None
    if not (partial or args.no_save):
        rec.save()
    c = rec.values
    print(f"kill rate {c['mutation.kill_rate']['value']:.1f} % "
          f"({c['mutation.killed']['value']:.0f} killed of {c['mutation.mutants']['value']:.0f},"
          f" {c['mutation.equivalent']['value']:.0f} equivalent, "
          f"{c['mutation.survivors']['value']:.0f} survive) in {seconds:.0f} s; "
          f"{'recorded' if not (partial or args.no_save) else 'not recorded'}; "
          f"every verdict in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(cli())
