"""Completing a trial: its outcome recorded, and passed on to the duplicates held behind it.

Apart from the controller because it is the search's rule for repeated functions, the same
whoever completes a trial (admission of a screened, cached or duplicate candidate, the launch
ledger's settles, the early-stopping rule): a cache hit is reused by later duplicates in this
search; a crash says nothing about the function, so the next duplicate held behind it is
trained instead; any other outcome of a child of this search is sealed for the evaluation cache
(unless the child was stopped early) and given to every duplicate held behind it, whose runs are
created and closed at once (``loop.runs.record_settled``). The controller decides when; this
module says what completing means.
"""

from __future__ import annotations

from collections.abc import Callable, Container
from dataclasses import dataclass

from orchestrator.contract import Cause, TrainConfig
from orchestrator.loop.index import TrialIndex
from orchestrator.loop.ledger import DONE, QUEUED, is_crash
from orchestrator.loop.runs import record_settled
from orchestrator.loop.tracker import Tracker
from orchestrator.loop.trials import Trial
from orchestrator.search.base import Result
from orchestrator.search.dedup import Dedup


@dataclass(frozen=True)
class Completion:
    """What completing a trial reads and changes: the search's index and dedup state, its
    tracker, and where its runs go."""

    search: str
    parent_run_id: str
    child: TrainConfig  # its config hash keys the evaluation cache
    index: TrialIndex
    dedup: Dedup
    tracker: Tracker
    fresh: Container[str]  # proposed by this controller: no run of theirs can exist
    clock: Callable[[], float]

    def complete(self, trial: Trial, reward: float | None, failure: str | None,
                 cause: Cause | None = None) -> list[Result]:
        """Mark a trial done (a crash with its ``cause``); duplicates held behind it are settled
        with the same outcome. Returns the results for the strategy."""
        trial.reward, trial.failure, trial.state, trial.cause = reward, failure, DONE, cause
        trial.finished = self.clock()
        self.index.refile(trial)
        if trial.source in ("screen", "cache", "duplicate"):
            if trial.source == "cache":  # later duplicates in this search reuse it directly
                self.dedup.outcomes[trial.fingerprint] = (reward, failure)
            return [trial.result]
        waiting = self.index.held_behind(trial.fingerprint)
        if is_crash(failure):  # says nothing about the function: train the next duplicate
            if waiting:
                waiting[0].state, waiting[0].source = QUEUED, "trained"
                self.index.refile(waiting[0])
            else:
                self.dedup.held.pop(trial.fingerprint, None)
            return [trial.result]
        self.dedup.complete(trial.result, trial.fingerprint)
        if trial.stopped_at is None:  # a child stopped early is no result to reuse elsewhere
            self.tracker.vouch(str(trial.run_id), trial.fingerprint, self.child.config_hash(),
                               reward, failure)
        out = [trial.result]
        for dup in waiting:
            dup.reward, dup.failure, dup.state, dup.finished = reward, failure, DONE, self.clock()
            self.index.refile(dup)
            out.append(dup.result)
        record_settled(self.tracker, self.search, self.parent_run_id,
                       [(d, trial.run_id) for d in waiting],
                       self.index.with_print(trial.fingerprint), self.child.config_hash(),
                       self.fresh)
        return out
