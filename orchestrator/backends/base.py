"""What the search loop needs from a place where children run: launch, look, cancel.

Backends are idempotent by trial id: launching a trial that is already running is a no-op, and a
backend built fresh after a controller restart finds the children its predecessor started (local
processes by their pid files, Kubernetes Jobs by name and label).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Phase = Literal["queued", "running", "succeeded", "failed", "missing"]
"""``queued``: accepted, not yet running (pending pod, suspended Job, evicted and waiting);
``missing``: the backend knows nothing of the trial (never launched, or lost with its host)."""


@dataclass(frozen=True)
class Launch:
    """One child to start: its MLflow run and the trial spec the trainer reads."""

    trial_id: str
    run_id: str
    trial_spec: dict[str, Any]
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ChildState:
    phase: Phase
    reason: str | None = None
    exit_code: int | None = None


class Backend(Protocol):
    gpus_per_child: int

    def launch(self, launch: Launch) -> None:
        """Start the child, or do nothing if it already runs."""
        ...

    def state(self, trial_id: str) -> ChildState: ...

    def cancel(self, trial_id: str) -> None:
        """Stop the child if it runs; a no-op otherwise."""
        ...

    def close(self) -> None:
        """Release what the backend holds once the search is over."""
        ...
