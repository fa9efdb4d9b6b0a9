"""The search's series on its parent run: per-generation metrics and the per-trial reward (step =
trial index), logged as trials finish. Each function returns how far it has logged, which the
controller keeps (the generations in its checkpoint), so nothing is logged twice. The per-trial
points of one tick go in one request (``Tracker.log_points``), not one per trial."""

from __future__ import annotations

from collections.abc import Sequence

from orchestrator.loop.tracker import Tracker
from orchestrator.loop.trials import Trial, generation_metrics, trial_points


def log_generations(tracker: Tracker, parent_run_id: str, trials: Sequence[Trial], logged: int,
                    size: int, failure_reward: float, entropy: float | None) -> int:
    """Per-generation metrics, once each ``size`` trials are done; returns generations logged."""
    while metrics := generation_metrics(trials, logged, size, failure_reward, entropy):
        tracker.log_generation(parent_run_id, logged, metrics)
        logged += 1
    return logged


def log_trials(tracker: Tracker, parent_run_id: str, trials: Sequence[Trial], logged: int) -> int:
    """The per-trial series from trial ``logged`` on, as far as trials are done in index order."""
    points, logged = trial_points(trials, logged)
    if points:
        tracker.log_points(parent_run_id, points)
    return logged


def logged_before(trials: Sequence[Trial]) -> int:
    """Where a resumed search's per-trial series stands: the trials done in index order."""
    return trial_points(trials, 0)[1]


def log_series(tracker: Tracker, parent_run_id: str, trials: Sequence[Trial],
               logged: tuple[int, int], size: int, failure_reward: float,
               entropy: float | None) -> tuple[int, int]:
    """Both series, from where they stand (generations, trials logged); returns where now."""
    return (log_generations(tracker, parent_run_id, trials, logged[0], size, failure_reward,
                            entropy),
            log_trials(tracker, parent_run_id, trials, logged[1]))
