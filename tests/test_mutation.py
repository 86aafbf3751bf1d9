"""The mutation run works: it makes exactly the mutants it promises, the reference passes its
hidden tests, a wrong answer is killed, and a hanging or dying answer counts as killed."""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.mutation import run  # noqa: E402
from benchmarks.mutation_exec import judge, walk  # noqa: E402
from benchmarks.mutation_gen import mutants  # noqa: E402

TINY = '''def f(x: int, n: int = 2, flag: bool = True) -> int:
    """1 < 2 and 3 + 4 in a docstring."""
    if x < n and flag:
        return x * 2
    if x is None:
        raise ValueError(f"x - 1 = {x - 1}")
    return -x
'''


def test_the_mutants_of_a_tiny_function_are_exactly_these():
    got = [(m.line, m.kind, m.after) for m in mutants(TINY)]
    signature = "def f(x: int, n: int = {}, flag: bool = {}) -> int:"
    expected = [
        (1, "int", signature.format(1, True)), (1, "int", signature.format(3, True)),
        (1, "minus", signature.format(-2, True)), (1, "default", signature.format(2, False)),
        (3, "bool", "if x < n or flag:"), (3, "compare", "if x <= n and flag:"),
        (3, "compare", "if x >= n and flag:"), (3, "minus", "if -x < n and flag:"),
        (3, "minus", "if x < -n and flag:"),
        (4, "arith", "return x / 2"), (4, "minus", "return -x * 2"),
        (4, "int", "return x * 1"), (4, "int", "return x * 3"), (4, "minus", "return x * -2"),
        (5, "compare", "if x is not None:"),
        (7, "minus", "return x")]
    assert sorted(got) == sorted(expected)
    sources = [m.source for m in mutants(TINY)]
    assert len(set(sources)) == len(sources) and ast.unparse(ast.parse(TINY)) not in sources
    for source in sources:
        compile(source, "<mutant>", "exec")


@pytest.fixture(scope="module")
def bits_per_dim_run():
    return run(("hw1_foundations",), "bits_per_dim", log=lambda line: None)


def test_the_reference_passes_and_a_wrong_log_base_is_killed(bits_per_dim_run):
    (result,) = bits_per_dim_run
    assert not result.control.killed, result.control.reason
    verdicts = {m.after: v for m, v in zip(result.mutants, result.verdicts)}
    wrong_base = "return float(nll_nats.double().mean()) / num_dims / math.log(3)"
    assert verdicts[wrong_base].killed and verdicts[wrong_base].by == "test_bits_per_dim"
    assert all(v.killed for v in verdicts.values())


def test_a_hanging_or_dying_answer_is_killed():
    _, _, tests, ns = next(walk("hw1_foundations", {"bits_per_dim"}, print))
    hangs = "def bits_per_dim(nll_nats, num_dims):\n    while True:\n        pass\n"
    dies = "import os\nos._exit(3)\n"
    hang, death = judge(ns, [hangs, dies], tests, timeout=2.0, workers=2)
    assert hang.killed and hang.by == "timeout"
    assert death.killed and death.by == "crash"
