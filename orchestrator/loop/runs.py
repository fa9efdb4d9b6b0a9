"""The trials' MLflow runs as the controller creates them, and the runs a resumed search is owed.

A run is created once per trial, from the trial's tags (``trials.run_tags``). A trial proposed by
this controller is *new*: its proposal was checkpointed before anything was created for it, so no
run of it can exist and none is looked up first (``Tracker.create_trial_run(new=True)``: one
request, not a search by tag whose cost grows with the experiment). A trial read back from a
checkpoint may have a run the checkpoint does not know of, because the checkpoint after a tick
is written at most every few seconds (``Controller.checkpoint_interval``): ``reattach`` finds
those runs once, at resume, so that a child that already ended is read from MLflow instead of
being trained again, and a result settled without training gets the run it was owed.
"""

from __future__ import annotations

import logging
from collections.abc import Container, Sequence

from orchestrator.loop.ledger import DONE, LAUNCHED, QUEUED
from orchestrator.loop.tracker import Tracker
from orchestrator.loop.trials import Trial, original_run, run_tags

log = logging.getLogger(__name__)


def create_run(tracker: Tracker, search: str, parent_run_id: str, trial: Trial, config_hash: str,
               new: bool, duplicate_of: str | None = None) -> str:
    """The trial's run, with its tags (``new``: known never to have been created)."""
    return tracker.create_trial_run(search, parent_run_id, trial.trial_id,
                                    run_tags(trial, config_hash, duplicate_of), new=new)


def precreate(tracker: Tracker, search: str, parent_run_id: str, queued: Sequence[Trial],
              config_hash: str, fresh: Container[str], n: int) -> None:
    """Create the runs of the first ``n`` of the ``queued`` trials that have none, side by side
    (``Tracker.create_trial_runs``): those about to be launched."""
    todo = [t for t in queued if t.run_id is None][:max(n, 0)]
    ids = tracker.create_trial_runs(search, parent_run_id, [
        (t.trial_id, run_tags(t, config_hash), t.trial_id in fresh) for t in todo])
    for trial, run_id in zip(todo, ids, strict=True):
        trial.run_id = run_id


def record_settled(tracker: Tracker, search: str, parent_run_id: str,
                   settled: Sequence[tuple[Trial, str | None]], trials: Sequence[Trial],
                   config_hash: str, fresh: Container[str]) -> None:
    """Create and close the runs of trials settled without training (screened, cached,
    duplicate), each with the run its result repeats (given, or for a duplicate the original's
    in ``trials``), side by side (``Tracker.create_settled_runs``): their outcomes are already
    on the trials. A trial in ``fresh`` is known to have no run yet."""
    todo = []
    for trial, duplicate_of in settled:
        if duplicate_of is None and trial.source == "duplicate":
            duplicate_of = original_run(trials, trial.fingerprint)
        todo.append((trial.trial_id, run_tags(trial, config_hash, duplicate_of),
                     trial.trial_id in fresh, trial.reward, trial.failure))
    ids = tracker.create_settled_runs(search, parent_run_id, todo)
    for (trial, _), run_id in zip(settled, ids, strict=True):
        trial.run_id = run_id


def reattach(tracker: Tracker, search: str, parent_run_id: str, trials: Sequence[Trial],
             config_hash: str, now: float) -> int:
    """At resume: queued trials whose run ended after the checkpoint was written are marked
    launched (the next settle reads their result), and trials settled without training whose
    run was not created yet get it. Returns how many trials changed."""
    queued = {t.trial_id: t for t in trials if t.state == QUEUED and t.run_id is None}
    ended = tracker.ended_runs(search, dict.fromkeys(queued)) if queued else {}
    for trial_id, run in ended.items():
        trial = queued[trial_id]
        trial.run_id, trial.state = run.run_id, LAUNCHED
        trial.launch_id, trial.launches = trial.launch_id or trial_id, trial.launches + 1
        trial.started = trial.started or now
        log.info("search %s: trial %s ended after the last checkpoint; reading its result",
                 search, trial_id)
    owed = [t for t in trials if t.state == DONE and t.run_id is None
            and t.source in ("screen", "cache", "duplicate")]
    record_settled(tracker, search, parent_run_id, [(t, None) for t in owed], trials,
                   config_hash, ())
    return len(ended) + len(owed)
