"""What the loops need from the results bus (MLflow in ``orchestrator.adapters.tracking``, in-memory fakes
in tests): protocols only, so the search loop, the benchmark loop and the launch ledger depend on
this and not on each other or on mlflow.

``RunBus`` is the part the launch ledger uses (poll the runs of the children in flight, fail one
whose process died); ``Tracker`` is everything a search uses. A benchmark uses the same calls under
its own scope. A poll (``ended_runs``) names the runs it asks about, so its cost follows the
children in flight, not the search's total; ``trial_runs`` (every run) is for reports and resume.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any, Protocol


class ChildRun(Protocol):
    """A child's MLflow run as the loops read it."""

    @property
    def run_id(self) -> str: ...

    @property
    def status(self) -> str: ...  # MLflow run status: RUNNING, SCHEDULED, FINISHED, FAILED, KILLED

    @property
    def failure(self) -> str | None: ...

    @property
    def done(self) -> bool: ...


class TrialOutcome(ChildRun, Protocol):
    """A search trial's run: its reward is the metric the strategy learns from."""

    @property
    def reward(self) -> float | None: ...


class RunBus(Protocol):
    """The runs of one search's (or benchmark's) children, by trial (or cell) id."""

    def trial_runs(self, search: str) -> Mapping[str, ChildRun]: ...

    def ended_runs(self, search: str, runs: Mapping[str, str | None]) -> Mapping[str, ChildRun]:
        """Those of ``runs`` (trial id -> run id, None where unknown) that ended (``done``), by
        trial id; a run still going, or not found, is absent."""
        ...

    def mark_failed(self, run_id: str, reason: str) -> None: ...


class Tracker(Protocol):
    def start_search(self, search: str, spec: dict[str, Any]) -> str: ...

    def create_trial_run(
        self, search: str, parent_run_id: str, trial_id: str, tags: dict[str, str],
        new: bool = False,
    ) -> str:
        """The trial's run, created once (found by its trial id if it exists); ``new``: the
        caller knows it was never created, so nothing need be looked up first."""
        ...

    def create_trial_runs(self, search: str, parent_run_id: str,
                          trials: Sequence[tuple[str, dict[str, str], bool]]) -> list[str]:
        """``create_trial_run`` for each (trial id, tags, new), the run ids in order (the MLflow
        tracker sends them side by side)."""
        ...

    def create_settled_runs(
        self, search: str, parent_run_id: str,
        settled: Sequence[tuple[str, dict[str, str], bool, float | None, str | None]],
    ) -> list[str]:
        """The runs of trials settled without training (screened, cached, duplicate), for each
        (trial id, tags, new, reward, failure): created as ``create_trial_run`` does, holding
        the reward (or the failure), ended; the run ids in order."""
        ...

    def trial_runs(self, search: str) -> Mapping[str, TrialOutcome]: ...

    def ended_runs(self, search: str, runs: Mapping[str, str | None]
                   ) -> Mapping[str, TrialOutcome]: ...

    def mark_failed(self, run_id: str, reason: str) -> None: ...

    def record_outcome(self, run_id: str, reward: float | None, failure: str | None) -> None: ...

    def cached_results(self, fingerprints: Collection[str], config_hash: str, search: str
                       ) -> Mapping[str, TrialOutcome]:
        """Reusable results (``contract.reusable_result``) of these functions with this child
        config from the experiment's other searches, by fingerprint; asked once per
        generation of proposals."""
        ...

    def vouch(self, run_id: str, fingerprint: str, config_hash: str, reward: float | None,
              failure: str | None) -> None:
        """Seal a result this search's own child trained, for the evaluation cache
        (``orchestrator.trust``): only sealed results are reused by other searches."""
        ...

    def metric_history(self, run_id: str, key: str) -> Mapping[int, float]:
        """Every value a run logged of ``key``, by step (early stopping reads children's
        intermediate validation accuracy with it, for the runs in flight only)."""
        ...

    def stop_run(self, run_id: str, step: int) -> None:
        """Mark a trial's run stopped early at ``step`` (``Tag.STOPPED_EARLY``) and end it
        KILLED unless it already ended."""
        ...

    def log_generation(self, parent_run_id: str, step: int, metrics: dict[str, float]) -> None: ...

    def log_metrics(self, run_id: str, step: int, metrics: dict[str, float]) -> None: ...

    def log_points(self, run_id: str, points: Sequence[tuple[int, Mapping[str, float]]]
                   ) -> None: ...

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None: ...

    def log_image(self, run_id: str, local_path: str, key: str, step: int = 0) -> None: ...

    def log_text(self, run_id: str, text: str, path: str) -> None: ...

    def log_file(self, run_id: str, local_path: str, artifact_dir: str | None = None) -> None: ...

    def finish_search(self, parent_run_id: str, status: str = "FINISHED") -> None: ...
