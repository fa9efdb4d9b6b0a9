"""The polling loop shared by a search and a benchmark: tick until done, report, close."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar


class Snapshot(Protocol):
    finished: bool


P = TypeVar("P", bound=Snapshot)


def drive(
    tick: Callable[[], bool],
    snapshot: Callable[[], P],
    close: Callable[[], None],
    sleep: Callable[[float], None],
    interval: float,
    on_progress: Callable[[P], None] | None = None,
) -> P:
    """Call ``tick`` every ``interval`` seconds until it says the work is over; every snapshot
    goes to ``on_progress``; ``close`` releases the backend at the end."""
    while True:
        finished = tick()
        progress = snapshot()
        progress.finished = finished
        if on_progress is not None:
            on_progress(progress)
        if finished:
            close()
            return progress
        sleep(interval)
