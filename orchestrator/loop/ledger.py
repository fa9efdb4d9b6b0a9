"""The launch ledger: how a search's trials and a benchmark's cells get trained, one mechanism for
both loops.

Every item (a trial, a cell) carries a ``Record`` of its launches: ``queued`` (its MLflow run
pre-created or about to be, waiting for a slot) -> ``launched`` -> ``done``. The ledger

- **launches** queued items while fewer than ``parallelism`` processes run. With ``packing`` > 1
  a launch is a pack (``orchestrator.loop.packs.plan_packs``): up to ``packing`` items trained side
  by side by one process, each into its own run, under a pack id that is checkpointed before the
  process starts, so a pack id always names the same items;
- **settles** launched items: a run that ended gives the result (MLflow first, a pack's members
  each from their own run; a poll asks only about the launched items' runs, by run id, so its
  cost follows the children in flight and not the search's total); otherwise the backend is
  asked once per launch. A launch the backend lost (``missing``) goes again, under the same
  launch id and run, until it was launched ``max_launches`` times; one that ended without a
  finished run (looked at once more, as the child may finish between the two reads) is marked
  failed as crashed, with the backend's message as its failure text and its cause as data
  (``Outcome.cause``, ``crash_cause``), which the caller stores with the item;
- counts **GPU-hours**: wall time × GPUs per launch, a pack once, from its first start to its
  last member's end. A launch starts when the backend first reports its child's start
  (``ChildState.started_at``: a pod's container start), so a Job waiting for a node or an image
  costs nothing and one that never started costs zero; a backend that reports no start
  (``Backend.reports_start`` false: local processes start at once) counts from the launch, and
  so does a child that ended with a result before its start was seen.

What differs between a search and a benchmark (how an item is named, described and specified,
which items may share a pack, which metric is its value) is passed in as functions; what is done
with a result is the caller's: ``settle`` returns the outcomes. The ledger keeps no state of its
own: the records live in the items, so the caller's checkpoint is the ledger, and resuming is
loading the items back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, Protocol, TypeVar

from orchestrator.backends.base import Backend, ChildState, Launch, Phase
from orchestrator.contract import (
    PACK_KEY,
    Cause,
    FailureKind,
    exit_cause,
    failure_kind,
    failure_text,
)
from orchestrator.loop.packs import plan_packs
from orchestrator.loop.tracker import ChildRun, RunBus

log = logging.getLogger(__name__)

QUEUED, LAUNCHED, DONE = "queued", "launched", "done"

T = TypeVar("T")


class Record(Protocol):
    """An item's launch history, as checkpointed with the item."""

    state: str
    run_id: str | None
    launches: int  # how often its process was started (a lost one is started again)
    launch_id: str | None  # its own id, or its pack's id; None until first launched
    started: float | None  # when it was first launched
    began: float | None  # when its child first started (``ledger.gpu_hours`` counts from it)
    finished: float | None


# -- pure decisions -----------------------------------------------------------------------------


def launch_of(item_id: str, launch_id: str | None) -> str:
    """What the backend knows an item's process by (records from before packing: its own id)."""
    return launch_id or item_id


def pack_of(item_id: str, launch_id: str | None) -> str | None:
    """The pack an item was launched in; None if never launched or launched alone."""
    return None if launch_id in (None, item_id) else launch_id


def running_launches(launch_ids: Iterable[str]) -> int:
    """Processes in flight, what ``parallelism`` bounds: members of a pack share one."""
    return len(set(launch_ids))


def launchable(groups: Sequence[Sequence[T]], running: int, parallelism: int
               ) -> list[Sequence[T]]:
    """The planned launches that start now: as many as ``parallelism`` leaves room for."""
    return list(groups[:max(parallelism - running, 0)])


Step = Literal["wait", "relaunch", "ended"]


def next_step(phase: Phase, launches: int, max_launches: int) -> Step:
    """What a launch whose run has not ended needs: nothing yet, to go again (the backend lost
    it, and it was not started too often), or to be settled from its run or as crashed."""
    if phase in ("queued", "running"):
        return "wait"
    if phase == "missing" and launches < max_launches:
        return "relaunch"
    return "ended"


def crash_failure(state: ChildState) -> str:
    """The failure of a child whose process ended without a finished run."""
    reason = state.reason or f"child {state.phase} without logging a result"
    if state.exit_code is not None:
        reason += f" (exit code {state.exit_code})"
    return failure_text(FailureKind.CRASHED, reason)


def crash_cause(state: ChildState) -> Cause:
    """Why a child whose process ended without a finished run ended: the backend's cause, else
    its exit code's, else lost (``missing``) or unknown."""
    if state.cause is not None:
        return state.cause
    if state.exit_code is not None:
        return exit_cause(state.exit_code)
    return Cause.LOST if state.phase == "missing" else Cause.UNKNOWN


def is_crash(failure: str | None) -> bool:
    """A crash says nothing about the function trained: it is never reused as a result."""
    return failure is not None and failure_kind(failure) is FailureKind.CRASHED


def run_outcome(status: str, value: float | None, failure: str | None
                ) -> tuple[float | None, str | None]:
    """(value, failure) of an ended run: its value when it finished with one, else why not."""
    if status == "FINISHED" and value is not None:
        return value, None
    return None, failure or failure_text(FailureKind.ENDED, status)


def gpu_hours(spans: Iterable[tuple[str, float | None, float | None]], now: float, gpus: int
              ) -> float:
    """Wall time × ``gpus`` of every launch, from ``(launch id, started, finished)`` of its items:
    a pack holds its devices from its first start until its last member ends (``now`` while one
    runs), and is counted once however many items it carries."""
    bounds: dict[str, tuple[float, float]] = {}
    for launch, started, finished in spans:
        if started is None:
            continue
        end = finished or now
        lo, hi = bounds.get(launch, (started, end))
        bounds[launch] = (min(lo, started), max(hi, end))
    return sum(hi - lo for lo, hi in bounds.values()) * gpus / 3600.0


# -- the ledger ---------------------------------------------------------------------------------


@dataclass
class Outcome(Generic[T]):
    """A launched item's result: ``value`` when it succeeded, else ``failure``; ``cause`` for a
    crash (``crash_cause``), None when its run says why."""

    item: T
    value: float | None
    failure: str | None
    cause: Cause | None = None


@dataclass
class Settlement(Generic[T]):
    """What one settle found: items with a result, in launch order, and items queued again."""

    outcomes: list[Outcome[T]] = field(default_factory=list)
    requeued: list[T] = field(default_factory=list)


def _no_key(item: object) -> None:
    return None


def _no_pack(item: object) -> str | None:
    return None


@dataclass(frozen=True)
class Ledger(Generic[T]):
    """Launches and settles the items of one search (or benchmark) named ``name``.

    ``id_of`` names an item (its MLflow run's trial or cell tag, its launch id alone),
    ``record_of`` gives its ``Record``, ``trial_spec`` what its child reads (and pre-creates its
    run, setting ``run_id``), ``pack_id`` the id of a pack from its first member, ``pack_key``
    what items sharing a pack have in common, ``describe`` the item in log lines after
    ``noun`` and its id, ``value_of`` the value (``metric``) an ended run carries.
    """

    name: str
    noun: str
    id_of: Callable[[T], str]
    record_of: Callable[[T], Record]
    trial_spec: Callable[[T], dict[str, Any]]
    pack_id: Callable[[T], str]
    describe: Callable[[T], str]
    metric: str
    value_of: Callable[[Any], float | None]
    tracker: RunBus
    backend: Backend
    tracking_uri: str
    clock: Callable[[], float]
    max_launches: int
    pack_key: Callable[[T], Hashable] = _no_key

    def in_state(self, items: Iterable[T], state: str) -> list[T]:
        return [i for i in items if self.record_of(i).state == state]

    def launch_of(self, item: T) -> str:
        return launch_of(self.id_of(item), self.record_of(item).launch_id)

    def pack_of(self, item: T) -> str | None:
        return pack_of(self.id_of(item), self.record_of(item).launch_id)

    def running_launches(self, items: Iterable[T]) -> int:
        return running_launches(self.launch_of(i) for i in self.in_state(items, LAUNCHED))

    def gpu_hours(self, items: Iterable[T], gpus: int) -> float:
        """GPU-hours of the launches of ``items`` (those of them that ever started)."""
        spans = ((self.launch_of(i), self.record_of(i).began, self.record_of(i).finished)
                 for i in items)
        return gpu_hours(spans, self.clock(), gpus)

    # -- launch -------------------------------------------------------------------------------

    def groups(self, queued: Sequence[T], packing: int, room: int | None = None
               ) -> list[list[T]]:
        """Queued items as launches, in queue order of their first member: the undone members of
        a lost pack go again together under their pack id; the others, grouped by ``pack_key``,
        fill packs of up to ``packing``, holding at most ``room`` items in all."""
        return plan_packs(queued, packing, pack_of=self.pack_of if packing > 1 else _no_pack,
                          key=self.pack_key, room=room)

    def launch(self, items: Sequence[T], *, parallelism: int, packing: int,
               checkpoint: Callable[[], None], room: int | None = None) -> bool:
        """Start the queued ``items`` that ``parallelism`` leaves room for; True when any started.

        New packs get their ids and ``checkpoint`` runs before their processes start, so a
        caller killed in between launches the same packs again."""
        groups = launchable(self.groups(self.in_state(items, QUEUED), packing, room),
                            self.running_launches(items), parallelism)
        if packing == 1:
            for group in groups:
                self._start_alone(group[0])
            return bool(groups)
        fresh = [g for g in groups if self.pack_of(g[0]) is None]
        for group in fresh:
            pack_id = self.pack_id(group[0])
            for item in group:
                self.record_of(item).launch_id = pack_id
        if fresh:
            checkpoint()
        for group in groups:
            self._start_pack(group)
        return bool(groups)

    def _launched_now(self, item: T, launch_id: str) -> None:
        rec = self.record_of(item)
        rec.state, rec.launch_id, rec.launches = LAUNCHED, launch_id, rec.launches + 1
        if rec.started is None:
            rec.started = self.clock()
        if rec.began is None and not getattr(self.backend, "reports_start", False):
            rec.began = rec.started  # a backend that reports no start starts its children at once

    def _start_alone(self, item: T) -> None:
        trial_spec = self.trial_spec(item)
        item_id, run_id = self.id_of(item), self.record_of(item).run_id
        assert run_id is not None
        env = {"MLFLOW_RUN_ID": run_id, "MLFLOW_TRACKING_URI": self.tracking_uri}
        self.backend.launch(Launch(item_id, run_id, trial_spec, env))
        self._launched_now(item, item_id)
        log.info("%s %s launched: %s", self.noun, item_id, self.describe(item))

    def _start_pack(self, members: Sequence[T]) -> None:
        """One process for several items; each member names its own pre-created run."""
        pack_id = self.launch_of(members[0])
        specs = [{**self.trial_spec(m), "run_id": self.record_of(m).run_id} for m in members]
        env = {"MLFLOW_TRACKING_URI": self.tracking_uri}
        self.backend.launch(Launch(pack_id, None, {PACK_KEY: specs}, env,
                                   tuple(self.id_of(m) for m in members)))
        for m in members:
            self._launched_now(m, pack_id)
            log.info("%s %s launched in pack %s: %s", self.noun, self.id_of(m), pack_id,
                     self.describe(m))

    # -- settle -------------------------------------------------------------------------------

    def outcome(self, item: T, run: ChildRun) -> Outcome[T]:
        """The result an ended run holds; the item's record takes the run's id."""
        rec = self.record_of(item)
        rec.run_id = run.run_id
        if rec.began is None:  # it trained, its start unseen (it ended between two looks)
            rec.began = rec.started
        return self._result(Outcome(item, *run_outcome(run.status, self.value_of(run),
                                                       run.failure)))

    def _result(self, outcome: Outcome[T]) -> Outcome[T]:
        item_id = self.id_of(outcome.item)
        if outcome.failure is None:
            log.info("%s %s finished: %s %.4f", self.noun, item_id, self.metric, outcome.value)
        else:
            log.warning("%s %s (%s) failed: %s", self.noun, item_id, self.describe(outcome.item),
                        outcome.failure)
        return outcome

    def _poll(self, items: Sequence[T]) -> Mapping[str, ChildRun]:
        """The ended runs of ``items``, asked by run id: settled items are never asked about
        again (their results live in their records), so a poll costs what is in flight."""
        return self.tracker.ended_runs(
            self.name, {self.id_of(i): self.record_of(i).run_id for i in items})

    def settle(self, items: Sequence[T]) -> Settlement[T]:
        """Look at the launched ``items``: results of ended runs, lost launches queued again,
        crashed ones marked failed. Records of requeued items are updated here; what the results
        mean (and marking their items done) is the caller's."""
        out: Settlement[T] = Settlement()
        launched = self.in_state(items, LAUNCHED)
        if not launched:
            return out
        runs = self._poll(launched)
        ended: list[tuple[T, ChildState]] = []
        states: dict[str, ChildState] = {}  # one look per launch: members of a pack share it
        for item in launched:
            run = runs.get(self.id_of(item))
            if run is not None and run.done:  # results are per member, a pack's included
                out.outcomes.append(self.outcome(item, run))
                continue
            launch = self.launch_of(item)
            if launch not in states:
                states[launch] = self.backend.state(launch)
            if self.record_of(item).began is None:
                self.record_of(item).began = states[launch].started_at
            step = next_step(states[launch].phase, self.record_of(item).launches,
                             self.max_launches)
            if step == "relaunch":
                # members of a lost pack whose runs have not ended go again together, under the
                # same pack id; one that ended (say, diverged) is not trained again
                log.warning("%s %s: child not found; launching it again%s (same run, it resumes "
                            "from its last checkpoint)", self.noun, self.id_of(item),
                            f" in pack {launch}" if launch != self.id_of(item) else "")
                self.record_of(item).state = QUEUED
                out.requeued.append(item)
            elif step == "ended":
                ended.append((item, states[launch]))
        if ended:  # a child may end between the two reads: look at MLflow once more
            runs = self._poll([item for item, _ in ended])
        for item, state in ended:
            run = runs.get(self.id_of(item))
            if run is not None and run.done:
                out.outcomes.append(self.outcome(item, run))
                continue
            failure = crash_failure(state)
            run_id = self.record_of(item).run_id
            assert run_id is not None
            self.tracker.mark_failed(run_id, failure)
            out.outcomes.append(self._result(Outcome(item, None, failure, crash_cause(state))))
        return out
