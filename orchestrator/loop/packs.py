"""Which queued children launch together: the pack plan of the launch ledger (``ledger.py``).

A pack is one process (Job) training up to ``size`` children side by side (docs/trainer.md,
"Packing"). Pure: the callers say which pack a queued child already belongs to (a lost pack's
members go again together, under the same id) and which children may share one (``key``).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

T = TypeVar("T")


def plan_packs(queued: Sequence[T], size: int, pack_of: Callable[[T], str | None],
               key: Callable[[T], Hashable] = lambda _: None, room: int | None = None,
               ) -> list[list[T]]:
    """``queued`` as launches, ordered by their first member's place in ``queued``.

    Members of an existing pack (``pack_of`` not None) stay together; the rest, grouped by
    ``key`` in queue order, fill new packs of up to ``size`` (a key's last pack may be partial:
    waiting for more buys nothing). New packs hold at most ``room`` children in all, less what
    the existing packs take.
    """
    again: dict[str, list[T]] = {}
    by_key: dict[Hashable, list[T]] = {}
    for item in queued:
        pack = pack_of(item)
        if pack is not None:
            again.setdefault(pack, []).append(item)
        else:
            by_key.setdefault(key(item), []).append(item)
    groups = list(again.values())
    left = None if room is None else room - sum(map(len, groups))
    for items in by_key.values():
        while items and (left is None or left > 0):
            n = size if left is None else min(size, left)
            groups.append(items[:n])
            items = items[n:]
            left = None if left is None else left - n
    place = {id(item): i for i, item in enumerate(queued)}
    return sorted(groups, key=lambda g: place[id(g[0])])
