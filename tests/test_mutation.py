"""The mutation run works: it makes exactly the mutants it promises, the reference passes its
hidden tests, a wrong answer is killed, and a hanging or dying answer counts as killed."""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from arlab.grading import contract  # noqa: E402
from benchmarks.mutation import ASSIGNMENTS  # noqa: E402
from benchmarks.mutation_equivalent import EQUIVALENT  # noqa: E402
from benchmarks.mutation_exec import judge, notebook, visible_tests, walk  # noqa: E402
from benchmarks.mutation_gen import by_hand, mutants  # noqa: E402
from benchmarks.mutation_hand import HAND  # noqa: E402

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


def test_a_hand_made_edit_replaces_its_line_and_a_stale_one_is_named():
    found, stale = by_hand(TINY, [("return -x", "return x + 0"), ("return y", "return -y")])
    assert [(m.line, m.after, m.kind) for m in found] == [(7, "return x + 0", "hand")]
    assert found[0].source.splitlines()[6] == "    return x + 0" and stale == ["return y"]


def test_the_tables_name_mutants_of_todays_answers():
    """Every equivalent mutant is one the generator makes, every hand edit applies."""
    answers = {contract.grade_id(c): c.source for hw in ASSIGNMENTS for c in notebook(hw)
               if contract.is_answer(c)}
    made = {(name, m.before, m.after) for name, source in answers.items()
            for m in mutants(source)}
    assert sorted(set(EQUIVALENT) - made) == []
    for name, before, after in HAND:
        assert by_hand(answers[name], [(before, after)])[1] == [], (name, before)


@pytest.fixture(scope="module")
def bits_per_dim():
    """(reference answer, its test cells, the namespace before its first test cell)."""
    _, answer, tests, ns = next(walk("hw1_foundations", {"bits_per_dim"}, print))
    return answer, tests, ns


def test_the_reference_passes_and_a_wrong_log_base_is_killed(bits_per_dim):
    answer, tests, ns = bits_per_dim
    found = mutants(answer)
    control, *verdicts = judge(ns, [answer] + [m.source for m in found], tests, 60.0)
    assert not control.killed, control.reason
    by_line = {m.after: v for m, v in zip(found, verdicts)}
    wrong_base = "return float(nll_nats.double().mean()) / num_dims / math.log(3)"
    assert by_line[wrong_base].killed and by_line[wrong_base].by == "test_bits_per_dim"
    assert all(v.killed for v in verdicts)
    visible = visible_tests("hw1_foundations")
    assert "grade(" not in visible["test_bits_per_dim"]
    wrong = next(m.source for m in found if m.after == wrong_base)
    seen = judge(ns, [answer, wrong], tests, 60.0, visible=visible)
    assert [v.killed for v in seen] == [False, True]  # the student's view agrees here


def test_a_hanging_or_dying_answer_is_killed(bits_per_dim):
    _, tests, ns = bits_per_dim
    hangs = "def bits_per_dim(nll_nats, num_dims):\n    while True:\n        pass\n"
    dies = "import os\nos._exit(3)\n"
    hang, death = judge(ns, [hangs, dies], tests, timeout=1.0, workers=2)
    assert hang.killed and hang.by == "timeout"
    assert death.killed and death.by == "crash"
