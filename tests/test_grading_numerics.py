"""Grades do not depend on the machine: the course's solutions earn every point when the
float32 kernels change under them (two threads instead of one, oneDNN off, the dependence
engine's batches cut at another size, so every probe's rows sit at other batch positions), and
in a process whose kernels are those another CPU would run (ATen's portable kernels, MKL's
compatible GEMM, oneDNN at SSE4.1).

``make test`` runs everything else with one thread and oneDNN on; a judgement that compared
recomputed floats bit for bit would fail here (as the attention judge once did on one CPU)."""
from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import os
import subprocess
import sys

import pytest
import torch

import arlab.receptive
from arlab.grading import contract
from homework_e2e import code, load

ASSIGNMENTS = ["hw1_foundations", "hw2_masked_models", "hw3_pixel_models"]


def grade_solution(assignment: str) -> None:
    """Run the course's solution of ``assignment`` with its test cells; every part passes."""
    h = load(assignment)
    ns: dict = {"__name__": "__main__"}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        for gid, cell in h.cells.items():  # test cells too: each raises if it fails
            exec(compile(code(cell.source), f"<cell {gid}>", "exec"), ns)
    for cell in h.our_cells:
        assert f"{cell}: passed" in printed.getvalue(), cell
    assert all(contract.is_test(h.cells[c]) for c in h.our_cells)


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solutions_earn_every_point_under_other_numerics(assignment, monkeypatch):
    monkeypatch.setattr(arlab.receptive, "_CHUNK", 5)
    monkeypatch.setattr(torch.backends.mkldnn, "enabled", False)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        grade_solution(assignment)
    finally:
        torch.set_num_threads(threads)


# Settings that swap the float32 kernels the way another CPU would: ATen's portable kernels
# instead of the AVX2/AVX-512 ones, MKL's GEMM in its compatible code path, oneDNN's
# convolutions limited to SSE4.1, two threads. Each changes the last bits of real results.
OTHER_KERNELS = {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE",
                 "ONEDNN_MAX_CPU_ISA": "SSE41", "OMP_NUM_THREADS": "2"}


def kernel_fingerprint() -> str:
    """A hash of float32 results (a matrix product, a convolution, a softmax) that any of the
    settings above changes: proof that the run below really used other kernels."""
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(257, 300, generator=g), torch.randn(300, 129, generator=g)
    x, w = torch.randn(8, 16, 28, 28, generator=g), torch.randn(32, 16, 3, 3, generator=g)
    s = torch.randn(64, 1000, generator=g)
    outs = (a @ b, torch.nn.functional.conv2d(x, w, padding=1), torch.softmax(s, -1))
    return hashlib.sha256(b"".join(t.numpy().tobytes() for t in outs)).hexdigest()


@functools.cache
def fingerprints() -> tuple[str, str]:
    """The kernel fingerprint in a process with this machine's own kernels and in one with
    the settings above (both fresh: the settings act when torch loads)."""
    native = {k: v for k, v in os.environ.items() if k not in OTHER_KERNELS}

    def child(env: dict) -> str:
        return subprocess.run([sys.executable, __file__, "--fingerprint"], env=env, check=True,
                              capture_output=True, text=True, timeout=300).stdout.strip()

    return child(native), child({**native, **OTHER_KERNELS})


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solutions_earn_every_point_on_other_kernels(assignment):
    native, other = fingerprints()
    if native == other:
        pytest.skip("on this machine the settings change no kernel (its own are the portable "
                    "ones already)")
    env = {**os.environ, **OTHER_KERNELS}
    run = subprocess.run([sys.executable, __file__, assignment], env=env, capture_output=True,
                         text=True, timeout=1800)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    assert "graded on the kernels DEFAULT" in run.stdout


if __name__ == "__main__":   # the child processes of the two functions above
    if sys.argv[1] == "--fingerprint":
        print(kernel_fingerprint())
    else:
        print(f"graded on the kernels {torch.backends.cpu.get_cpu_capability()}")
        grade_solution(sys.argv[1])
