"""Replay with early stopping on hand-made tables: a stopped child costs the steps it reached,
reports its last accuracy, and never counts as a complete result or as reaching the goal."""

from __future__ import annotations

from orchestrator.search.base import Candidate
from orchestrator.search.stopping import AshaRule, MedianRule
from orchestrator.space import SearchSpace, encode, parse
from orchestrator.table import Curve, Entry, Table
from orchestrator.table.functions import census
from orchestrator.table.staged import StagedReward, outcome

UNARY = ("id", "relu", "sigmoid", "sin", "tanh")
BINARY = ("max", "add", "mul")
SPACE = SearchSpace(units=1, unary=UNARY, binary=BINARY)


def table(curves: list[tuple[float | None, ...]]) -> Table:
    """One function per curve, the same curve on both seeds (so no draw matters)."""
    functions = census(SPACE).functions[: len(curves)]
    entries = tuple(Entry(f.expression, f.fingerprint, {0: Curve(c, c[-1]), 1: Curve(c, c[-1])})
                    for f, c in zip(functions, curves, strict=True))
    meta = {"steps": [100, 200, 300], "space": {"units": 1, "unary": list(UNARY),
                                                 "binary": list(BINARY)}}
    return Table(meta, entries)


def cand(e: Entry) -> Candidate:
    return Candidate(encode(parse(e.expression)), e.expression, 0.0, 0)


GOOD = [(0.6, 0.7, 0.8), (0.62, 0.72, 0.82), (0.64, 0.74, 0.84)]


def test_without_a_rule_every_child_trains_to_the_end() -> None:
    t = table([*GOOD, (0.1, 0.2, 0.3)])
    reward = StagedReward(t, 0, None)
    results = [reward(cand(e)) for e in t.entries]
    assert [r.reward for r in results] == [0.8, 0.82, 0.84, 0.3]
    out = outcome(t, reward.runs, frozenset({t.entries[2].fingerprint}))
    assert (out.child_steps, out.stopped, out.best_accuracy) == (1200, 0, 0.84)
    assert (out.evaluations_to_goal, out.steps_to_goal) == (3, 900)


def test_a_stopped_child_costs_its_steps_reports_its_last_accuracy_and_is_not_complete() -> None:
    t = table([*GOOD, (0.1, 0.2, 0.99)])  # a late bloomer the median rule stops at step 100
    reward = StagedReward(t, 0, MedianRule())
    results = [reward(cand(e)) for e in t.entries]
    assert results[3].ok and results[3].reward == 0.1
    out = outcome(t, reward.runs, frozenset({t.entries[3].fingerprint}))
    assert (out.child_steps, out.stopped) == (1000, 1)
    assert out.best_accuracy == 0.84  # the stopped 0.99 function was never found
    assert out.evaluations_to_goal is None and out.steps_to_goal is None


def test_concurrency_hides_the_trials_started_just_before() -> None:
    t = table([*GOOD, (0.1, 0.2, 0.3)])
    for concurrency, stopped in ((1, 1), (2, 0)):
        reward = StagedReward(t, 0, MedianRule(), concurrency=concurrency)
        for e in t.entries:
            reward(cand(e))
        assert sum(not r.complete for r in reward.runs) == stopped


def test_asha_stops_a_diverged_child_where_it_diverged() -> None:
    t = table([*GOOD, (0.5, None, None)])
    reward = StagedReward(t, 0, AshaRule(min_trials=10))
    results = [reward(cand(e)) for e in t.entries]
    assert not results[3].ok and reward.charged(results[3])
    assert reward.runs[3].steps == 200 and not reward.runs[3].complete
