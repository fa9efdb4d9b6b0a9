"""A tiny real-format accuracy table for the benches' tests: every function of a small 1-unit
space, its quality scrambled by its place (so no order of the space is an advantage), two seeds
with the same curve."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from orchestrator.space import SearchSpace
from orchestrator.table import Curve, Entry, Table, save
from orchestrator.table.functions import census

UNARY = ("id", "relu", "sigmoid", "sin", "tanh")
BINARY = ("max", "add", "mul")


def scrambled_table(path: Path, steps: Sequence[int],
                    curve: Callable[[float], tuple[float, ...]]) -> Path:
    """Write the table to ``path``: each function's curve at ``steps`` is ``curve(q)`` for its
    scrambled quality ``q`` in [0, 1); its final accuracy is the curve's last value."""
    functions = census(SearchSpace(units=1, unary=UNARY, binary=BINARY)).functions
    entries = []
    for i, f in enumerate(functions):
        c = curve((i * 7919 % len(functions)) / len(functions))
        entries.append(Entry(f.expression, f.fingerprint, {0: Curve(c, c[-1]), 1: Curve(c, c[-1])}))
    meta = {"steps": list(steps), "space": {"units": 1, "unary": list(UNARY), "binary": list(BINARY)}}
    save(Table(meta, tuple(entries)), path)
    return path
