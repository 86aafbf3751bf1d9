"""Graded parts: each hidden test cell is one :class:`Part`, split in two halves.

- ``probe(ns)`` runs the STUDENT's code (found by name in the notebook namespace ``ns``) on
  inputs the grader chooses (seeded), and returns plain arrays: ``{name: tensor or array}``.
- ``judge(outputs)`` compares those arrays with the reference in ``arlab`` (recomputed from
  the same seeds, never taken from the student's side) and raises :class:`GradingError` with
  a message the student can act on.

Each assignment declares its parts as data: one :class:`Assignment` table of
:class:`Exercise` rows (name, points, the parts that grade it), listed explicitly in the
registry :mod:`arlab.grading.homework`. Nothing registers itself on import, and this module
never imports the assignments.

In a notebook, a hidden test cell calls ``arlab.grading.grade("test_made_masks", globals())``,
which looks the part up in the registry and runs both halves in the student's kernel
(:func:`run`). The trusted grader runs ``probe`` in a sandbox, carries the arrays out in a
format that cannot hold code, and runs ``judge`` in a process that never ran student code.
Earlier exercises that a part ``uses`` are replaced by their reference versions while it
probes, so one bug is charged once.
"""
from __future__ import annotations

import contextlib
import importlib
import inspect
import os
import sys
import threading
import traceback
import types
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from arlab.grading.checks import GradingError
from arlab.grading.references import REFERENCES

_ARLAB_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # .../arlab


class Part:
    """One hidden test cell: the protocol every entry of a table follows. The assignments
    declare theirs as :class:`Check` rows; a subclass that sets the attributes and both
    halves serves too (the tests' own demo part does)."""

    exercise: ClassVar[str]          # the answer cell's grade id (the name it defines)
    cell: ClassVar[str]              # the test cell's grade id: test_<exercise>[_k]
    points: ClassVar[float]
    uses: ClassVar[tuple[str, ...]] = ()   # earlier exercises swapped for their references

    def probe(self, ns: Mapping[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def judge(self, out: dict[str, np.ndarray]) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class Exercise:
    """One row of an assignment's table: the exercise (its answer cell's grade id), its
    points, and the parts (one per test cell) that grade it."""

    name: str
    points: float
    parts: tuple[Part, ...]


@dataclass(frozen=True)
class Assignment:
    """One assignment's grading, declared as data: its exercises in notebook order. Checked
    when built: each part belongs to its row, a row's parts add up to its points, and no two
    parts claim one test cell."""

    name: str
    exercises: tuple[Exercise, ...]

    def __post_init__(self):
        cells: set[str] = set()
        for row in self.exercises:
            for part in row.parts:
                if part.exercise != row.name:
                    raise ValueError(f"{self.name}: the part of {part.cell!r} grades "
                                     f"{part.exercise!r}, listed under {row.name!r}")
                if part.cell in cells:
                    raise ValueError(f"{self.name}: two parts claim test cell {part.cell!r}")
                cells.add(part.cell)
            total = sum(part.points for part in row.parts)
            if total != row.points:
                raise ValueError(f"{self.name}.{row.name}: its parts give {total:g} points, "
                                 f"the table {row.points:g}")

    @property
    def parts(self) -> dict[str, Part]:
        """Test cell -> its part, in table order."""
        return {part.cell: part for row in self.exercises for part in row.parts}

    @property
    def points(self) -> dict[str, float]:
        """Exercise -> points, in table order."""
        return {row.name: row.points for row in self.exercises}


@dataclass(frozen=True, eq=False)
class Check(Part):
    """A part declared as data: its exercise, cell and points, and the module functions of
    both halves, called with the same extra ``args``: ``probe(ns, *args)`` and
    ``judge(out, *args)`` (parts of one exercise that differ by data only share them)."""

    exercise: str
    cell: str
    points: float
    probe_with: Callable[..., dict[str, Any]]
    judge_with: Callable[..., None]
    args: tuple = ()
    uses: tuple[str, ...] = ()

    def probe(self, ns: Mapping[str, Any]) -> dict[str, Any]:
        return self.probe_with(ns, *self.args)

    def judge(self, out: dict[str, np.ndarray]) -> None:
        self.judge_with(out, *self.args)


def to_arrays(outputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Tensors and numbers -> numeric numpy arrays (no objects: nothing that can carry code)."""
    arrays = {}
    for key, value in outputs.items():
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu()
            value = value.float() if value.dtype in (torch.bfloat16, torch.float16) else value
            value = value.numpy()
        arr = np.asarray(value)
        if arr.dtype == object or arr.dtype.kind not in "biuf":
            raise GradingError(f"the value checked as {key!r} is not numeric "
                               f"(got {type(value).__name__}); return a tensor of numbers.")
        arrays[key] = arr
    return arrays


def student(ns: Mapping[str, Any], name: str):
    """The object the student defined as ``name``, or a clear failure."""
    if name not in ns:
        raise GradingError(f"{name} is not defined: run the cell where you define it, and keep "
                           f"the name {name!r} exactly.")
    return ns[name]


def reference(name: str):
    """The reference implementation of exercise ``name``, in the homework's signature
    (:data:`arlab.grading.references.REFERENCES`)."""
    return REFERENCES[name]


@contextlib.contextmanager
def swapped(ns: MutableMapping[str, Any], names: tuple[str, ...]):
    """Temporarily replace the student's versions of ``names`` by the references."""
    saved = {n: ns[n] for n in names if n in ns}
    try:
        for n in names:
            ns[n] = reference(n)
        yield
    finally:
        for n in names:
            if n in saved:
                ns[n] = saved[n]
            else:
                ns.pop(n, None)


def _codes(obj, seen: set | None = None) -> set[types.CodeType]:
    """The code objects of an arlab function or class (its methods, in every arlab class of
    its MRO) and of the functions nested in them."""
    found: set[types.CodeType] = set()
    if isinstance(obj, type):
        for cls in obj.__mro__:
            if cls.__module__.startswith("arlab"):
                for value in vars(cls).values():
                    value = getattr(value, "__func__", value)
                    value = getattr(value, "fget", value)
                    if isinstance(value, types.FunctionType):
                        found |= _codes(value)
        return found
    code = getattr(inspect.unwrap(obj), "__code__", None) if callable(obj) else None
    stack = [code] if isinstance(code, types.CodeType) else []
    while stack:
        code = stack.pop()
        if code.co_filename.startswith(_ARLAB_DIR):  # never torch's decorators and the like
            found.add(code)
        stack.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
    return found


def _library_twin(name: str):
    """What ``arlab`` itself exports under an exercise's name (``arlab.made_masks``,
    ``arlab.bits_per_dim``), or None."""
    import arlab

    module = getattr(arlab, "_REFERENCE", {}).get(name)
    if module:
        return getattr(importlib.import_module(module), name, None)
    return vars(arlab).get(name)


def forbidden_codes(exercise: str, uses: tuple[str, ...] = ()) -> set[types.CodeType]:
    """The code of ``exercise``'s reference (the homework-face one and the library's), less
    the code of the references its part legitimately runs (``uses``)."""
    def code_of(name: str) -> set[types.CodeType]:
        return _codes(REFERENCES.get(name)) | _codes(_library_twin(name))

    codes = code_of(exercise)
    for name in uses:
        codes -= code_of(name)
    return codes


@contextlib.contextmanager
def refusing_reference(exercise: str, uses: tuple[str, ...] = ()):
    """While the student's code is probed, entering the reference of ``exercise`` is
    recorded, whatever the channel that reached it (an import, ``pickle``, ``sys.modules``,
    ``getattr``, a subclass): the code is recognised, not the spelling. Fails afterwards."""
    forbidden = forbidden_codes(exercise, uses)
    entered: list[str] = []

    def watch(frame, event, arg):
        if event == "call" and frame.f_code in forbidden:
            entered.append(frame.f_code.co_qualname)
        return None

    previous = sys.getprofile()
    sys.setprofile(watch)
    threading.setprofile(watch)
    try:
        yield
    finally:
        removed = sys.getprofile() is not watch
        sys.setprofile(previous)
        threading.setprofile(None)
    if entered:
        raise GradingError(f"{exercise} runs arlab's own reference implementation "
                           f"({entered[0]}), however it was reached: 0 points for this part. "
                           "Write the exercise yourself.")
    if removed:
        raise GradingError(f"{exercise}: the grader's watch on the reference implementation "
                           "was switched off while your code ran (sys.setprofile): 0 points.")


def run_probe(part: Part, ns: MutableMapping[str, Any]) -> dict[str, np.ndarray]:
    """Run the student half; the student's exceptions become a GradingError that says where.
    The student's code may not run the reference of the exercise it answers."""
    try:
        with swapped(ns, part.uses), torch.random.fork_rng(), \
                refusing_reference(part.exercise, part.uses):
            torch.manual_seed(0)
            found = part.probe(ns)
        return to_arrays(found)
    except GradingError:
        raise
    except Exception as err:  # the student's code raised: say what and where
        tb = traceback.extract_tb(err.__traceback__)
        where = next((f" (line {f.lineno} of your cell)" for f in reversed(tb)
                      if f.filename.startswith("<ipython-input") or "ipykernel" in f.filename),
                     "")
        raise GradingError(f"{part.exercise} raised {type(err).__name__}: {err}{where}") from None


def run(part: Part, ns: MutableMapping[str, Any]) -> float:
    """Both halves of ``part`` against the notebook namespace ``ns`` (what a hidden test cell
    does). Raises GradingError on failure; returns the points on success."""
    part.judge(run_probe(part, ns))
    print(f"{part.cell}: passed ({part.points:g} point{'s' if part.points != 1 else ''})")
    return part.points
