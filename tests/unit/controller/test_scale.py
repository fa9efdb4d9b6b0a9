"""What keeps a long search's bookkeeping cheap, against the in-memory fakes (tests/unit/
controller/fakes.py) and a real local checkpoint store: blocks of done trials written once, the
evaluation cache asked once per generation, runs of proposed trials created without a lookup,
and a resume that reads a result which ended after the last checkpoint instead of training it
again."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from orchestrator.adapters.storage import LocalStore
from orchestrator.contract import Tag
from orchestrator.loop.checkpoint import CHECKPOINT_KEY, SEGMENT, Segments, read, segment_key, write
from orchestrator.loop.ledger import LAUNCHED, QUEUED
from orchestrator.loop.trials import DONE, Trial
from orchestrator.search.registry import make_strategy

from .fakes import FakeBackend, FakeRun
from .test_controller import make_controller, make_spec


class CountingStore(LocalStore):
    """A local store that counts the writes of each key."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.puts: dict[str, int] = {}

    def put(self, key: str, data: bytes) -> None:
        self.puts[key] = self.puts.get(key, 0) + 1
        super().put(key, data)


def trials(n: int, done: int) -> list[Trial]:
    spec = make_spec()
    strategy = make_strategy("random", spec.space.build(), 0)
    out = []
    for i, cand in enumerate(strategy.propose(n)):
        t = Trial(f"s1-t{i:05d}", i, cand, f"fp{i}", QUEUED)
        if i < done:
            t.state, t.run_id, t.reward, t.launches = DONE, f"run-{i}", 0.5 + i / 10_000, 1
        out.append(t)
    return out


def test_a_checkpoint_writes_each_block_of_done_trials_once_and_reads_every_trial_back(
        tmp_path: Path) -> None:
    spec, store, sealed = make_spec(), CountingStore(tmp_path), Segments()
    ledger = trials(2 * SEGMENT + 40, done=2 * SEGMENT + 10)
    ledger[5].run_id = None  # a done trial still owed its run keeps its block open
    write(store, spec, {"rng": 1}, ledger, 3, sealed)
    write(store, spec, {"rng": 2}, ledger, 3, sealed)
    assert sorted(sealed.keys) == [SEGMENT]
    assert store.puts == {segment_key(SEGMENT): 1, CHECKPOINT_KEY: 2}  # written once

    saved = read(store, "s1")
    assert saved is not None
    assert [t.as_dict() for t in saved.trials] == [t.as_dict() for t in ledger]
    assert (saved.strategy, saved.generations_logged, saved.segments.keys) == (
        {"rng": 2}, 3, sealed.keys)

    ledger[5].run_id = "run-5"  # its block closes at the next checkpoint
    write(store, spec, {"rng": 3}, ledger, 3, saved.segments)
    assert store.puts[segment_key(0)] == 1 and store.puts[segment_key(SEGMENT)] == 1
    (tmp_path / segment_key(0)).unlink()
    with pytest.raises(FileNotFoundError, match=r"trials-000000\.json, which is missing"):
        read(store, "s1")


def test_the_cache_is_asked_once_per_generation_and_proposed_runs_are_created_without_lookup(
        tmp_path: Path) -> None:
    """FakeTracker fails a ``new`` creation of a run that exists (MLflow would duplicate it)."""
    ctl, tracker, _ = make_controller(tmp_path, budget={"trials": 12}, generation=5)
    final = ctl.run()
    assert final.trained == 12
    generations = -(-final.samples // 5)
    assert len(tracker.lookups) == generations  # not one per proposal
    assert all(len(asked) <= 5 for asked in tracker.lookups)
    assert len(tracker.runs) == final.samples  # one run per trial, none twice


def test_a_resumed_search_reads_a_result_that_ended_after_its_last_checkpoint(
        tmp_path: Path) -> None:
    """The checkpoint after settles lags (``checkpoint_interval``): here it still says queued,
    without a run, for trials whose children ran and finished before the controller died."""
    first, tracker, backend = make_controller(tmp_path, budget={"trials": 6}, parallelism=3)
    first.start(resume=False)
    first.tick()
    launched = [t for t in first.trials if t.state == LAUNCHED]
    assert len(launched) == 3
    stale = copy.deepcopy(first.trials)
    for t in stale:
        if t.state == LAUNCHED:
            t.state, t.run_id, t.launches, t.launch_id, t.started, t.began = (
                QUEUED, None, 0, None, None, None)
    write(first.store, first.spec, first.strategy.state_dict(), stale, 0, Segments())
    for t in launched:  # the children finished; their runs hold the results
        assert t.run_id is not None
        tracker.record_outcome(t.run_id, 0.75, None)

    again, _, _ = make_controller(tmp_path, tracker=tracker, budget={"trials": 6},
                                  parallelism=3)
    again.backend = fresh = FakeBackend(tracker)  # the old processes are gone
    final = again.run(resume=True)
    assert final.trained == 6
    ids = {t.trial_id for t in launched}
    assert not ids & set(fresh.launched)  # read from MLflow, not trained again
    assert all(t.reward == 0.75 and t.state == DONE for t in again.trials if t.trial_id in ids)
    assert len(backend.launched) + len(fresh.launched) == 6


class Watched(Trial):
    """A trial that records, while ``TOUCHED`` holds a set, the index of every trial whose
    attributes anything reads: what a tick passes over, counted rather than timed."""

    def __getattribute__(self, name: str) -> object:
        if TOUCHED:
            TOUCHED[-1].add(object.__getattribute__(self, "index"))
        return object.__getattribute__(self, name)


TOUCHED: list[set[int]] = []


def test_a_tick_reads_the_trials_in_flight_not_the_trials_settled_before(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A resumed search with 1,500 trials done: each tick (settle, propose, launch, series,
    checkpoint, progress) reads the trials in flight, those it proposes and settles, the block
    of trials the checkpoint still writes and the best trial, and no other trial settled
    before: its work does not grow with the trials so far."""
    from orchestrator.loop import checkpoint, controller
    from orchestrator.loop.trials import summarize

    monkeypatch.setattr(checkpoint, "Trial", Watched)
    monkeypatch.setattr(controller, "Trial", Watched)
    settled = 1500
    ctl, tracker, _ = make_controller(tmp_path, budget={"trials": settled + 60}, parallelism=4,
                                      generation=5)
    old = trials(settled, done=settled)
    for t in old:  # settled without training by an earlier controller: their runs exist
        t.source = "screen" if t.index % 7 == 0 else "trained"
        tracker.runs[str(t.run_id)] = FakeRun(str(t.run_id), t.trial_id, {Tag.SEARCH: "s1"},
                                              "FINISHED", t.reward)
    write(ctl.store, ctl.spec, ctl.strategy.state_dict(), old, settled // 5, Segments())
    ctl.start(resume=True)
    sealed = max(ctl._sealed.keys) + SEGMENT  # trials below: in blocks written once, never again
    assert sealed >= 5 * SEGMENT and isinstance(ctl.trials[0], Watched)

    TOUCHED.append(set())  # the instrument sees a pass over every trial
    summarize(ctl.trials, settled, 0)
    assert set(range(settled)) <= TOUCHED.pop()

    before, over = ctl.progress(), False
    for _ in range(40):
        TOUCHED.append(set())
        over = ctl.tick()
        best = ctl.progress().best
        touched = TOUCHED.pop()
        assert best is not None
        assert {i for i in touched if i < sealed} <= {best.index}, sorted(touched)[:20]
        if over:
            break
    after = ctl.progress()
    # children trained and settled, duplicates of them settled (the small space has few functions)
    assert after.trained - before.trained >= 20 and after.duplicates >= 20


@pytest.mark.parametrize("packing", [1, 2])
def test_the_index_a_search_keeps_equals_one_built_from_its_trials_after_every_tick(
        tmp_path: Path, packing: int) -> None:
    """Every change the loop makes to a trial is refiled: through crashes, lost children
    launched again, packs, duplicates held and released and a resume, the controller's index
    answers as one built from scratch from its trials (tests/unit/test_trial_index.py)."""
    import math

    from orchestrator.loop.index import TrialIndex
    from tests.unit.test_trial_index import answers

    def same(ctl: Any) -> bool:
        fresh = TrialIndex.of(ctl.trials, 3, ctl._since)
        now = ctl.clock()
        return answers(ctl._index, ctl.trials) == answers(fresh, ctl.trials) and math.isclose(
            ctl._index.gpu_hours(now, 1), fresh.gpu_hours(now, 1), rel_tol=1e-9)

    over = {"budget": {"trials": 24, "stop_after_infrastructure_failures": 3},
            "parallelism": 3, "packing": packing, "generation": 5}
    first, tracker, backend = make_controller(tmp_path, **over)
    backend.crash = lambda expr: expr.endswith(", sin(x))")
    backend.vanish = lambda expr: expr.startswith("mul(tanh(")
    first.start(resume=False)
    checks = []
    for _ in range(6):
        first.tick()
        checks.append(same(first))
    first.checkpoint()
    again, _, _ = make_controller(tmp_path, tracker=tracker, **over)
    again.backend = FakeBackend(tracker, crash=backend.crash)
    final = again.run(resume=True, on_progress=lambda p: checks.append(same(again)))
    assert final.finished and len(checks) > 8 and all(checks)
    assert any(t.failure and t.failure.startswith("crashed") for t in again.trials)
    assert any(t.launches > 1 for t in again.trials) and final.duplicates > 0


def test_the_operators_watch_of_children_reads_only_the_trials_settled_since_its_last_tick(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The operator's watch of children that cannot start (``SearchRunner._watch_children``:
    its Events and the systemic streak) after each tick of a resumed search with 1,500 trials
    done, some of them failed: it reads the trials that settled in that tick and no other."""
    import threading

    from orchestrator.cluster.operator import SearchRunner
    from orchestrator.loop import checkpoint, controller

    monkeypatch.setattr(checkpoint, "Trial", Watched)
    monkeypatch.setattr(controller, "Trial", Watched)
    settled = 1500
    ctl, tracker, backend = make_controller(tmp_path, budget={"trials": settled + 40},
                                            parallelism=4, generation=5)
    backend.crash = lambda expr: expr.endswith(", sin(x))")
    old = trials(settled, done=settled)
    for t in old:
        t.source = "trained"
        if t.index % 5 == 0:
            t.reward, t.failure, t.finished = None, "crashed: exit code 1", float(t.index)
        tracker.runs[str(t.run_id)] = FakeRun(str(t.run_id), t.trial_id, {Tag.SEARCH: "s1"},
                                              "FINISHED", t.reward)
    write(ctl.store, ctl.spec, ctl.strategy.state_dict(), old, settled // 5, Segments())
    ctl.start(resume=True)
    events: list[tuple[str, str, str]] = []
    runner = SearchRunner({"metadata": {"namespace": "ns", "name": "s1"}}, None, None,  # type: ignore[arg-type]
                          threading.Event(), event=lambda *e: events.append(e))
    runner._watch_from(ctl)

    TOUCHED.append(set())  # the instrument sees a pass over every trial (what the watch was)
    for t in ctl.trials:
        _ = t.failure
    assert set(range(settled)) <= TOUCHED.pop()

    read_new = 0
    for _ in range(40):
        done_before = {t.index for t in ctl.trials if t.state == DONE}
        over = ctl.tick()
        TOUCHED.append(set())
        runner._watch_children(ctl)
        touched = TOUCHED.pop()
        assert not touched & done_before, sorted(touched & done_before)[:20]
        read_new += len(touched)
        if over:
            break
    assert read_new >= 20 and ctl.progress().trained - settled >= 20
    assert not events and runner._children is None  # no child here failed to start
