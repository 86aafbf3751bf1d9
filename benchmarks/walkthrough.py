"""The walkthrough: execution time of each notebook under each budget it was run with
(from ``build/walkthrough/timings.json``, which ``make walkthrough`` also writes).

``--budgets smoke,cpu`` runs every notebook under each budget first; ``--budgets none`` only
records what ``timings.json`` already holds (e.g. after
``python -m arlab.walkthrough --budget cpu notebooks/01_*.ipynb``)."""
from __future__ import annotations

import json
from pathlib import Path

from benchmarks.common import Record, fmt, table

TIMINGS = Path(__file__).resolve().parents[1] / "build" / "walkthrough" / "timings.json"


def main(quick: bool = False, device: str = "cpu", command: str = "",
         budgets: tuple[str, ...] = ("smoke",)) -> Record:
    if not quick:
        from arlab.walkthrough import main as walk

        for budget in budgets:
            walk(["--budget", budget, "--out", str(TIMINGS.parent)])
    rec = Record("walkthrough", command,
                 f"seconds to execute each notebook (nbclient, fresh kernel) per budget, on "
                 f"{device}")
    timings = json.loads(TIMINGS.read_text()) if TIMINGS.exists() else {}
    for used, notebooks in sorted(timings.items()):
        for stem, seconds in sorted(notebooks.items()):
            rec.add(f"{used}.{stem}", seconds, "s")
    return rec


def summarize(section: str, values: dict) -> list[str]:
    """Seconds per notebook (rows) and budget (columns), with the total."""
    cells = {tuple(k[len(section) + 1:].split(".", 1)): v["value"] for k, v in values.items()}
    budgets = [b for b in ("smoke", "cpu", "gpu") if any(k[0] == b for k in cells)]
    stems = sorted({k[1] for k in cells})
    rows = [[stem] + [fmt(cells.get((b, stem)), 3) for b in budgets] for stem in stems]
    rows.append(["**total**"] + [fmt(sum(v for (b, _), v in cells.items() if b == budget), 4)
                                 for budget in budgets])
    return table(["notebook", *(f"{b} (s)" for b in budgets)], rows)
