"""The search loop (DESIGN.md, "How data flows"), against interfaces for the strategy, the tracker,
the checkpoint store and the backend; it knows nothing of MLflow, S3 or Kubernetes.

One ``tick``:
1. **settle**: trials in flight whose MLflow run ended (or whose child died) get their result;
   duplicates waiting on them are settled too; the strategy observes all of it.
2. **propose**: when nothing waits to launch, ask the strategy for a generation; screen each
   candidate, reuse the result of a known function (same fingerprint, in this search or, by
   fingerprint + child-config hash, in any search of the experiment), pre-create an MLflow run for
   the rest and queue them.
3. **launch** queued trials while fewer than ``parallelism`` launches run and the budget allows.
   With ``packing`` > 1 a launch is a pack: up to ``packing`` queued trials (in index order, a
   partial pack when fewer are queued) trained side by side by one process, each into its own
   MLflow run, under the pack id ``<search>-p<first member's index>``.
4. **checkpoint** strategy state and trial ledger whenever anything changed.

Resume: the ledger says which trials exist, in which state, and under which launch id. Trials
launched before the restart are re-attached (the backend finds them by launch id; a finished one
is read from MLflow); trials queued are launched once; nothing finished is trained again.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from orchestrator.amend import Change, amend, describe, rejection
from orchestrator.backends.base import Backend, ChildState, Launch
from orchestrator.errors import ConfigError
from orchestrator.leaderboard import Entry, rank
from orchestrator.packs import plan_packs
from orchestrator.polling import drive
from orchestrator.search.base import Candidate, Learner, Result, Strategy
from orchestrator.search.dedup import Dedup
from orchestrator.space.expr import to_math
from orchestrator.space.fingerprint import fingerprint
from orchestrator.space.screen import screen
from orchestrator.spec import SearchSpec
from orchestrator.storage import Store, dump_state, load_state
from orchestrator.trainer.config import PACK_KEY

log = logging.getLogger(__name__)

CHECKPOINT_KEY = "controller.pt"


class TrialOutcome(Protocol):
    run_id: str
    status: str
    reward: float | None
    failure: str | None

    @property
    def done(self) -> bool: ...


class Tracker(Protocol):
    def start_search(self, search: str, spec: dict[str, Any]) -> str: ...

    def create_trial_run(
        self, search: str, parent_run_id: str, trial_id: str, tags: dict[str, str]
    ) -> str: ...

    def trial_runs(self, search: str) -> Mapping[str, TrialOutcome]: ...

    def mark_failed(self, run_id: str, reason: str) -> None: ...

    def record_outcome(self, run_id: str, reward: float | None, failure: str | None) -> None: ...

    def cached_result(self, fingerprint: str, config_hash: str) -> TrialOutcome | None: ...

    def log_generation(self, parent_run_id: str, step: int, metrics: dict[str, float]) -> None: ...

    def log_text(self, run_id: str, text: str, path: str) -> None: ...

    def log_file(self, run_id: str, local_path: str, artifact_dir: str | None = None) -> None: ...

    def finish_search(self, parent_run_id: str, status: str = "FINISHED") -> None: ...


# Trial states: queued (run created, waiting for a slot) -> launched -> done;
# held (a duplicate waiting for the same function's result) -> done.
QUEUED, LAUNCHED, HELD, DONE = "queued", "launched", "held", "done"


@dataclass
class Trial:
    """One candidate's life in this search; the ledger is the list of these."""

    trial_id: str
    index: int
    candidate: Candidate
    fingerprint: str
    state: str
    source: str = "trained"  # trained | duplicate | cache | screen
    run_id: str | None = None
    reward: float | None = None
    failure: str | None = None
    started: float | None = None
    finished: float | None = None
    launches: int = 0
    launch_id: str | None = None  # the trial id, or its pack's id; None until first launched

    @property
    def launch(self) -> str:
        """What the backend knows this trial's process by (ledgers from before packing: its id)."""
        return self.launch_id or self.trial_id

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["candidate"] = self.candidate.as_dict()
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Trial:
        return cls(**{**d, "candidate": Candidate.from_dict(d["candidate"])})

    @property
    def result(self) -> Result:
        if self.failure is not None:
            return Result.failed(self.candidate, self.failure)
        return Result.success(self.candidate, float(self.reward or 0.0))


@dataclass
class Progress:
    """A snapshot for displays: counts, the best trial so far and the budget."""

    done: int = 0
    trained: int = 0
    running: int = 0  # children
    packs: int = 0  # processes/Jobs running them (equal to running without packing)
    queued: int = 0
    failed: int = 0
    cache_hits: int = 0
    duplicates: int = 0
    screened: int = 0
    samples: int = 0
    budget: int = 0
    best: Trial | None = None
    finished: bool = False


@dataclass
class Controller:
    spec: SearchSpec
    strategy: Strategy
    tracker: Tracker
    store: Store
    backend: Backend
    tracking_uri: str
    poll_interval: float = 2.0
    max_launches: int = 3  # a child lost this many times (process or pod gone) fails for good
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    trials: list[Trial] = field(default_factory=list)
    parent_run_id: str | None = None
    generations_logged: int = 0
    _dedup: Dedup = field(default_factory=Dedup)
    _dirty: bool = False
    _exhausted: bool = False  # the strategy has nothing left to propose (exhaustive)
    amended: tuple[Change, ...] = ()  # the edit applied when the search was resumed

    # -- identity ---------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.spec.name

    def trial_id(self, index: int) -> str:
        return f"{self.name}-t{index:05d}"

    @property
    def config_hash(self) -> str:
        return self.spec.child.config_hash()

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self, resume: bool) -> None:
        """Open the search's parent run and, when resuming, reload the last checkpoint.

        A resumed search may have been edited since it started: an edit of live fields
        (``orchestrator.amend``) is applied and recorded; any other edit raises ``ConfigError``
        before anything is written."""
        data = self.store.get(CHECKPOINT_KEY) if resume else None
        state = load_state(data) if data is not None else None
        amendment = amend(spec_in(state, self.name), self.spec)
        if amendment.rejected:
            raise ConfigError(rejection(f"search {self.name!r} was edited since it started",
                                        amendment.rejected))
        self.parent_run_id = self.tracker.start_search(
            self.name, self.spec.model_dump(mode="json")
        )
        if state is None:
            if resume:
                log.info("search %s: no checkpoint yet; starting from scratch", self.name)
            return
        self.strategy.load_state_dict(state["strategy"])
        self.trials = [Trial.from_dict(t) for t in state["trials"]]
        self.generations_logged = int(state.get("generations_logged", 0))
        self._dedup = _dedup_from(self.trials)
        log.info(
            "search %s: resumed from %s with %d trials (%d done)",
            self.name, self.store.describe(CHECKPOINT_KEY), len(self.trials),
            sum(t.state == DONE for t in self.trials),
        )
        if amendment.applied:
            self.amended = amendment.applied
            log.info("search %s: edit applied: %s", self.name, describe(amendment.applied))
            self.tracker.log_text(self.parent_run_id, json.dumps(
                self.spec.model_dump(mode="json"), indent=2), "search_spec.json")
            self.checkpoint()  # the stored spec is the one in force from now on

    def checkpoint(self) -> None:
        state = {
            "version": 2,
            "search": self.name,
            "spec": self.spec.model_dump(mode="json"),
            "strategy": self.strategy.state_dict(),
            "trials": [t.as_dict() for t in self.trials],
            "generations_logged": self.generations_logged,
        }
        self.store.put(CHECKPOINT_KEY, dump_state(state))
        self._dirty = False

    def run(self, resume: bool = False, on_progress: Callable[[Progress], None] | None = None
            ) -> Progress:
        """Run the search to the end of its budget; returns the final progress."""
        self.start(resume)
        return drive(self.tick, self.progress, self.backend.close, self.sleep, self.poll_interval,
                     on_progress)

    def tick(self) -> bool:
        """One round of settle, propose, launch, checkpoint; True when the search is over."""
        self._settle()
        if not self._queued() and self._may_propose():
            self._propose()
        self._launch()
        self._log_generations()
        if self._dirty:
            self.checkpoint()
        return self._finished()

    # -- budget -------------------------------------------------------------------------------

    def _trained(self) -> list[Trial]:
        return [t for t in self.trials if t.source == "trained" and t.state in (LAUNCHED, DONE)]

    def _queued(self) -> list[Trial]:
        return [t for t in self.trials if t.state == QUEUED]

    def _launched(self) -> list[Trial]:
        return [t for t in self.trials if t.state == LAUNCHED]

    def launches_in_flight(self) -> list[str]:
        """Launch ids (trial or pack ids) of the children running now: what a cancel stops."""
        return sorted({t.launch for t in self._launched()})

    def _running_launches(self) -> int:
        """Processes/Jobs in flight: what ``parallelism`` bounds (members of a pack share one)."""
        return len({t.launch for t in self._launched()})

    def gpu_hours(self) -> float:
        """Wall time × GPUs of every launch: a pack holds its device from its first start until
        its last member settles, and is counted once however many children it carries."""
        now = self.clock()
        spans: dict[str, tuple[float, float]] = {}
        for t in self._trained():
            if t.started is None:
                continue
            end = t.finished or now
            lo, hi = spans.get(t.launch, (t.started, end))
            spans[t.launch] = (min(lo, t.started), max(hi, end))
        seconds = sum(hi - lo for lo, hi in spans.values())
        return seconds * self.backend.gpus_per_child / 3600.0

    def _launch_budget_left(self) -> bool:
        b = self.spec.budget
        if len(self._trained()) >= b.trials:
            return False
        return b.gpu_hours is None or self.gpu_hours() < b.gpu_hours

    def _may_propose(self) -> bool:
        return len(self.trials) < self.spec.budget.samples and self._launch_budget_left()

    def _finished(self) -> bool:
        if self._launched():  # held duplicates wait on launched trials, so they are covered
            return False
        if self._queued():  # left over when the budget ran out (with any duplicates held
            return not self._launch_budget_left()  # behind them): never launched
        return self._exhausted or not self._may_propose()

    # -- propose ------------------------------------------------------------------------------

    def _propose(self) -> None:
        room = self.spec.budget.samples - len(self.trials)
        candidates = self.strategy.propose(min(self.spec.generation, room))
        if not candidates:
            self._exhausted = True
            return
        child = self.spec.child
        results: list[Result] = []
        for cand in candidates:
            index = len(self.trials)
            trial = Trial(self.trial_id(index), index, cand, fingerprint(cand.expr), QUEUED)
            self.trials.append(trial)
            verdict = screen(cand.expr, child.numerics, self.spec.screen.config()) \
                if self.spec.screen.enabled else None
            if verdict is not None and not verdict.ok:
                results += self._settle_now(trial, None, f"screened: {verdict.reason}", "screen")
                continue
            routed = self._dedup.route([cand], [trial.fingerprint])
            if routed.reused:
                r = routed.reused[0]
                results += self._settle_now(trial, r.reward, r.failure, "duplicate")
            elif not routed.evaluate:
                trial.state, trial.source = HELD, "duplicate"
            else:
                cached = self.tracker.cached_result(trial.fingerprint, self.config_hash)
                if cached is not None:
                    results += self._settle_now(trial, cached.reward, cached.failure, "cache")
        self._dirty = True
        self.checkpoint()  # proposals are durable before anything is launched
        if results:
            self.strategy.observe(results)

    def _create_run(self, trial: Trial, extra: dict[str, str] | None = None) -> str:
        assert self.parent_run_id is not None
        tags = {
            "actsearch.fingerprint": trial.fingerprint,
            "actsearch.config_hash": self.config_hash,
            "actsearch.expression": trial.candidate.expression,
            "actsearch.math": to_math(trial.candidate.expr),
            "actsearch.source": trial.source,
            **(extra or {}),
        }
        return self.tracker.create_trial_run(self.name, self.parent_run_id, trial.trial_id, tags)

    def _settle_now(
        self, trial: Trial, reward: float | None, failure: str | None, source: str
    ) -> list[Result]:
        """Settle a trial without training it; its run records where the result came from."""
        trial.source = source
        trial.run_id = self._create_run(trial)
        self.tracker.record_outcome(trial.run_id, reward, failure)
        return self._complete(trial, reward, failure)

    # -- launch -------------------------------------------------------------------------------

    def pack_id(self, first_index: int) -> str:
        return f"{self.name}-p{first_index:05d}"

    def _launch(self) -> None:
        if self.spec.packing == 1:
            for group in self._groups():
                if (self._running_launches() >= self.spec.parallelism
                        or not self._launch_budget_left()):
                    return
                self._start_child(group[0])
            return
        if not self._launch_budget_left():
            return
        packs = self._groups()[:max(self.spec.parallelism - self._running_launches(), 0)]
        fresh = [g for g in packs if g[0].launch_id is None]
        for group in fresh:  # a pack's members are durable before its process starts, so a
            for t in group:  # controller killed in between launches the same pack again
                t.launch_id = self.pack_id(group[0].index)
        if fresh:
            self.checkpoint()
        for group in packs:
            self._start_pack(group)

    def _groups(self) -> list[list[Trial]]:
        """Queued trials as launches, lowest index first (``packs.plan_packs``): the undone
        members of a lost pack go again together under their pack id; fresh trials fill packs of
        up to ``packing``, never more than the trial budget has left."""
        packed = self.spec.packing > 1
        return plan_packs(self._queued(), self.spec.packing,
                          pack_of=lambda t: t.launch_id if packed else None,
                          room=self.spec.budget.trials - len(self._trained()))

    def _trial_spec(self, trial: Trial) -> dict[str, Any]:
        if trial.run_id is None:  # pre-created here, so a queued trial never left has no run
            trial.run_id = self._create_run(trial)
        return {
            "expression": trial.candidate.expression,
            "search": self.name,
            "trial": trial.trial_id,
            "experiment": self.spec.tracking.experiment,
            "child": self.spec.child.model_dump(mode="json"),
        }

    def _launched_now(self, trial: Trial, launch_id: str) -> None:
        trial.state = LAUNCHED
        trial.launch_id = launch_id
        trial.launches += 1
        if trial.started is None:
            trial.started = self.clock()
        self._dirty = True

    def _start_child(self, trial: Trial) -> None:
        trial_spec = self._trial_spec(trial)
        assert trial.run_id is not None
        env = {"MLFLOW_RUN_ID": trial.run_id, "MLFLOW_TRACKING_URI": self.tracking_uri}
        self.backend.launch(Launch(trial.trial_id, trial.run_id, trial_spec, env))
        self._launched_now(trial, trial.trial_id)
        log.info("trial %s launched: %s", trial.trial_id, trial.candidate.expression)

    def _start_pack(self, members: list[Trial]) -> None:
        """One process for several children; each member names its own pre-created run."""
        pack_id = members[0].launch
        specs = [{**self._trial_spec(t), "run_id": t.run_id} for t in members]
        env = {"MLFLOW_TRACKING_URI": self.tracking_uri}
        self.backend.launch(Launch(pack_id, None, {PACK_KEY: specs}, env,
                                   tuple(t.trial_id for t in members)))
        for t in members:
            self._launched_now(t, pack_id)
            log.info("trial %s launched in pack %s: %s", t.trial_id, pack_id,
                     t.candidate.expression)

    # -- settle -------------------------------------------------------------------------------

    def _settle(self) -> None:
        launched = self._launched()
        if not launched:
            return
        runs = self.tracker.trial_runs(self.name)
        results: list[Result] = []
        ended: list[tuple[Trial, ChildState]] = []
        states: dict[str, ChildState] = {}  # one look per launch: members of a pack share it
        for trial in launched:
            run = runs.get(trial.trial_id)
            if run is not None and run.done:  # results are per member, a pack's included
                results += self._from_run(trial, run)
                continue
            if trial.launch not in states:
                states[trial.launch] = self.backend.state(trial.launch)
            state = states[trial.launch]
            if state.phase in ("queued", "running"):
                continue
            if state.phase == "missing" and trial.launches < self.max_launches:
                # members of a lost pack whose runs have not ended go again together, under
                # the same pack id; one that ended (say, diverged) is not trained again
                log.warning("trial %s: child not found; launching it again%s (same run, "
                            "it resumes from its last checkpoint)", trial.trial_id,
                            f" in pack {trial.launch}" if trial.launch != trial.trial_id else "")
                trial.state = QUEUED
                self._dirty = True
                continue
            ended.append((trial, state))
        if ended:  # a child may end between the two reads: look at MLflow once more
            runs = self.tracker.trial_runs(self.name)
        for trial, state in ended:
            run = runs.get(trial.trial_id)
            if run is not None and run.done:
                results += self._from_run(trial, run)
                continue
            reason = state.reason or f"child {state.phase} without logging a result"
            if state.exit_code is not None:
                reason += f" (exit code {state.exit_code})"
            assert trial.run_id is not None
            self.tracker.mark_failed(trial.run_id, f"crashed: {reason}")
            results += self._complete(trial, None, f"crashed: {reason}")
        if results:
            self.strategy.observe(results)

    def _from_run(self, trial: Trial, run: TrialOutcome) -> list[Result]:
        ok = run.status == "FINISHED" and run.reward is not None
        failure = None if ok else (run.failure or f"run ended {run.status}")
        return self._complete(trial, run.reward if ok else None, failure)

    def _complete(self, trial: Trial, reward: float | None, failure: str | None) -> list[Result]:
        """Mark a trial done; duplicates held behind it are settled with the same outcome."""
        trial.reward, trial.failure = reward, failure
        trial.state = DONE
        trial.finished = self.clock()
        self._dirty = True
        if trial.source == "trained" and failure is not None:
            log.warning("trial %s failed: %s", trial.trial_id, failure)
        elif trial.source == "trained":
            log.info("trial %s finished: reward %.4f", trial.trial_id, reward)
        if trial.source in ("screen", "cache", "duplicate"):
            if trial.source == "cache":  # later duplicates in this search reuse it directly
                self._dedup.outcomes[trial.fingerprint] = (reward, failure)
            return [trial.result]
        waiting = [t for t in self.trials if t.state == HELD and t.fingerprint == trial.fingerprint]
        if (failure or "").startswith("crashed"):
            # a crash says nothing about the function: train the next duplicate instead
            if waiting:
                waiting[0].state, waiting[0].source = QUEUED, "trained"
            else:
                self._dedup.held.pop(trial.fingerprint, None)
            return [trial.result]
        self._dedup.complete(trial.result, trial.fingerprint)
        out = [trial.result]
        for dup in waiting:
            dup.reward, dup.failure, dup.state, dup.finished = reward, failure, DONE, self.clock()
            dup.run_id = self._create_run(dup)
            self.tracker.record_outcome(dup.run_id, reward, failure)
            out.append(dup.result)
        return out

    # -- reporting ----------------------------------------------------------------------------

    def _log_generations(self) -> None:
        """Per-generation metrics on the parent run, once each ``generation`` trials are done."""
        done = [t for t in self.trials if t.state == DONE]
        g = self.spec.generation
        while (self.generations_logged + 1) * g <= len(done):
            lo, hi = self.generations_logged * g, (self.generations_logged + 1) * g
            batch = sorted(done, key=lambda t: t.index)[lo:hi]
            rewards = [t.reward if t.reward is not None else self.spec.strategy.failure_reward
                       for t in batch]
            metrics = {
                "gen_mean_reward": sum(rewards) / len(rewards),
                "gen_max_reward": max(rewards),
                "best_reward": max((t.reward for t in done if t.reward is not None), default=0.0),
                "unique_functions": len({t.fingerprint for t in self.trials}),
                "cache_hits": sum(t.source == "cache" for t in self.trials),
                "duplicates": sum(t.source == "duplicate" for t in self.trials),
                "trained": len(self._trained()),
                "failed": sum(t.failure is not None for t in done),
            }
            if isinstance(self.strategy, Learner) and self.strategy.updates:
                metrics["policy_entropy"] = self.strategy.updates[-1].entropy
            assert self.parent_run_id is not None
            self.tracker.log_generation(self.parent_run_id, self.generations_logged, metrics)
            self.generations_logged += 1
            self._dirty = True

    def progress(self) -> Progress:
        done = [t for t in self.trials if t.state == DONE]
        scored = [t for t in done if t.reward is not None and math.isfinite(t.reward)]
        return Progress(
            done=len(done),
            trained=len(self._trained()),
            running=len(self._launched()),
            packs=self._running_launches(),
            queued=len(self._queued()),
            failed=sum(t.failure is not None and t.source == "trained" for t in done),
            cache_hits=sum(t.source == "cache" for t in self.trials),
            duplicates=sum(t.source == "duplicate" for t in self.trials),
            screened=sum(t.source == "screen" for t in self.trials),
            samples=len(self.trials),
            budget=self.spec.budget.trials,
            best=max(scored, key=lambda t: t.reward or 0.0, default=None),
        )

    def leaderboard(self, top: int = 10) -> list[Entry]:
        """Best distinct functions first (one row per fingerprint)."""
        return rank(
            (Entry(t.trial_id, t.candidate.expression, t.fingerprint, t.reward)
             for t in self.trials if t.state == DONE and t.reward is not None),
            top,
        )


def spec_in(state: Mapping[str, Any] | None, name: str) -> SearchSpec | None:
    """The spec a checkpoint was written under (None before checkpoints carried one, or when
    this version can no longer read it: then an edit cannot be checked, and is taken)."""
    raw = (state or {}).get("spec")
    if raw is None:
        return None
    try:
        return SearchSpec.model_validate(raw)
    except ValueError as e:
        log.warning("search %s: the spec stored in its checkpoint no longer validates, so an "
                    "edit cannot be checked against it: %s", name, e)
        return None


def stored_spec(store: Store, name: str) -> SearchSpec | None:
    """The spec in force for a search, from its checkpoint (None when it has none)."""
    data = store.get(CHECKPOINT_KEY)
    return spec_in(load_state(data), name) if data is not None else None


def _dedup_from(trials: list[Trial]) -> Dedup:
    """Rebuild the dedup table from a ledger: outcomes of settled functions, and the functions
    being evaluated now (their duplicates wait in the ledger as HELD trials)."""
    dedup = Dedup()
    for t in trials:
        if t.state == DONE and t.source != "screen" and not (t.failure or "").startswith("crashed"):
            dedup.outcomes[t.fingerprint] = (t.reward, t.failure)
        elif t.state in (QUEUED, LAUNCHED):
            dedup.held.setdefault(t.fingerprint, [])
    return dedup
