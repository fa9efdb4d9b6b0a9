"""What the search loop needs from a place where children run: launch, look, cancel.

Backends are idempotent by launch id: launching what is already running is a no-op, and a
backend built fresh after a controller restart finds the children its predecessor started (local
processes by their pid files, Kubernetes Jobs by name and label). A launch id is the trial id of
a child trained alone, or the pack id of several children trained side by side in one process
(``SearchSpec.packing``); ``state`` and ``cancel`` take the same id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from orchestrator.contract import Cause

Phase = Literal["queued", "running", "succeeded", "failed", "missing"]
"""``queued``: accepted, not yet running (pending pod, suspended Job, evicted and waiting);
``missing``: the backend knows nothing of the trial (never launched, or lost with its host)."""


@dataclass(frozen=True)
class Launch:
    """One process to start: the trial spec the trainer reads and its environment.

    ``trial_id`` is the launch id: the trial's own id for one child, the pack id for a pack. A
    pack (``members`` non-empty: its trial ids) has a ``{"pack": [...]}`` trial spec whose members
    name their own MLflow runs, so ``run_id`` is None; a single child's run is ``run_id``.
    """

    trial_id: str
    run_id: str | None
    trial_spec: dict[str, Any]
    env: dict[str, str] = field(default_factory=dict)
    members: tuple[str, ...] = ()

    @property
    def is_pack(self) -> bool:
        return bool(self.members)


@dataclass(frozen=True)
class ChildState:
    """``reason``: the human message (it becomes the trial's failure text, so it is stored and
    shown, never parsed); ``cause``: why a ``failed`` (or ``missing``) child ended, as data
    (``contract.Cause``), which the failure brake and the cannot-start report read.
    ``started_at``: when the child's process started (epoch seconds), where the backend
    knows it (a pod's container start): GPU time counts from there, not from the launch, since
    a child may wait long for a node or an image before it trains."""

    phase: Phase
    reason: str | None = None
    exit_code: int | None = None
    started_at: float | None = None
    cause: Cause | None = None


class Backend(Protocol):
    gpus_per_child: int
    reports_start: bool
    """Whether ``state`` reports ``started_at`` once a child started: then GPU time counts from
    there, and a launch that never started costs nothing; otherwise from the launch."""

    def launch(self, launch: Launch) -> None:
        """Start the child, or do nothing if it already runs."""
        ...

    def state(self, trial_id: str) -> ChildState:
        """The phase of a launch, by its launch id."""
        ...

    def cancel(self, trial_id: str) -> None:
        """Stop the child if it runs; a no-op otherwise."""
        ...

    def close(self) -> None:
        """Release what the backend holds once the search is over."""
        ...
