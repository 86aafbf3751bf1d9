"""Run the benchmarks and rewrite RESULTS.md and results.json.

    python -m benchmarks.run                      # every section, on this machine
    python -m benchmarks.run --only sampling      # one section; the others' numbers stay
    python -m benchmarks.run --quick              # tiny sizes: checks that it all runs
    python -m benchmarks.run --only mutation      # the grader's strength (long: named only)
    python -m benchmarks.run --only timed --workers 2   # quality at equal time (long)
    python -m benchmarks.run --only gpu --device cuda   # the GPU section (make bench-gpu)
"""
from __future__ import annotations

import argparse
import importlib

from benchmarks.common import command_line

SECTIONS = ("sampling", "quality", "throughput", "grading", "walkthrough", "pixelsnail",
            "widgets")
# too long for every run, or for a GPU only: run when --only names them
NAMED_ONLY = ("mutation", "timed", "gpu")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="arlab benchmarks")
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated sections of {SECTIONS}")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (seconds)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--no-save", action="store_true", help="print, do not record")
    parser.add_argument("--epochs", type=int, default=3, help="quality: training epochs")
    parser.add_argument("--datasets", default=None,
                        help="quality: comma-separated datasets (default mnist,shapes,digits)")
    parser.add_argument("--models", default=None, help="comma-separated image models")
    parser.add_argument("--workers", type=int, default=1,
                        help="timed: models trained at a time (threads shared among them)")
    parser.add_argument("--budgets", default="smoke",
                        help="walkthrough: budgets to run every notebook under ('none': only "
                             "record build/walkthrough/timings.json)")
    args = parser.parse_args(argv)
    for section in args.only.split(","):
        if section not in SECTIONS + NAMED_ONLY:
            parser.error(f"unknown section {section!r}; choose from "
                         f"{', '.join(SECTIONS + NAMED_ONLY)}")
        print(f"== {section}", flush=True)
        module = importlib.import_module(f"benchmarks.{section}")
        extra = {}
        if section == "quality":
            extra = {"epochs": args.epochs,
                     "data": args.datasets.split(",") if args.datasets else None}
        if section == "pixelsnail":
            extra = {"epochs": args.epochs}
        if section == "walkthrough":
            extra = {"budgets": tuple(b for b in args.budgets.split(",") if b != "none")}
        if section == "timed":
            extra = {"workers": args.workers}
        if args.models and section in ("quality", "throughput", "pixelsnail", "timed", "gpu"):
            extra["models"] = args.models.split(",")
        rec = module.main(quick=args.quick, device=args.device, command=command_line(argv),
                          **extra)
        if args.device != "cpu":
            rec.rename(f"{section}_{args.device}")
        if not args.no_save:
            rec.save()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
