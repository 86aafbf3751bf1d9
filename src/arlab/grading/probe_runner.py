"""The black-box half of trusted grading, run INSIDE the sandbox (it runs student code).

Normally the probes run in the graded kernel itself, in a last cell the grader adds after the
notebook (:func:`in_kernel`): the kernel already holds the student's definitions, so nothing is
run twice. When that kernel did not get there (it died, or a cell could not be stopped), a
fresh sandboxed run does it again from the cells: ``python -m arlab.grading.probe_runner
SPEC.json``.

The spec (written by the trusted parent) lists the code cells to run, in order: the
submission's answers and added cells, and the read-only given cells as the SOURCE has them;
no test cell. They run in an IPython shell (magics work; ``!`` lines are skipped), each cell's
error is caught and the run goes on, as nbgrader would. Then every part's ``probe`` runs on
the notebook namespace through :func:`arlab.grading.parts.run_probe`, each under its own
time limit, each failure caught separately. Written to ``out``: ``arrays.npz`` (keys
``<test cell>::<name>``, numbers only) and ``errors.json`` (test cell -> message). The
student's prints go nowhere: nothing printed here is read.
"""
from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

SEP = "::"


class _TimeUp(Exception):
    pass


def _alarm(seconds: int) -> None:
    def ring(signum, frame):
        raise _TimeUp(f"took longer than {seconds} s")

    signal.signal(signal.SIGALRM, ring)
    signal.alarm(seconds)


def _without_shell_lines(source: str) -> str:
    """``!cmd`` lines (installs in Colab) become ``pass``: nothing to fetch here."""
    return "\n".join(line[:len(line) - len(line.lstrip())] + "pass"
                     if line.lstrip().startswith("!") else line for line in source.splitlines())


def collect(ns: dict, parts: list[str], out: Path, timeout: int) -> None:
    """Run the probe of every test cell in ``parts`` on the namespace ``ns``, each under its
    own time limit and failing on its own, and write ``arrays.npz`` and ``errors.json`` to
    ``out``. Used here and, at the end of the graded notebook, in the graded kernel."""
    import numpy as np

    from arlab.grading.homework import PARTS
    from arlab.grading.parts import run_probe

    arrays, errors = {}, {}
    for cell in parts:
        try:
            _alarm(timeout)
            found = run_probe(PARTS[cell], ns)
            signal.alarm(0)
            arrays.update({f"{cell}{SEP}{key}": value for key, value in found.items()})
        except BaseException as err:  # noqa: BLE001 - each part fails on its own
            signal.alarm(0)
            text = str(err) if type(err).__name__ == "GradingError" else \
                f"{type(err).__name__}: {err}"
            errors[cell] = text[:4000]
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "arrays.npz", **arrays)
    (out / "errors.json").write_text(json.dumps(errors))


def in_kernel(ns: dict, spec_path: str, notebook: str) -> None:
    """The extra last cell of a graded notebook (see
    :class:`arlab.grading.preprocessors.GuardedExecute`): the probes of ``notebook``'s parts,
    on the namespace the graded run left."""
    spec = json.loads(Path(spec_path).read_text())[notebook]
    collect(ns, spec["parts"], Path(spec["out"]), int(spec.get("cell_timeout") or 300))


def main(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    sink = open(os.devnull, "w")
    sys.stdout = sys.stderr = sink
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    timeout = int(spec.get("cell_timeout") or 300)
    for source in spec["cells"]:
        try:
            _alarm(timeout)
            shell.run_cell(_without_shell_lines(source), store_history=False, silent=True)
        except BaseException:  # noqa: BLE001 - the student's error: the next cell still runs
            pass
        finally:
            signal.alarm(0)
        sys.stdout = sys.stderr = sink
    collect(shell.user_ns, spec["parts"], Path(spec["out"]), timeout)
    sink.flush()
    os._exit(0)  # no atexit hooks of the student's after the results are written


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
