"""The search's series on its parent run: per-generation metrics and the per-trial reward (step =
trial index), logged as trials finish. Each function returns how far it has logged, which the
controller keeps (the generations in its checkpoint), so nothing is logged twice. The per-trial
points of one tick go in one request (``Tracker.log_points``), not one per trial. What they
read comes from the trials' index (``loop.index``), so a tick's series costs the trials it
logs, not the trials so far."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.loop.index import TrialIndex
from orchestrator.loop.tracker import Tracker
from orchestrator.loop.trials import Trial, generation_metrics, trial_points


@dataclass(frozen=True)
class Logged:
    """How far the series stand: generations logged, trials logged (the per-trial series is
    logged up to there) and the best complete reward among those trials (None: none yet)."""

    generations: int = 0
    trials: int = 0
    best: float | None = None


def log_generations(tracker: Tracker, parent_run_id: str, index: TrialIndex, logged: int,
                    size: int, failure_reward: float, entropy: float | None) -> int:
    """Per-generation metrics, once each ``size`` trials are done; returns generations logged."""
    while (batch := index.done_in_order(logged * size, (logged + 1) * size)) is not None:
        tracker.log_generation(parent_run_id, logged,
                               generation_metrics(batch, index.tally(), failure_reward, entropy))
        logged += 1
    return logged


def log_trials(tracker: Tracker, parent_run_id: str, trials: Sequence[Trial], logged: Logged
               ) -> Logged:
    """The per-trial series from trial ``logged.trials`` on, as far as trials are done in index
    order (``trials`` in index order)."""
    points, upto, best = trial_points(trials, logged.trials, logged.best)
    if points:
        tracker.log_points(parent_run_id, points)
    return Logged(logged.generations, upto, best)


def logged_before(trials: Sequence[Trial], generations: int) -> Logged:
    """Where a resumed search's series stand: ``generations`` (checkpointed) and the trials done
    in index order."""
    _, upto, best = trial_points(trials, 0)
    return Logged(generations, upto, best)


def log_series(tracker: Tracker, parent_run_id: str, trials: Sequence[Trial], index: TrialIndex,
               logged: Logged, size: int, failure_reward: float, entropy: float | None
               ) -> Logged:
    """Both series, from where they stand; returns where now."""
    generations = log_generations(tracker, parent_run_id, index, logged.generations, size,
                                  failure_reward, entropy)
    return log_trials(tracker, parent_run_id, trials, Logged(generations, logged.trials,
                                                             logged.best))
