"""The standard conditions of a search (``status.conditions``), derived from its phase.

``kubectl wait --for=condition=Succeeded activationsearch/NAME`` and other tools built on the
Kubernetes API conventions read conditions, not phases; deriving the conditions from the phase
in one pure function means the two can never disagree. Every search carries the same three
types, each True or False (never missing, so a tool need not guess what absence means):

============  ===============================  ==============================  ================
phase         Ready                            Succeeded                       Failed
============  ===============================  ==============================  ================
Pending       False, Starting (or <wait>)      False, InProgress               False, InProgress
Running       True, Running (False,            False, InProgress               False, InProgress
              <wait> while one lasts)
Succeeded     True, Succeeded                  True, BudgetSpent               False, Succeeded
Failed        False, <why>                     False, <why>                    True, <why>
Cancelled     False, Cancelled                 False, Cancelled                False, Cancelled
============  ===============================  ==============================  ================

``<why>`` is a CamelCase reason given by the operator (``InvalidSpec``, ``SearchFailed``,
``PolicyViolation``), kept by later writes that give none. ``<wait>`` is what a pending or
running search is waiting out: ``Unavailable`` (an outage), a service that refuses
(``StorageRefused``, ``TrackingRefused``, ``NotMlflow``) or ``UnexpectedError``.
A condition's ``lastTransitionTime`` changes only when its status does; its ``reason``,
``message`` and ``observedGeneration`` follow the latest write.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

PENDING, RUNNING, SUCCEEDED, FAILED, CANCELLED = (
    "Pending", "Running", "Succeeded", "Failed", "Cancelled")
PHASES: Final = (PENDING, RUNNING, SUCCEEDED, FAILED, CANCELLED)
ENDED: Final = frozenset({SUCCEEDED, FAILED, CANCELLED})
"""Phases in which the operator runs no loop for the search's current generation."""

READY, SUCCEEDED_CONDITION, FAILED_CONDITION = "Ready", "Succeeded", "Failed"
TYPES: Final = (READY, SUCCEEDED_CONDITION, FAILED_CONDITION)
UNAVAILABLE: Final = "Unavailable"
"""The reason of ``Ready=False`` while an outage (MLflow, S3, the API server) is waited out."""

_REASON = re.compile(r"^[A-Z][A-Za-z0-9]*$")  # metav1.Condition: CamelCase, 1-1024 characters


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def derive(phase: str, reason: str | None = None) -> dict[str, tuple[str, str]]:
    """(status, reason) of each condition type in ``phase`` (the table of the module's
    docstring); ``reason`` says why a search failed, or what a pending or running one waits
    out (``Unavailable``, ``StorageRefused``...)."""
    if reason is not None and not _REASON.match(reason):
        raise ValueError(f"a condition reason is CamelCase ([A-Z][A-Za-z0-9]*); got {reason!r}")
    if phase not in PHASES:
        raise ValueError(f"unknown phase {phase!r}; one of {', '.join(PHASES)}")
    if phase == PENDING:
        return {READY: ("False", reason or "Starting"), SUCCEEDED_CONDITION: ("False", "InProgress"),
                FAILED_CONDITION: ("False", "InProgress")}
    if phase == RUNNING:
        ready = ("False", reason) if reason is not None else ("True", RUNNING)
        return {READY: ready, SUCCEEDED_CONDITION: ("False", "InProgress"),
                FAILED_CONDITION: ("False", "InProgress")}
    if phase == SUCCEEDED:
        return {READY: ("True", SUCCEEDED), SUCCEEDED_CONDITION: ("True", "BudgetSpent"),
                FAILED_CONDITION: ("False", SUCCEEDED)}
    if phase == FAILED:
        why = reason or "SearchFailed"
        return {READY: ("False", why), SUCCEEDED_CONDITION: ("False", why),
                FAILED_CONDITION: ("True", why)}
    return dict.fromkeys(TYPES, ("False", CANCELLED))


def conditions(previous: Sequence[Mapping[str, Any]] | None, phase: str, message: str,
               generation: int | None, reason: str | None = None, now: str | None = None
               ) -> list[dict[str, Any]]:
    """The ``status.conditions`` list for ``phase``, over the ``previous`` list: a condition
    whose status is unchanged keeps its ``lastTransitionTime``; types other than ours (written
    by someone else) are kept as they are, after ours."""
    before = {str(c.get("type")): c for c in previous or []}
    if phase == FAILED and reason is None:  # a later write (a note, a retry) keeps the why
        failed = before.get(FAILED_CONDITION) or {}
        reason = str(failed["reason"]) if failed.get("status") == "True" and failed.get(
            "reason") else None
    stamp = now or _now()
    out: list[dict[str, Any]] = []
    for type_, (status, why) in derive(phase, reason).items():
        old = before.get(type_) or {}
        condition: dict[str, Any] = {
            "type": type_, "status": status, "reason": why, "message": message,
            "lastTransitionTime": old.get("lastTransitionTime")
            if old.get("status") == status and old.get("lastTransitionTime") else stamp,
        }
        if generation is not None:
            condition["observedGeneration"] = generation
        out.append(condition)
    return out + [dict(c) for t, c in before.items() if t not in TYPES]


def condition(status: Mapping[str, Any], type_: str) -> Mapping[str, Any] | None:
    """The condition ``type_`` of a search's ``status``, if it has one."""
    return next((c for c in status.get("conditions") or [] if c.get("type") == type_), None)


CHILDREN_CANNOT_START: Final = "ChildrenCannotStart"
"""A fourth condition, written only once it has been True: the last children of the search all
failed to start for the same Kubernetes reason (``orchestrator.cluster.cannot_start``), its
reason that one (``ImagePullBackOff``, ``FailedCreate``...); False, reason ``ChildrenStarted``,
once a child gets past it. ``kubectl wait --for=condition=ChildrenCannotStart`` tells an
administrator that a search is spending its budget on children that never run."""
CHILDREN_STARTED: Final = "ChildrenStarted"


def with_children_condition(listed: Sequence[Mapping[str, Any]], cannot_start: str | None,
                            message: str, generation: int | None, now: str | None = None
                            ) -> list[dict[str, Any]]:
    """``listed`` with ``ChildrenCannotStart`` set: True with the Kubernetes reason
    ``cannot_start``, else False (only when the condition is already there: a search whose
    children always started never carries it)."""
    if cannot_start is not None and not _REASON.match(cannot_start):
        raise ValueError(f"a condition reason is CamelCase ([A-Z][A-Za-z0-9]*); got {cannot_start!r}")
    out = [dict(c) for c in listed]
    old = next((c for c in out if c.get("type") == CHILDREN_CANNOT_START), None)
    if old is None and cannot_start is None:
        return out
    status = "True" if cannot_start is not None else "False"
    condition: dict[str, Any] = {
        "type": CHILDREN_CANNOT_START, "status": status,
        "reason": cannot_start or CHILDREN_STARTED, "message": message,
        "lastTransitionTime": old.get("lastTransitionTime")
        if old is not None and old.get("status") == status and old.get("lastTransitionTime")
        else now or _now(),
    }
    if generation is not None:
        condition["observedGeneration"] = generation
    if old is None:
        return [*out, condition]
    return [condition if c is old else c for c in out]
