"""The trials' index (``orchestrator.loop.index``) against the pure functions over every trial
it stands in for: after any sequence of proposals, launches, relaunches, settles (a result, a
failure, a crash), duplicates released, children stopped early and their stops finished, curves
read, and resumes (the trials through their checkpointed form, the index rebuilt), every answer
the index gives equals the one computed from scratch."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from orchestrator.backends.base import ChildState
from orchestrator.cluster.cannot_start import Streak, systemic
from orchestrator.contract import Cause, FailureKind, failure_text
from orchestrator.loop.brake import stop_reason
from orchestrator.loop.index import TrialIndex
from orchestrator.loop.ledger import (
    DONE,
    LAUNCHED,
    QUEUED,
    crash_failure,
    gpu_hours,
    running_launches,
)
from orchestrator.loop.ranks import Ranks
from orchestrator.loop.stopping import history
from orchestrator.loop.trials import HELD, Trial, generation_batch, summarize, tally, trained
from orchestrator.search.base import Candidate
from orchestrator.spec import BudgetSpec

EXPRS = ["id(x)", "relu(x)", "sin(x)", "tanh(x)", "max(id(x), relu(x))"]
STREAK = 3
SINCE = 5.0
FAILURES = [failure_text(FailureKind.DIVERGED),
            failure_text(FailureKind.OOM),
            crash_failure(ChildState("failed", reason="OOMKilled", exit_code=137)),
            crash_failure(ChildState("failed", reason="actsearch-train: MLflow unreachable",
                                     exit_code=4))]
REWARDS = st.sampled_from([0.25, 0.5, 0.75, 0.9, float("nan")])


def candidate(expr: str) -> Candidate:
    return Candidate(tokens=(), expression=expr, log_prob=0.0, policy_version=0)


class Trials(RuleBasedStateMachine):
    """A search's trials changed as the loop changes them, each change refiled."""

    @initialize()
    def start(self) -> None:
        self.trials: list[Trial] = []
        self.index = TrialIndex(STREAK, SINCE)
        self.clock = 0.0
        self._watch()

    def _watch(self) -> None:
        """Start watching settles as the operator does when a controller starts."""
        _, self.cursor = self.index.settled_since(0)
        self.streaks = {after: Streak.of(self.trials, after) for after in (1, 2, 3)}
        self.watched = {t.trial_id for t in self.trials if t.state == DONE}

    def _tick(self) -> float:
        self.clock += 1.0
        return self.clock

    def _of(self, state: str, i: int) -> Trial | None:
        matching = [t for t in self.trials if t.state == state]
        return matching[i % len(matching)] if matching else None

    @rule(expr=st.sampled_from(EXPRS), how=st.sampled_from(["queued"] * 4 + ["held", "screen",
                                                                         "cache", "duplicate"]),
          reward=REWARDS, failed=st.booleans())
    def propose(self, expr: str, how: str, reward: float, failed: bool) -> None:
        i = len(self.trials)
        t = Trial(f"s-t{i:05d}", i, candidate(expr), "fp-" + expr, QUEUED)
        self.trials.append(t)
        self.index.refile(t)  # filed when proposed, as the controller does
        if how == "held":
            t.state, t.source = HELD, "duplicate"
        elif how != "queued":
            t.source, t.state, t.finished = how, DONE, self._tick()
            t.run_id = f"run-{i}"
            if failed or how == "screen":
                t.failure = failure_text(FailureKind.SCREENED, "x") if how == "screen" \
                    else FAILURES[0]
            else:
                t.reward = reward
        self.index.refile(t)

    @rule(i=st.integers(0, 50), pack=st.booleans(), starts=st.booleans())
    def launch(self, i: int, pack: bool, starts: bool) -> None:
        t = self._of(QUEUED, i)
        if t is None:
            return
        t.state, t.launches, t.run_id = LAUNCHED, t.launches + 1, t.run_id or f"run-{t.index}"
        t.launch_id = t.launch_id or (f"s-p{t.index // 2 * 2:05d}" if pack else t.trial_id)
        t.started = t.started or self._tick()
        if starts and t.began is None:  # a backend that reports no start: at once
            t.began = t.started
        self.index.refile(t)

    @rule(i=st.integers(0, 50))
    def seen_to_start(self, i: int) -> None:  # the backend reports the child's start
        t = self._of(LAUNCHED, i)
        if t is not None and t.began is None:
            t.began = self._tick()
            self.index.refile(t)

    @rule(i=st.integers(0, 50))
    def relaunch(self, i: int) -> None:  # the backend lost it: queued again
        t = self._of(LAUNCHED, i)
        if t is not None:
            t.state = QUEUED
            self.index.refile(t)

    @rule(i=st.integers(0, 50), reward=REWARDS, failure=st.sampled_from([None, *FAILURES]))
    def settle(self, i: int, reward: float, failure: str | None,
               cause: Cause | None = None) -> None:
        t = self._of(LAUNCHED, i)
        if t is None:
            return
        t.state, t.finished = DONE, self._tick()
        t.reward, t.failure = (None, failure) if failure is not None else (reward, None)
        t.cause = cause if failure is not None else None
        t.began = t.began or t.started  # it trained, its start unseen (``Ledger.outcome``)
        self.index.refile(t)

    @rule(i=st.integers(0, 50))
    def fail_for_infrastructure(self, i: int) -> None:  # streaks of these stop a search
        self.settle(i, 0.0, FAILURES[3])

    @rule(i=st.integers(0, 50), cause=st.sampled_from([Cause.IMAGE_PULL_BACK_OFF,
                                                        Cause.CREATE_CONTAINER_CONFIG_ERROR]))
    def cannot_start(self, i: int, cause: Cause) -> None:  # streaks of these are systemic
        if self._of(LAUNCHED, i) is None:  # launched, and refused at once
            self.launch(i, pack=False, starts=False)
        self.settle(i, 0.0, crash_failure(ChildState("failed", reason=cause.value)), cause)

    @rule(i=st.integers(0, 50), train=st.booleans(), reward=REWARDS)
    def release(self, i: int, train: bool, reward: float) -> None:
        """A duplicate held behind a trial: trained after a crash, or given its result."""
        t = self._of(HELD, i)
        if t is None:
            return
        if train:
            t.state, t.source = QUEUED, "trained"
        else:
            t.state, t.reward, t.finished = DONE, reward, self._tick()
        self.index.refile(t)

    @rule(i=st.integers(0, 50), reached=st.integers(1, 3))
    def stop(self, i: int, reached: int) -> None:
        """The early-stopping rule stops a child, and marks done duplicates of it stopped."""
        t = self._of(LAUNCHED, i)
        if t is None:
            return
        curve = [0.1 * (k + 1) for k in range(reached)]
        t.stopped_at, t.curve, t.stop_pending = 100 * reached, curve, True
        t.state, t.reward, t.finished = DONE, curve[-1], self._tick()
        self.index.refile(t)
        for d in self.index.with_print(t.fingerprint):
            if d.source == "duplicate" and d.state == DONE and d.stopped_at is None:
                d.stopped_at, d.stop_pending = t.stopped_at, True
                self.index.refile(d)

    @rule()
    def finish_stops(self) -> None:
        for t in self.index.stop_pending():
            t.stop_pending = False
            self.index.refile(t)

    @rule(n=st.integers(0, 4))
    def read_curves(self, n: int) -> None:
        for t in self.index.uncurved():
            t.curve = [0.5] * n
            self.index.refile(t)

    @rule()
    def resume(self) -> None:
        """The trials through their checkpointed form, the index rebuilt from them: the same
        answers as the index kept through every change (the invariants compare both)."""
        kept = self.index
        self.trials = [Trial.from_dict(t.as_dict()) for t in self.trials]
        self.index = TrialIndex.of(self.trials, STREAK, SINCE)
        assert answers(self.index, self.trials) == answers(kept, self.trials)
        self._watch()  # a cursor holds from one start to the next

    @invariant()
    def agrees_with_a_recomputation(self) -> None:
        trials, index = self.trials, self.index
        assert answers(index, trials) == from_scratch(trials)
        assert answers(TrialIndex.of(trials, STREAK, SINCE), trials) == from_scratch(trials)

    @invariant()
    def a_watcher_of_settles_reads_each_settle_once_and_finds_the_systemic_streak(self) -> None:
        """What the operator reads each tick (``settled_since`` from its cursor): exactly the
        trials done since it last read, each once; the streak fed with them is ``systemic``."""
        new, self.cursor = self.index.settled_since(self.cursor)
        assert sorted(ids(new)) == sorted({t.trial_id for t in self.trials if t.state == DONE}
                                          - self.watched)
        assert len(set(ids(new))) == len(new)
        self.watched |= set(ids(new))
        for after, streak in self.streaks.items():
            streak.add(new)
            assert streak.systemic() == systemic(self.trials, after)

    @invariant()
    def counts_the_gpu_hours_of_every_launch(self) -> None:
        now = self.clock + 0.5
        every = gpu_hours(((t.launch, t.began, t.finished) for t in trained(self.trials)), now, 2)
        assert math.isclose(self.index.gpu_hours(now, 2), every, rel_tol=1e-9, abs_tol=1e-12)

    @invariant()
    def the_brake_decides_as_over_every_trial(self) -> None:
        for max_failed in (None, 1, 2, 4):
            budget = BudgetSpec(max_failed=max_failed, stop_after_infrastructure_failures=STREAK)
            assert stop_reason(self.index.brake_view(max_failed), budget, SINCE) == \
                stop_reason(self.trials, budget, SINCE)


def ids(trials: Any) -> list[str]:
    return [t.trial_id for t in trials]


def prints(trials: list[Trial]) -> list[str]:
    return sorted({t.fingerprint for t in trials} | {"fp-unknown"})


def answers(index: TrialIndex, trials: list[Trial]) -> dict[str, Any]:
    """What a tick reads from the index, as plain values."""
    p = index.progress(len(trials), 10)
    size = 3
    batches = []
    k = 0
    while (batch := index.done_in_order(k * size, (k + 1) * size)) is not None:
        batches.append(ids(batch))
        k += 1
    return {
        "progress": (p, p.best.trial_id if p.best else None),
        "tally": index.tally(),
        "queued": ids(index.in_state(QUEUED)),
        "launched": ids(index.in_state(LAUNCHED)),
        "held": ids(index.in_state(HELD)),
        "live": ids(index.live()),
        "stop_pending": ids(index.stop_pending()),
        "uncurved": ids(index.uncurved()),
        "history": Counter(index.history),
        "prints": {f: ids(index.with_print(f)) for f in prints(trials)},
        "held_behind": {f: ids(index.held_behind(f)) for f in prints(trials)},
        "batches": batches,
        "running_launches": index.running_launches(),
        "every": ids(index),
    }


def from_scratch(trials: list[Trial]) -> dict[str, Any]:
    """The same answers from the pure functions over every trial."""
    launched = [t for t in trials if t.state == LAUNCHED]
    p = summarize(trials, 10, running_launches(t.launch for t in launched))
    size = 3
    batches = []
    k = 0
    while (batch := generation_batch(trials, k, size)) is not None:
        batches.append(ids(batch))
        k += 1

    def in_state(state: str) -> list[str]:
        return [t.trial_id for t in trials if t.state == state]

    return {
        "progress": (p, p.best.trial_id if p.best else None),
        "tally": tally(trials),
        "queued": in_state(QUEUED),
        "launched": in_state(LAUNCHED),
        "held": in_state(HELD),
        "live": [t.trial_id for t in trials if t.state in (QUEUED, LAUNCHED)],
        "stop_pending": [t.trial_id for t in trials if t.stop_pending],
        "uncurved": [t.trial_id for t in trials if t.state == DONE and t.source == "trained"
                     and t.curve is None and t.run_id is not None],
        "history": Counter(history(trials)),
        "prints": {f: [t.trial_id for t in trials if t.fingerprint == f] for f in prints(trials)},
        "held_behind": {f: [t.trial_id for t in trials if t.fingerprint == f
                            and t.state == HELD] for f in prints(trials)},
        "batches": batches,
        "running_launches": p.packs,
        "every": ids(trials),
    }


Trials.TestCase.settings = settings(max_examples=100, stateful_step_count=50, deadline=None)
TestTrialIndex = Trials.TestCase


def test_ranks_find_the_kth_marked_index_as_a_sorted_list_does() -> None:
    ranks, marked = Ranks(), set[int]()
    for i in [5, 0, 17, 3, 64, 2, 33, 1000, 7]:
        ranks.mark(i)
        marked.add(i)
        assert [ranks.kth(k) for k in range(len(marked))] == sorted(marked)
    for i in [3, 1000, 5, 4]:
        ranks.unmark(i)
        marked.discard(i)
        assert [ranks.kth(k) for k in range(len(marked))] == sorted(marked)
    assert len(ranks) == len(marked) and 17 in ranks and 3 not in ranks
