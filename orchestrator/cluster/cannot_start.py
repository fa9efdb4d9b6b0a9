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

from collections.abc import Sequence
from dataclasses import dataclass

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


def systemic(trials: Sequence[Trial], after: int = SYSTEMIC_AFTER) -> Systemic | None:
    """The cannot-start reason shared by the last ``after`` (or more) trained children to
    settle, in the order they settled; None when the latest ``after`` do not share one."""
    settled = sorted((t for t in trials if t.source == "trained" and t.finished is not None
                      and (t.failure is not None or t.reward is not None)),
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
