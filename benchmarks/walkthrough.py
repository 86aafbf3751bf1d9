"""The walkthrough: execution time of each notebook under each budget it was run with
(from ``build/walkthrough/timings.json``, which ``make walkthrough`` writes)."""
from __future__ import annotations

import json
from pathlib import Path

from benchmarks.common import Record

TIMINGS = Path(__file__).resolve().parents[1] / "build" / "walkthrough" / "timings.json"


def main(quick: bool = False, device: str = "cpu", command: str = "", run: bool = True,
         budget: str = "smoke") -> Record:
    if run and not quick:
        from arlab.walkthrough import main as walk

        walk(["--budget", budget, "--out", str(TIMINGS.parent)])
    rec = Record("walkthrough", command, "seconds to execute each notebook (nbclient) per budget")
    timings = json.loads(TIMINGS.read_text()) if TIMINGS.exists() else {}
    for used, notebooks in sorted(timings.items()):
        for stem, seconds in sorted(notebooks.items()):
            rec.add(f"{used}.{stem}", seconds, "s")
    return rec
