"""The search loop, against interfaces for the strategy, the tracker (``orchestrator.loop.tracker``), the
checkpoint store and the backend; it knows nothing of MLflow, S3 or Kubernetes.

One ``tick`` (docs/search-loop.md): **settle** ended or dead trials (and duplicates held behind
them), sealing what its own children trained for the evaluation cache, and **stop** early the
children the spec's rule stops (``loop.stopping``); **propose** a generation when nothing waits,
screening each candidate and reusing known results (this search's, or sealed ones of the same
function and child config: ``orchestrator.trust``); **launch** queued trials, alone or in packs;
**checkpoint** (with the search's ``identity``) proposals and launches at once, settles every
``checkpoint_interval`` s. The launch ledger (``loop.ledger``) launches and settles; completing
a trial, with the duplicates held behind it, is ``loop.completion``. What a tick
reads of the trials comes from their index (``loop.index``), refiled as each trial changes, so
a tick costs the trials in flight, not the trials so far.
Resume: the checkpoint (``orchestrator.loop.checkpoint``) says which trials exist, in which state and
under which launch id: launched ones are re-attached by launch id (or read from MLflow when they
finished), queued ones launched once (``loop.runs.reattach``), nothing finished trained again.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from orchestrator.adapters.storage import Store
from orchestrator.backends.base import Backend
from orchestrator.contract import Cause
from orchestrator.errors import ConfigError
from orchestrator.identity import SearchIdentity
from orchestrator.loop.admission import admit
from orchestrator.loop.amend import Change, amend, describe, rejection
from orchestrator.loop.brake import stop_reason
from orchestrator.loop.checkpoint import CHECKPOINT_KEY, Segments, read, write
from orchestrator.loop.completion import Completion
from orchestrator.loop.index import TRAINED, TrialIndex
from orchestrator.loop.leaderboard import Entry, rank
from orchestrator.loop.ledger import DONE, LAUNCHED, QUEUED, Ledger
from orchestrator.loop.polling import drive
from orchestrator.loop.runs import create_run, precreate, reattach, record_settled
from orchestrator.loop.series import Logged, log_series, logged_before
from orchestrator.loop.stopping import stop_early
from orchestrator.loop.tracker import Tracker
from orchestrator.loop.trials import (
    HELD,
    Progress,
    Stop,
    Trial,
    child_spec,
    dedup_from,
    entries,
)
from orchestrator.redact import redact_data
from orchestrator.search.base import Learner, Result, Strategy
from orchestrator.search.dedup import Dedup
from orchestrator.space.fingerprint import fingerprint
from orchestrator.spec import SearchSpec

log = logging.getLogger(__name__)


@dataclass
class Controller:
    spec: SearchSpec
    strategy: Strategy
    tracker: Tracker
    store: Store
    backend: Backend
    tracking_uri: str
    poll_interval: float = 2.0
    identity: SearchIdentity | None = None  # recorded in the checkpoint (orchestrator.identity)
    max_launches: int = 3  # a child lost this many times (process or pod gone) fails for good
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    trials: list[Trial] = field(default_factory=list)
    parent_run_id: str | None = None
    generations_logged: int = 0
    trials_logged: int = 0  # trials on the parent's per-trial series (not checkpointed)
    _dedup: Dedup = field(default_factory=Dedup)
    _dirty: bool = False
    _exhausted: bool = False  # the strategy has nothing left to propose (exhaustive)
    amended: tuple[Change, ...] = ()  # the edit applied when the search was resumed
    stopped: Stop | None = None  # why the failure brake stopped the search (loop.brake)
    _since: float = 0.0  # when this controller started: the infrastructure streak counts from it
    checkpoint_interval: float = 10.0  # seconds between checkpoints of settles and launches
    _saved_at: float = 0.0
    _fresh: set[str] = field(default_factory=set)  # proposed here: no run of theirs can exist
    _sealed: Segments = field(default_factory=Segments)  # checkpointed blocks of done trials
    _index: TrialIndex = field(default_factory=TrialIndex)  # the trials' (loop.index), derived
    _best_logged: float | None = None  # the best on the per-trial series so far (not checkpointed)

    @property
    def name(self) -> str:
        return self.spec.name

    def trial_id(self, index: int) -> str:
        return f"{self.name}-t{index:05d}"

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self, resume: bool) -> None:
        """Open the search's parent run and, when resuming, reload the last checkpoint. An edit
        since it started is applied and recorded when it touches live fields only
        (``orchestrator.loop.amend``); any other raises ``ConfigError`` before anything is written."""
        saved = read(self.store, self.name, self.identity) if resume else None
        amendment, self._since = amend(saved.spec if saved else None, self.spec), self.clock()
        self._reindex()
        if amendment.rejected:
            raise ConfigError(rejection(f"search {self.name!r} was edited since it started",
                                        amendment.rejected))
        self.parent_run_id = self.tracker.start_search(self.name, self.spec.model_dump(mode="json"))
        if saved is None:  # a fresh search, or one resumed before its first checkpoint
            return
        self.strategy.load_state_dict(saved.strategy)
        self.trials, self.generations_logged, self._sealed = saved.trials, saved.generations_logged, saved.segments
        logged = logged_before(self.trials, self.generations_logged)
        self.trials_logged, self._best_logged = logged.trials, logged.best
        self._dedup = dedup_from(self.trials)
        self._dirty = reattach(self.tracker, self.name, self.parent_run_id, self.trials,
                               self.spec.child.config_hash(), self.clock()) > 0
        self._reindex()
        log.info("search %s: resumed from %s with %d trials (%d done)", self.name,
                 self.store.describe(CHECKPOINT_KEY), len(self.trials), self._index.count(DONE))
        if amendment.applied:
            self.amended = amendment.applied
            log.info("search %s: edit applied: %s", self.name, describe(amendment.applied))
            self.tracker.log_text(self.parent_run_id, json.dumps(
                redact_data(self.spec.model_dump(mode="json")), indent=2), "search_spec.json")
            self.checkpoint()  # the stored spec is the one in force from now on

    def _reindex(self) -> None:
        """Build the trials' index from scratch: at start, and once a checkpoint is loaded."""
        self._index = TrialIndex.of(self.trials, self.spec.budget.stop_after_infrastructure_failures,
                                    self._since)

    def checkpoint(self) -> None:
        write(self.store, self.spec, self.strategy.state_dict(), self.trials,
              self.generations_logged, self._sealed, self.identity)
        self._dirty, self._saved_at = False, self.clock()

    def run(self, resume: bool = False, on_progress: Callable[[Progress], None] | None = None
            ) -> Progress:
        """Run the search to the end of its budget; returns the final progress."""
        self.start(resume)
        return drive(self.tick, self.progress, self.backend.close, self.sleep, self.poll_interval,
                     on_progress)

    def tick(self) -> bool:
        """One round of settle (and stop early), propose, launch, checkpoint; True when over
        (the budget spent, or stopped by the failure brake: ``stopped`` says why)."""
        self._settle()
        if self._brake():
            self.checkpoint()
            return True
        if not self._index.count(QUEUED) and self._may_propose():
            self._propose()
        launched = self._launch()
        self._log_series()
        over = self._finished()
        if self._dirty and (over or launched  # settles alone: every checkpoint_interval s
                            or self.clock() - self._saved_at >= self.checkpoint_interval):
            self.checkpoint()
        return over

    def launches_in_flight(self) -> list[str]:  # trial or pack ids: what cancel stops
        return sorted({t.launch for t in self._index.in_state(LAUNCHED)})

    def settled_since(self, cursor: int) -> tuple[list[Trial], int]:
        """The trials settled since ``cursor`` and the next cursor (``TrialIndex.settled_since``);
        a cursor holds from one ``start`` to the next."""
        return self._index.settled_since(cursor)

    def gpu_hours(self) -> float:
        """Wall time × GPUs of every launch, a pack counted once (``ledger.gpu_hours``)."""
        return self._index.gpu_hours(self.clock(), self.backend.gpus_per_child)

    def _launch_budget_left(self) -> bool:
        b = self.spec.budget
        return self._index.count(TRAINED) < b.trials and (b.gpu_hours is None
                                                            or self.gpu_hours() < b.gpu_hours)

    def _brake(self) -> bool:
        """Stop when ``loop.brake`` says so, cancelling the children in flight (resumed later)."""
        self.stopped = self.stopped or stop_reason(
            self._index.brake_view(self.spec.budget.max_failed), self.spec.budget, self._since)
        if self.stopped is not None:
            log.error("search %s stopped: %s", self.name, self.stopped.message)
            for launch in self.launches_in_flight():
                self.backend.cancel(launch)
        return self.stopped is not None

    def _may_propose(self) -> bool:
        return len(self.trials) < self.spec.budget.samples and self._launch_budget_left()

    def _finished(self) -> bool:
        if self._index.count(LAUNCHED):  # held duplicates wait on launched trials: covered
            return False
        if self._index.count(QUEUED):  # left over when the budget ran out (with any duplicates held
            return not self._launch_budget_left()  # behind them): never launched
        return self._exhausted or not self._may_propose()

    def _propose(self) -> None:
        room = self.spec.budget.samples - len(self.trials)
        candidates = self.strategy.propose(min(self.spec.generation, room))
        if not candidates:
            self._exhausted = True
            return
        child, first = self.spec.child, len(self.trials)  # fingerprints with the child's numerics
        prints = [fingerprint(c.expr, child.numerics) for c in candidates]
        hits = self.tracker.cached_results(set(prints), child.config_hash(), self.name)
        results, now = list[Result](), list[tuple[Trial, str | None]]()
        for cand, print_ in zip(candidates, prints, strict=True):
            trial = Trial(self.trial_id(len(self.trials)), len(self.trials), cand, print_, QUEUED)
            self.trials.append(trial)
            verdict = admit(trial, self.spec, self._dedup, lambda f, _: hits.get(f),
                            self._index.with_print(print_))
            if verdict.source == "held":
                trial.state, trial.source = HELD, "duplicate"
            elif verdict.source != "trained":  # settled now; its run says where the result is
                trial.source = verdict.source
                results += self._complete(trial, verdict.reward, verdict.failure)
                now.append((trial, verdict.duplicate_of))
            self._index.refile(trial)
        self.checkpoint()  # proposals are durable before any run or child exists for them
        self._fresh.update(t.trial_id for t in self.trials[first:])
        assert self.parent_run_id is not None
        record_settled(self.tracker, self.name, self.parent_run_id, now,
                       self._of_prints(t for t, _ in now), child.config_hash(), self._fresh)
        if results:
            self.strategy.observe(results)

    def _of_prints(self, trials: Iterable[Trial]) -> list[Trial]:
        """The trials of the functions of ``trials``: where a duplicate's original is."""
        return [o for p in {t.fingerprint for t in trials} for o in self._index.with_print(p)]

    def _create_run(self, trial: Trial, duplicate_of: str | None = None) -> str:
        return create_run(self.tracker, self.name, self.parent_run_id or "", trial,
                          self.spec.child.config_hash(), trial.trial_id in self._fresh, duplicate_of)

    # -- launch and settle: the launch ledger ----------------------------------------------

    @property
    def _ledger(self) -> Ledger[Trial]:
        return Ledger(
            name=self.name, noun="trial", id_of=lambda t: t.trial_id, record_of=lambda t: t,
            trial_spec=self._trial_spec, pack_id=lambda t: self.pack_id(t.index),
            describe=lambda t: t.candidate.expression, metric="reward",
            value_of=lambda run: run.reward, tracker=self.tracker, backend=self.backend,
            tracking_uri=self.tracking_uri, clock=self.clock, max_launches=self.max_launches)

    def pack_id(self, first_index: int) -> str:
        return f"{self.name}-p{first_index:05d}"

    def _launch(self) -> bool:
        """Queued trials in index order, never more than the trial budget has left; the runs of
        those about to start are created first, side by side (``loop.runs.precreate``)."""
        if not self._launch_budget_left():
            return False
        room = self.spec.budget.trials - self._index.count(TRAINED)
        free = self.spec.parallelism - self._index.running_launches()
        queued = self._index.in_state(QUEUED)
        precreate(self.tracker, self.name, self.parent_run_id or "", queued,
                  self.spec.child.config_hash(), self._fresh, min(room, free * self.spec.packing))
        self._dirty |= (launched := self._ledger.launch(
            self._index.live(), parallelism=self.spec.parallelism, packing=self.spec.packing,
            checkpoint=self.checkpoint, room=room))
        self._index.refile(*queued)
        return launched

    def _trial_spec(self, trial: Trial) -> dict[str, Any]:
        if trial.run_id is None:  # pre-created here, so a queued trial never left has no run
            trial.run_id = self._create_run(trial)
        return child_spec(trial, self.name, self.spec.tracking.experiment, self.spec.child)

    def _settle(self) -> None:
        launched = self._index.in_state(LAUNCHED)  # all a settle looks at, and may change
        began = [t.began for t in launched]
        settled = self._ledger.settle(launched)
        results = [r for o in settled.outcomes
                   for r in self._complete(o.item, o.value, o.failure, o.cause)]
        self._index.refile(*settled.requeued, *(t for t, b in zip(launched, began, strict=True)
                                                if t.began != b))  # seen to start
        results += stop_early(self.spec, self._index, self.tracker, self.backend, self._complete,
                              self.checkpoint)
        self._dirty |= bool(settled.requeued)
        if results:
            self.strategy.observe(results)

    @property
    def _completion(self) -> Completion:
        return Completion(self.name, self.parent_run_id or "", self.spec.child, self._index,
                          self._dedup, self.tracker, self._fresh, self.clock)

    def _complete(self, trial: Trial, reward: float | None, failure: str | None,
                  cause: Cause | None = None) -> list[Result]:
        """Complete a trial (``loop.completion``): its outcome, and the duplicates behind it."""
        self._dirty = True
        return self._completion.complete(trial, reward, failure, cause)

    def _log_series(self) -> None:
        """The parent run's series (``loop.series``): per generation, and per trial."""
        assert self.parent_run_id is not None
        updates = self.strategy.updates if isinstance(self.strategy, Learner) else []
        logged = log_series(
            self.tracker, self.parent_run_id, self.trials, self._index,
            Logged(self.generations_logged, self.trials_logged, self._best_logged),
            self.spec.generation, self.spec.strategy.failure_reward,
            updates[-1].entropy if updates else None)
        self._dirty |= logged.generations != self.generations_logged
        self.generations_logged, self.trials_logged = logged.generations, logged.trials
        self._best_logged = logged.best

    def progress(self) -> Progress:
        return self._index.progress(len(self.trials), self.spec.budget.trials, self.stopped)

    def leaderboard(self, top: int = 10) -> list[Entry]:
        """Best distinct functions first (one row per fingerprint)."""
        return rank(entries(self.trials), top)

