"""Ranks of marked positions: which trial indices are marked (the done ones) and the k-th
marked one in order, each in O(log n), so that a generation's batch (the done trials at places
``step * size`` onward, in index order) is found without sorting every done trial."""

from __future__ import annotations

__all__ = ["Ranks"]


class Ranks:
    """A set of trial indices with the k-th smallest in O(log n) (a Fenwick tree): the done
    trials in index order, of which a generation's batch is a slice."""

    def __init__(self) -> None:
        self._marked: set[int] = set()
        self._tree = [0, 0]  # 1-based, len - 1 a power of two

    def __len__(self) -> int:
        return len(self._marked)

    def __contains__(self, i: object) -> bool:
        return i in self._marked

    def _add(self, i: int, delta: int) -> None:
        i += 1
        while i < len(self._tree):
            self._tree[i] += delta
            i += i & -i

    def mark(self, i: int) -> None:
        if i in self._marked:
            return
        if i + 1 >= len(self._tree):  # grow to the next power of two, and rebuild
            size = len(self._tree) - 1
            while size <= i:
                size *= 2
            self._tree = [0] * (size + 1)
            for j in self._marked:
                self._add(j, 1)
        self._marked.add(i)
        self._add(i, 1)

    def unmark(self, i: int) -> None:
        if i in self._marked:
            self._marked.discard(i)
            self._add(i, -1)

    def kth(self, k: int) -> int:
        """The ``k``-th smallest marked index (from 0); IndexError when fewer are marked."""
        if not 0 <= k < len(self._marked):
            raise IndexError(k)
        pos, rest, step = 0, k + 1, (len(self._tree) - 1)
        while step:
            nxt = pos + step
            if nxt < len(self._tree) and self._tree[nxt] < rest:
                pos, rest = nxt, rest - self._tree[nxt]
            step //= 2
        return pos  # 1-based pos + 1 is the k-th, so 0-based it is pos
