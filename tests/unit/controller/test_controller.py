"""The search loop against in-memory fakes of the tracker and backend (tests/unit/controller/
fakes.py) and a real local checkpoint store: budget, parallelism, dedup, the evaluation cache,
the screen, crashes and resume."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator.adapters.storage import LocalStore
from orchestrator.contract import Cause
from orchestrator.errors import ConfigError
from orchestrator.loop.controller import Controller
from orchestrator.loop.trials import DONE
from orchestrator.search.registry import make_strategy
from orchestrator.spec import parse_spec

from .fakes import FakeBackend, FakeTracker

SMALL_SPACE = {"units": 1, "unary": ["id", "relu", "sin", "tanh"], "binary": ["add", "max", "mul"]}


def make_spec(**over: Any):
    base: dict[str, Any] = {
        "name": "s1",
        "space": SMALL_SPACE,
        "strategy": {"name": "random"},
        "budget": {"trials": 12},
        "parallelism": 3,
        "generation": 5,
        "child": {"model": "mlp", "dataset": "digits", "steps": 10},
    }
    for k, v in over.items():
        base[k] = v
    return parse_spec(base)


def make_controller(tmp_path: Path, tracker: FakeTracker | None = None, **over: Any
                    ) -> tuple[Controller, FakeTracker, FakeBackend]:
    spec = make_spec(**over)
    tracker = tracker or FakeTracker()
    backend = FakeBackend(tracker)
    ctl = Controller(
        spec=spec,
        strategy=make_strategy(spec.strategy.name, spec.space.build(), spec.seed,
                               **spec.strategy.kwargs()),
        tracker=tracker, store=LocalStore(tmp_path / spec.name), backend=backend,
        tracking_uri="fake://", sleep=lambda s: None,
    )
    return ctl, tracker, backend


def test_a_search_trains_exactly_its_budget_and_settles_every_trial(tmp_path: Path) -> None:
    ctl, tracker, backend = make_controller(tmp_path)
    final = ctl.run()
    assert final.finished
    assert final.trained == 12
    assert len(backend.launched) == 12
    assert all(t.state == DONE for t in ctl.trials if t.run_id)
    trained = [t for t in ctl.trials if t.source == "trained" and t.state == DONE]
    assert len(trained) == 12
    for t in trained:
        run = tracker.runs[t.run_id]
        assert run.tags["actsearch.fingerprint"] == t.fingerprint
        assert run.tags["actsearch.config_hash"] == ctl.spec.child.config_hash()
        assert run.tags["mlflow.parentRunId"] == "parent-s1"
        assert run.reward == t.reward


def test_never_more_children_than_parallelism_at_once(tmp_path: Path) -> None:
    ctl, _, backend = make_controller(tmp_path, parallelism=2)
    ctl.run()
    assert backend.max_running == 2


def test_a_function_is_never_trained_twice_in_a_search(tmp_path: Path) -> None:
    ctl, _, _backend = make_controller(tmp_path, budget={"trials": 40, "max_samples": 150})
    ctl.run()
    trained_prints = [t.fingerprint for t in ctl.trials if t.source == "trained"]
    assert len(trained_prints) == len(set(trained_prints))
    dups = [t for t in ctl.trials if t.source == "duplicate"]
    assert dups, "a 48-function space sampled 150 times must repeat functions"
    by_print = {t.fingerprint: t.reward for t in ctl.trials if t.source == "trained"}
    for d in dups:
        assert d.state == DONE and d.reward == by_print[d.fingerprint]


def test_a_second_search_reuses_the_first_searchs_results(tmp_path: Path) -> None:
    first, tracker, _ = make_controller(tmp_path, budget={"trials": 30, "max_samples": 200})
    first.run()
    second, _, _backend2 = make_controller(
        tmp_path, tracker=tracker, name="s2", budget={"trials": 10, "max_samples": 60}, seed=3
    )
    final = second.run()
    hits = [t for t in second.trials if t.source == "cache"]
    assert final.cache_hits == len(hits) > 0
    known = {t.fingerprint: t.reward for t in first.trials if t.source == "trained"}
    for t in hits:
        assert t.reward == known[t.fingerprint]
    assert not {t.fingerprint for t in second.trials if t.source == "trained"} & set(known)
    assert [m for _, _, m in tracker.generations if m["cache_hits"] > 0]


def test_the_leaderboard_reads_a_cache_hits_test_accuracy_from_the_run_it_repeats(
        tmp_path: Path) -> None:
    """A cache hit trained nothing: its row's test accuracy is its original run's."""
    from orchestrator.loop.report import publish

    first, tracker, _ = make_controller(tmp_path, budget={"trials": 30, "max_samples": 200})
    first.run()
    tested = {t.fingerprint: 0.5 + t.index / 100 for t in first.trials if t.source == "trained"}
    for run in tracker.runs.values():  # this fake's cache may name any run of the function
        if run.fingerprint in tested:
            tracker.log_metrics(run.run_id, 10, {"test_accuracy": tested[run.fingerprint]})
    second, _, _ = make_controller(tmp_path, tracker=tracker, name="s2",
                                   budget={"trials": 10, "max_samples": 60}, seed=3)
    second.run()
    rows, _ = publish(second, 50, tmp_path / "report")
    hits = {t.trial_id for t in second.trials if t.source == "cache"}
    assert hits & {e.trial_id for e in rows}
    for e in rows:
        assert e.test_accuracy == (tested[e.fingerprint] if e.trial_id in hits else None)


def test_a_different_child_config_does_not_hit_the_cache(tmp_path: Path) -> None:
    first, tracker, _ = make_controller(tmp_path, budget={"trials": 20, "max_samples": 100})
    first.run()
    other, _, _ = make_controller(
        tmp_path, tracker=tracker, name="s2", child={"model": "mlp", "dataset": "digits",
                                                      "steps": 11}
    )
    assert other.run().cache_hits == 0


def test_screened_functions_are_never_launched_and_get_the_failure_reward(tmp_path: Path) -> None:
    ctl, tracker, backend = make_controller(
        tmp_path, space={"units": 1, "unary": ["id", "beta"], "binary": ["add", "mul"]},
        budget={"trials": 8, "max_samples": 20}, strategy={"name": "exhaustive"},
    )
    ctl.run()
    assert len(ctl.trials) == 8  # the whole space, then the exhaustive strategy has no more
    screened = [t for t in ctl.trials if t.source == "screen"]
    assert [t.candidate.expression for t in screened] == ["add(beta(x), beta(x))",
                                                          "mul(beta(x), beta(x))"]
    assert all(t.failure.startswith("screened: constant") for t in screened)
    assert not set(backend.launched) & {t.trial_id for t in screened}
    for t in screened:
        assert tracker.runs[t.run_id].status == "FAILED"


def test_a_crashed_child_fails_its_run_with_the_reason(tmp_path: Path) -> None:
    ctl, tracker, backend = make_controller(tmp_path, budget={"trials": 6})
    backend.crash = lambda expr: "sin" in expr
    ctl.run()
    crashed = [t for t in ctl.trials if (t.failure or "").startswith("crashed")]
    assert crashed
    for t in crashed:
        assert "OOMKilled (exit code 137)" in t.failure
        assert tracker.runs[t.run_id].status == "FAILED"


def test_a_vanished_child_is_launched_again_then_failed(tmp_path: Path) -> None:
    ctl, _, backend = make_controller(tmp_path, budget={"trials": 4})
    backend.vanish = lambda expr: True
    ctl.run()
    settled = [t for t in ctl.trials if t.source == "trained" and t.state == DONE]
    assert len(settled) == 4
    for t in settled:
        assert t.launches == ctl.max_launches
        assert backend.launched.count(t.trial_id) == ctl.max_launches
        assert t.failure.startswith("crashed")


def test_a_nan_child_counts_as_failed_with_the_failure_reward(tmp_path: Path) -> None:
    ctl, _, backend = make_controller(tmp_path, budget={"trials": 8},
                                      strategy={"name": "random", "failure_reward": -1.0})
    backend.reward = lambda expr: None if "mul" in expr else 0.9
    ctl.run()
    nan = [t for t in ctl.trials if t.failure == "nan"]
    assert nan
    assert ctl.progress().failed == len(nan)


def test_gpu_hours_budget_stops_launching(tmp_path: Path) -> None:
    clock = iter(range(0, 10**6, 600))  # every clock read advances 10 minutes
    ctl, _, backend = make_controller(tmp_path, budget={"trials": 50, "gpu_hours": 1.0})
    ctl.clock = lambda: float(next(clock))
    ctl.run()
    assert 0 < len(backend.launched) < 50


def test_generation_metrics_are_logged_to_the_parent_run(tmp_path: Path) -> None:
    ctl, tracker, _ = make_controller(tmp_path, budget={"trials": 10}, strategy={"name": "ppo",
                                      "options": {"batch_size": 5}})
    ctl.run()
    steps = [s for _, s, _ in tracker.generations]
    assert steps == list(range(len(steps))) and len(steps) >= 2
    first = tracker.generations[0][2]
    assert {"gen_mean_reward", "gen_max_reward", "unique_functions", "cache_hits",
            "policy_entropy"} <= set(first)


@pytest.mark.parametrize("strategy", ["random", "ppo"])
def test_resume_continues_without_retraining_or_losing_trials(tmp_path: Path, strategy: str) -> None:
    """Stop after a few ticks and build a new controller on the same store and tracker. The fake
    backend lost its in-flight children with the old process, so the resumed controller launches
    exactly those again; nothing finished is launched twice and every trial appears once. With a
    strategy that ignores rewards the ledger equals an uninterrupted run's; with PPO (whose later
    proposals depend on the order results arrive) the bookkeeping does."""
    opts = {"name": strategy, "options": {"batch_size": 5}} if strategy == "ppo" else {"name": strategy}
    full, _, _ = make_controller(tmp_path / "a", strategy=opts)
    full.run()

    part, tracker, backend = make_controller(tmp_path / "b", strategy=opts)
    part.start(resume=False)
    for _ in range(6):
        part.tick()
    in_flight = {t.trial_id for t in part.trials if t.state == "launched"}
    finished_before = set(backend.launched) - in_flight
    assert in_flight and finished_before

    again, _, backend2 = make_controller(tmp_path / "b", tracker=tracker, strategy=opts)
    final = again.run(resume=True)
    ids = [t.trial_id for t in again.trials]
    assert ids == [again.trial_id(i) for i in range(len(ids))]
    assert all(t.state == "done" or (t.state == "queued" and t.run_id is None)
               for t in again.trials)
    assert final.trained == full.progress().trained == 12
    assert not set(backend2.launched) & finished_before
    assert in_flight <= set(backend2.launched)
    runs = tracker.trial_runs("s1")
    assert sorted(runs) == sorted(t.trial_id for t in again.trials if t.run_id)
    if strategy == "random":
        assert [(t.trial_id, t.candidate.expression, t.reward) for t in again.trials] == \
            [(t.trial_id, t.candidate.expression, t.reward) for t in full.trials]
    else:
        for ctl in (full, again):
            observed = sum(t.state == "done" for t in ctl.trials)
            assert len(ctl.strategy.updates) == observed // 5


def test_resume_without_a_checkpoint_starts_fresh(tmp_path: Path) -> None:
    ctl, _, _ = make_controller(tmp_path, budget={"trials": 3})
    assert ctl.run(resume=True).trained == 3


def test_a_resumed_search_takes_a_raised_budget_and_parallelism_and_records_them(
        tmp_path: Path) -> None:
    first, tracker, _ = make_controller(tmp_path, budget={"trials": 4})
    assert first.run().trained == 4
    more, _, backend = make_controller(tmp_path, tracker=tracker, budget={"trials": 9},
                                       parallelism=5)
    assert more.run(resume=True).trained == 9
    assert [c.field for c in more.amended] == ["budget.trials", "parallelism"]
    assert backend.max_running > 3  # beyond the parallelism it started with
    assert '"trials": 9' in tracker.texts[("parent-s1", "search_spec.json")]
    assert sum(t.source == "trained" and t.state == DONE for t in more.trials) == 9
    again, _, _ = make_controller(tmp_path, tracker=tracker, budget={"trials": 9},
                                  parallelism=5)
    again.start(resume=True)
    assert again.amended == ()  # the checkpoint carries the spec in force


def test_a_resumed_search_refuses_an_edit_of_its_child_config_and_writes_nothing(
        tmp_path: Path) -> None:
    first, tracker, _ = make_controller(tmp_path, budget={"trials": 4})
    first.run()
    store = LocalStore(tmp_path / "s1")
    before = store.get("controller.pt")
    texts = dict(tracker.texts)
    edited, _, backend = make_controller(
        tmp_path, tracker=tracker, budget={"trials": 8},
        child={"model": "mlp", "dataset": "digits", "steps": 20})
    with pytest.raises(ConfigError) as e:
        edited.run(resume=True)
    assert "child.steps 10 → 20" in str(e.value) and "budget" not in str(e.value).split(":")[1]
    assert store.get("controller.pt") == before and tracker.texts == texts
    assert backend.launched == []


def test_polls_ask_only_about_trials_in_flight_and_each_result_is_observed_once(
        tmp_path: Path) -> None:
    ctl, tracker, backend = make_controller(tmp_path, budget={"trials": 20}, parallelism=3)
    observed: list[str] = []
    observe = ctl.strategy.observe
    ctl.strategy.observe = lambda results: (  # type: ignore[method-assign]
        observed.extend(r.candidate.expression for r in results), observe(results))[-1]
    answers: list[set[str]] = []
    poll = tracker.ended_runs
    tracker.ended_runs = lambda search, runs: (  # type: ignore[method-assign]
        found := poll(search, runs), answers.append(set(found)))[0]
    ctl.run()
    assert len(backend.launched) == 20
    assert max(len(p) for p in tracker.polls) <= 3  # never more than parallelism in flight
    by_trial = {t.trial_id: t for t in ctl.trials}
    for asked in tracker.polls:  # every trial asked about was launched, by its own run id
        assert all(by_trial[tid].run_id == run_id for tid, run_id in asked.items())
    for i, settled in enumerate(answers):  # a trial whose run ended is never asked about again
        assert not any(settled & set(later) for later in tracker.polls[i + 1:])
    # each settled trial's result reaches the strategy once
    assert len(observed) == sum(t.state == DONE for t in ctl.trials)


def test_max_failed_stops_the_search_cancels_its_children_and_a_raised_limit_resumes_it(
        tmp_path: Path) -> None:
    ctl, tracker, backend = make_controller(tmp_path, budget={"trials": 12, "max_failed": 2})
    backend.crash = lambda expr: True  # every child dies (OOMKilled): nothing about infrastructure
    ctl.start(resume=False)
    ctl.tick()
    backend.running[backend.launched[0]] = 10**6  # this one trains on, and is in flight
    while not ctl.tick():
        pass
    final = ctl.progress()
    assert final.stopped is not None and ctl.stopped == final.stopped
    assert final.stopped.reason == "TooManyFailures"
    assert final.failed == 2 and final.trained == 3
    assert not backend.running  # the children in flight were cancelled
    in_flight = [t for t in ctl.trials if t.state == "launched"]

    assert in_flight  # cancelled, still launched in the checkpoint
    before = len(backend.launched)

    again, _, _ = make_controller(tmp_path, tracker=tracker, budget={"trials": 12})
    again.backend = backend
    backend.crash = lambda expr: False
    resumed = again.run(resume=True)  # budget.max_failed removed: a live edit
    assert resumed.stopped is None and resumed.trained == 12
    assert {t.trial_id for t in in_flight} <= set(backend.launched[before:])  # launched again


def test_diverged_children_do_not_count_against_max_failed(tmp_path: Path) -> None:
    ctl, _, backend = make_controller(tmp_path, budget={"trials": 8, "max_failed": 1})
    backend.reward = lambda expr: None  # every loss diverges: the functions' verdict
    final = ctl.run()
    assert final.stopped is None and final.trained == 8 and final.failed == 8


def test_children_failing_for_one_infrastructure_reason_stop_the_search_early(
        tmp_path: Path) -> None:
    from orchestrator.backends.base import ChildState

    ctl, _, backend = make_controller(tmp_path, budget={"trials": 50})
    backend.crash = lambda expr: True
    backend.crashed = ChildState("failed", reason="actsearch-train: MLflow: Connection refused",
                                 exit_code=4)
    final = ctl.run()
    assert final.stopped is not None and final.stopped.reason == "InfrastructureFailures"
    assert "could not be reached (exit code 4)" in final.stopped.message
    assert "Connection refused" in final.stopped.message
    assert 5 <= final.trained <= 5 + 3  # the streak, and at most `parallelism` more in flight


def test_the_infrastructure_stop_can_be_turned_off(tmp_path: Path) -> None:
    from orchestrator.backends.base import ChildState

    ctl, _, backend = make_controller(tmp_path, budget={"trials": 12,
                                                         "stop_after_infrastructure_failures": 0})
    backend.crash = lambda expr: True
    backend.crashed = ChildState("failed", reason="FailedCreate: forbidden",
                                 cause=Cause.FAILED_CREATE)
    final = ctl.run()
    assert final.stopped is None and final.trained == 12 and final.failed == 12


def test_words_of_an_infrastructure_failure_do_not_stop_a_search_whose_children_just_exited(
        tmp_path: Path) -> None:
    """The brake reads the cause the backend reported, not the failure text: a local child's
    last log line (its failure's message) may name anything."""
    from orchestrator.backends.base import ChildState

    ctl, _, backend = make_controller(tmp_path, budget={"trials": 12})
    backend.crash = lambda expr: True
    backend.crashed = ChildState("failed", exit_code=1, reason="pod p cannot start: "
                                 "ImagePullBackOff: as the child logged it (exit code 4)")
    final = ctl.run()
    assert final.stopped is None and final.trained == 12 and final.failed == 12
    crashed = {t.cause for t in ctl.trials if t.state == DONE and t.source == "trained"}
    assert crashed == {Cause.EXITED}


def test_a_reworded_message_still_stops_the_search_for_its_cause(tmp_path: Path) -> None:
    from orchestrator.backends.base import ChildState

    ctl, _, backend = make_controller(tmp_path, budget={"trials": 50})
    backend.crash = lambda expr: True
    backend.crashed = ChildState("failed", reason="the registry said no",
                                 cause=Cause.IMAGE_PULL_BACK_OFF)
    final = ctl.run()
    assert final.stopped is not None and final.stopped.reason == "InfrastructureFailures"
    assert final.stopped.message.startswith("the last 5 children failed because the image "
                                            "cannot be pulled")
    assert final.stopped.message.endswith("the last one: crashed: the registry said no")
