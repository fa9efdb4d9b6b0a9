"""Children that cannot start, seen from the search: which trial failures are Kubernetes'
refusals to start a child, and when they are systemic.

The Kubernetes backend fails a child whose pod cannot start with the reason as data
(``ChildState.cause``, stored as the trial's ``cause``) beside the message of its failure text.
Which causes are refusals to start is the table in ``orchestrator.loop.causes`` (there, too, why
that differs from what the failure brake counts); the failure text is never parsed. One such
failure is worth an Event on the search; the same reason for the last ``SYSTEMIC_AFTER``
children in a row is a property of the search (a wrong image, a missing pull Secret, a
ServiceAccount that does not exist), not of the functions tried, and becomes the search's
``ChildrenCannotStart`` condition (``orchestrator.cluster.conditions.children_condition``) and
a sentence in its status message, until a child starts again. Stopping the search on it is the
loop's failure brake (``budget``); this module only says what is happening.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from orchestrator.contract import Cause
from orchestrator.loop.causes import cannot_start
from orchestrator.loop.trials import Trial

SYSTEMIC_AFTER = 3
"""How many trained children in a row must fail for the same reason for it to be systemic."""


def kubernetes_reason(cause: Cause | None) -> str | None:
    """The Kubernetes reason a child could not start for (the cause's value: ``ImagePullBackOff``,
    ``ErrImagePull``, ``InvalidImageName``, ``CreateContainerConfigError``, ``FailedCreate``,
    ``QuotaExceeded``, ``PendingTooLong``), or None for any other (the child ran and failed)."""
    return cause.value if cause is not None and cannot_start(cause) else None


@dataclass(frozen=True)
class Systemic:
    """The same cannot-start reason for the last ``count`` trained children."""

    reason: str
    count: int
    failure: str  # the latest one's failure text


def settled_child(t: Trial) -> bool:
    """A trained child that settled with a result or a failure: what ``systemic`` orders."""
    return (t.source == "trained" and t.finished is not None
            and (t.failure is not None or t.reward is not None))


def systemic(trials: Sequence[Trial], after: int = SYSTEMIC_AFTER) -> Systemic | None:
    """The cannot-start reason shared by the last ``after`` (or more) trained children to
    settle, in the order they settled; None when the latest ``after`` do not share one."""
    settled = sorted((t for t in trials if settled_child(t)),
                     key=lambda t: (t.finished or 0.0, t.index))
    if len(settled) < after:
        return None
    reason = kubernetes_reason(settled[-1].cause)
    if reason is None:
        return None
    count = 0
    for t in reversed(settled):
        if kubernetes_reason(t.cause) != reason:
            break
        count += 1
    if count < after:
        return None
    return Systemic(reason, count, str(settled[-1].failure))


@dataclass
class Streak:
    """``systemic`` kept as children settle, so that a watcher reads only the new ones: the
    settled children in settle order, from the one before the streak (which breaks it) to the
    last, as ``(finished, index, reason, failure)``. A child that settles before that one (its
    ``finished`` earlier) changes nothing and is not kept; settled children never change
    (a trial never leaves ``done``). Equal to ``systemic`` of every trial, which
    tests/unit/test_cannot_start.py checks after any sequence of settles."""

    after: int = SYSTEMIC_AFTER
    _tail: list[tuple[float, int, str | None, str]] = field(default_factory=list)
    _count: int = 0  # how many at the end of ``_tail`` share a cannot-start reason

    @classmethod
    def of(cls, trials: Iterable[Trial], after: int = SYSTEMIC_AFTER) -> Streak:
        streak = cls(after)
        streak.add(trials)
        return streak

    def add(self, trials: Iterable[Trial]) -> None:
        """Take in newly settled trials (any others are skipped: ``settled_child``)."""
        for t in trials:
            if settled_child(t):
                self._add((t.finished or 0.0, t.index, kubernetes_reason(t.cause), str(t.failure)))

    def _add(self, entry: tuple[float, int, str | None, str]) -> None:
        tail, reason = self._tail, entry[2]
        if len(tail) > self._count and entry[:2] < tail[0][:2]:
            return  # settled before the child that breaks the streak: the streak is the same
        at = bisect_right(tail, entry[:2], key=lambda e: e[:2])
        if at < len(tail):  # settled before the last (a clock set back): count again
            tail.insert(at, entry)
            self._recount()
        elif reason is not None and self._count and reason == tail[-1][2]:
            tail.append(entry)
            self._count += 1
        else:
            self._tail, self._count = [*tail[-1:], entry], int(reason is not None)

    def _recount(self) -> None:
        tail, count = self._tail, 0
        reason = tail[-1][2]
        while reason is not None and count < len(tail) and tail[-1 - count][2] == reason:
            count += 1
        self._tail, self._count = tail[max(0, len(tail) - count - 1):], count

    def systemic(self) -> Systemic | None:
        """What ``systemic`` answers over every trial taken in."""
        if self._count < self.after:
            return None
        _, _, reason, failure = self._tail[-1]
        assert reason is not None
        return Systemic(reason, self._count, failure)
