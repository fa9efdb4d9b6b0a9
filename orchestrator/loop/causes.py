"""What each cause of a failed child (``contract.Cause``) means to the two that read it: the
failure brake (``loop.brake``) and the report of children that cannot start
(``cluster.cannot_start``). One table, so that the two groupings differ only where written here:

======================================  ====================================  ============
cause                                   brake: infrastructure label           cannot start
======================================  ====================================  ============
ImagePullBackOff, ErrImagePull,         the image cannot be pulled            yes
InvalidImageName
CreateContainerConfigError              a Secret or ConfigMap ... is missing  yes
FailedCreate                            no pod could be created               yes
QuotaExceeded, PendingTooLong           (none)                                yes
Unreachable (exit code 4)               MLflow, S3 or the data source ...     no
OutOfMemory, OOMKilled, Interrupted,    (none)                                no
Exited, DeadlineExceeded, Lost, Unknown
======================================  ====================================  ============

Why they differ:

- A child kept Pending, or refused by a ResourceQuota, beyond ``max_pending_seconds`` cannot
  start (worth an Event and the condition: people should know), but a busy cluster is not a
  broken one: room comes free as other pods end, so the brake does not stop the search on it.
- Exit code 4 (MLflow, S3 or the data unreachable) is a broken service every further child
  would meet, so the brake counts it; but the child did start, so it is no cannot-start reason.
- The brake groups the three image reasons under one label (one wrong image shows as
  ``ErrImagePull`` and then ``ImagePullBackOff``); the cannot-start report names Kubernetes'
  own reason, the condition's reason.
- The rest say nothing about the cluster: out of memory belongs to the function, an exit code to
  the child, a stopped, lost or timed-out child to no one cause.

Trials checkpointed before causes were stored have their failure text only: ``legacy_cause``
reads it back once, when such a trial is loaded. It is the one place that reads a cause from
failure text, and it reads only texts older versions wrote, which never change.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from orchestrator.contract import Cause, FailureKind, exit_cause, failure_kind

__all__ = ["READINGS", "Reading", "cannot_start", "infrastructure_cause", "legacy_cause"]

_IMAGE = "the image cannot be pulled"


@dataclass(frozen=True)
class Reading:
    """What one cause is to the brake and to the cannot-start report."""

    infrastructure: str | None
    """The brake's label for the cause (``budget.stop_after_infrastructure_failures`` children
    in a row with one label stop the search), or None: not counted as infrastructure."""
    cannot_start: bool
    """Kubernetes did not start the child: an Event, and the ``ChildrenCannotStart`` condition
    when the last children share the cause."""


READINGS: Final[Mapping[Cause, Reading]] = {
    Cause.IMAGE_PULL_BACK_OFF: Reading(_IMAGE, True),
    Cause.ERR_IMAGE_PULL: Reading(_IMAGE, True),
    Cause.INVALID_IMAGE_NAME: Reading(_IMAGE, True),
    Cause.CREATE_CONTAINER_CONFIG_ERROR: Reading(
        "a Secret or ConfigMap the child needs is missing (CreateContainerConfigError)", True),
    Cause.FAILED_CREATE: Reading("no pod could be created (FailedCreate)", True),
    Cause.QUOTA_EXCEEDED: Reading(None, True),
    Cause.PENDING_TOO_LONG: Reading(None, True),
    Cause.UNREACHABLE: Reading(
        "MLflow, S3 or the data source could not be reached (exit code 4)", False),
    Cause.OUT_OF_MEMORY: Reading(None, False),
    Cause.OOM_KILLED: Reading(None, False),
    Cause.INTERRUPTED: Reading(None, False),
    Cause.EXITED: Reading(None, False),
    Cause.DEADLINE_EXCEEDED: Reading(None, False),
    Cause.LOST: Reading(None, False),
    Cause.UNKNOWN: Reading(None, False),
}
"""Every cause's reading (a test checks that none is missing)."""


def infrastructure_cause(cause: Cause | None) -> str | None:
    """The brake's label of a trial's cause when it is infrastructure, else None (and for no
    cause: the child's run said why it failed)."""
    return None if cause is None else READINGS[cause].infrastructure


def cannot_start(cause: Cause | None) -> bool:
    """Whether a cause is Kubernetes not starting the child."""
    return cause is not None and READINGS[cause].cannot_start


_LEGACY: Final[tuple[tuple[re.Pattern[str], Cause | None], ...]] = (
    (re.compile(r"cannot start: (ImagePullBackOff|ErrImagePull|InvalidImageName"
                r"|CreateContainerConfigError)\b"), None),  # None: the reason named
    (re.compile(r"was Pending for \d+ s, more than max_pending_seconds"), Cause.PENDING_TOO_LONG),
    (re.compile(r"^crashed: no pod could be created for \d+ s"), Cause.QUOTA_EXCEEDED),
    (re.compile(r"^crashed: FailedCreate: "), Cause.FAILED_CREATE),
    (re.compile(r"^crashed: DeadlineExceeded\b"), Cause.DEADLINE_EXCEEDED),
    (re.compile(r"^crashed: child missing without logging a result$"), Cause.LOST),
)
_EXIT_CODE: Final = re.compile(r"\(exit code (-?\d+)\)$")


def legacy_cause(failure: str | None) -> Cause | None:
    """The cause of a trial stored before causes were, read from its failure text as the
    versions before wrote it (``ledger.crash_failure`` over the backends' messages); None for a
    failure that is no crash (its run said why) or no failure."""
    if failure is None or failure_kind(failure) is not FailureKind.CRASHED:
        return None
    for pattern, cause in _LEGACY:
        m = pattern.search(failure)
        if m:
            return cause or Cause(m.group(1))
    code = _EXIT_CODE.search(failure)
    return Cause.UNKNOWN if code is None else exit_cause(int(code.group(1)))
