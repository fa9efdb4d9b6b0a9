"""A table's two halves, so that a replayed comparison can be tuned on one and reported on the
other (``search-sim --protocol`` with ``table:``, docs/search.md).

The rule, fixed before any run: a function belongs to the **development** half when the SHA-256
of its fingerprint (the hex text, UTF-8) is even, to the **held-out** half when it is odd. It
depends on the function alone, not on its accuracy, the table's order or its size, so the halves
are disjoint, cover the table, are about equal, and stay the same when the table grows. Each half
is a table of its own: its own top 1 %, and a replay on it refuses the other half's functions as
it refuses functions outside the table.
"""

from __future__ import annotations

import hashlib
from typing import Literal

from orchestrator.table.format import Table

Half = Literal["development", "heldout"]
HALVES: tuple[Half, ...] = ("development", "heldout")
RULE = "sha256(fingerprint) even: development; odd: heldout"


def half_of(fingerprint: str) -> Half:
    """The half a function (by fingerprint) belongs to."""
    digest = hashlib.sha256(fingerprint.encode("utf-8")).digest()
    return "development" if digest[-1] % 2 == 0 else "heldout"


def half(table: Table, which: Half) -> Table:
    """The functions of ``table`` in half ``which``, as a table (its metadata records the half)."""
    if which not in HALVES:
        raise ValueError(f"half must be one of {', '.join(HALVES)}; got {which!r}")
    entries = tuple(e for e in table.entries if half_of(e.fingerprint) == which)
    return Table({**table.meta, "half": {"name": which, "rule": RULE, "of": len(table)}}, entries)


def prior(table: Table) -> list[tuple[str, float]]:
    """(expression, reward) of every function of ``table`` with a finished seed: the mean final
    validation accuracy over its finished seeds, for a surrogate to start from. Only the
    functions of the table given: pass a half to keep the other one unseen."""
    out = []
    for e in table.entries:
        finals = [f for s in e.seeds if (f := e.final(s)) is not None]
        if finals:
            out.append((e.expression, sum(finals) / len(finals)))
    return out
