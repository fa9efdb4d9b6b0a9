"""Children that cannot start, seen from the search: which trial failures are Kubernetes'
refusals to start a child, and when they are systemic.

The Kubernetes backend fails a child whose pod cannot start and names the reason in the trial's
failure (``orchestrator/backends/kubernetes.py``: ``pod P cannot start: ImagePullBackOff: ...``,
``FailedCreate: ...``, ``pod P was Pending for N s, more than max_pending_seconds``). One such
failure is worth an Event on the search; the same reason for the last ``SYSTEMIC_AFTER``
children in a row is a property of the search (a wrong image, a missing pull Secret, a
ServiceAccount that does not exist), not of the functions tried, and becomes the search's
``ChildrenCannotStart`` condition (``orchestrator.cluster.conditions.children_condition``) and
a sentence in its status message, until a child starts again. Stopping the search on it is the
loop's failure brake (``budget``); this module only says what is happening.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.backends.kubernetes import CANNOT_START
from orchestrator.loop.trials import Trial

SYSTEMIC_AFTER = 3
"""How many trained children in a row must fail for the same reason for it to be systemic."""
PENDING_TOO_LONG = "PendingTooLong"
FAILED_CREATE = "FailedCreate"
_CANNOT_START = re.compile(r"cannot start: (" + "|".join(sorted(CANNOT_START)) + r")\b")
_PENDING = re.compile(r"was Pending for \d+ s, more than max_pending_seconds")


def kubernetes_reason(failure: str | None) -> str | None:
    """The Kubernetes reason a child could not start for (``ImagePullBackOff``,
    ``ErrImagePull``, ``InvalidImageName``, ``CreateContainerConfigError``, ``FailedCreate``,
    ``PendingTooLong``), or None for any other failure (the child ran and failed)."""
    if not failure:
        return None
    m = _CANNOT_START.search(failure)
    if m:
        return m.group(1)
    if _PENDING.search(failure):
        return PENDING_TOO_LONG
    if f"{FAILED_CREATE}: " in failure:
        return FAILED_CREATE
    return None


@dataclass(frozen=True)
class Systemic:
    """The same cannot-start reason for the last ``count`` trained children."""

    reason: str
    count: int
    failure: str  # the latest one's failure text


def systemic(trials: Sequence[Trial], after: int = SYSTEMIC_AFTER) -> Systemic | None:
    """The cannot-start reason shared by the last ``after`` (or more) trained children to
    settle, in the order they settled; None when the latest ``after`` do not share one."""
    settled = sorted((t for t in trials if t.source == "trained" and t.finished is not None
                      and (t.failure is not None or t.reward is not None)),
                     key=lambda t: (t.finished or 0.0, t.index))
    if len(settled) < after:
        return None
    reason = kubernetes_reason(settled[-1].failure)
    if reason is None:
        return None
    count = 0
    for t in reversed(settled):
        if kubernetes_reason(t.failure) != reason:
            break
        count += 1
    if count < after:
        return None
    return Systemic(reason, count, str(settled[-1].failure))
