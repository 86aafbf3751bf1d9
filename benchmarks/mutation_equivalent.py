"""Mutants that cannot change what the answer computes, kept by hand.

Keyed by (exercise, the original line, the mutated line), both stripped, as the mutation run
prints them; the value says in one line why no test could tell the mutant apart. They leave the
kill rate's denominator and are reported on their own.
"""
from __future__ import annotations

EQUIVALENT: dict[tuple[str, str, str], str] = {
}
