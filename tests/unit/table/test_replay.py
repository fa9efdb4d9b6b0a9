"""search-sim's table replay on a tiny table written here: rewards are the table's seeds' final
accuracies, functions outside it are refused at no cost, a diverged seed costs an evaluation,
the top-1 % goal and the censored median are computed as documented."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli import main
from orchestrator.search import make_strategy
from orchestrator.search.base import Candidate
from orchestrator.search.simulate import simulate, summarize
from orchestrator.space import SearchSpace, encode, parse
from orchestrator.space.fingerprint import fingerprint
from orchestrator.table import Curve, Entry, Table, save
from orchestrator.table.functions import census
from orchestrator.table.replay import NOT_IN_TABLE, TableReward, table_space, top

UNARY = ("id", "relu", "sigmoid", "sin", "tanh")
BINARY = ("max", "add", "mul")
SPACE = SearchSpace(units=1, unary=UNARY, binary=BINARY)


def tiny_table(keep_every: int = 2) -> Table:
    """Every other distinct function of SPACE with two made-up seeds; the first one diverges on
    seed 1."""
    functions = census(SPACE).functions[::keep_every]
    entries = []
    for i, f in enumerate(functions):
        a, b = 0.5 + 0.4 * i / len(functions), 0.5 + 0.4 * i / len(functions) + 0.01
        curves = {0: Curve((a / 2, a), a - 0.01),
                  1: Curve((0.1, None), None, "nan") if i == 0 else Curve((b / 2, b), b)}
        entries.append(Entry(f.expression, f.fingerprint, curves))
    meta = {"steps": [10, 20], "space": {"units": 1, "unary": list(UNARY), "binary": list(BINARY)}}
    return Table(meta, tuple(entries))


def cand(text: str) -> Candidate:
    return Candidate(encode(parse(text)), text, 0.0, 0)


def test_rewards_are_a_seed_of_the_function_from_the_table() -> None:
    table = tiny_table()
    reward = TableReward(table, seed=0)
    seen = set()
    for e in table.entries[1:]:
        for _ in range(10):
            r = reward(cand(e.expression))
            assert r.ok and r.reward in {e.final(0), e.final(1)}
            seen.add(r.reward == e.final(0))
    assert seen == {True, False}  # both seeds are drawn


def test_out_of_table_proposals_are_refused_for_free_and_a_diverged_seed_costs() -> None:
    table = tiny_table()
    outside = next(f for f in census(SPACE).functions if table.get(f.fingerprint) is None)
    reward = TableReward(table, seed=0)
    r = reward(cand(outside.expression))
    assert not r.ok and r.failure == NOT_IN_TABLE and not reward.charged(r)
    first = table.entries[0]
    outcomes = {reward(cand(first.expression)).failure for _ in range(20)}
    assert outcomes == {None, "nan (table seed 1)"}
    for _ in range(50):
        r = reward(cand(first.expression))
        if reward.draws[first.fingerprint] == 1:
            break
    assert not r.ok and reward.charged(r)


def test_a_replayed_search_evaluates_only_table_functions_with_their_seeds_values() -> None:
    table = tiny_table()
    budget = 12
    trace = simulate(make_strategy("random", table_space(table), 1), TableReward(table, seed=1),
                     budget, batch=5)
    assert len(trace.rewards) == len(trace.keys) == budget
    assert len(set(trace.keys)) == budget  # each function once: repeats are reused
    for key, value in zip(trace.keys, trace.rewards, strict=True):
        entry = table.get(key)
        assert entry is not None
        assert value in {entry.final(s) for s in entry.seeds}
    assert trace.failures >= sum(v is None for v in trace.rewards)


def test_the_top_fraction_counts_every_function_but_ranks_only_whole_ones() -> None:
    table = tiny_table()
    n = len(table)
    goal = top(table, 0.01)
    assert goal.count == 1
    best = max(table.entries[1:], key=lambda e: e.mean_final() or 0)
    assert goal.fingerprints == {best.fingerprint} and goal.threshold == best.mean_final()
    assert top(table, 1.0).count == n - 1  # the diverged function is never among the best
    assert top(table, 0.2).count == -(-n // 5)
    with pytest.raises(ValueError):
        top(table, 0.0)


def test_the_goal_is_reached_at_the_first_top_function_whatever_its_seed_gave() -> None:
    from orchestrator.search.simulate import Trace

    traces = [Trace(rewards=[0.9, 0.1, 0.2], keys=["a", "top", "b"]),
              Trace(rewards=[0.3, None, 0.95], keys=["c", "d", "e"]),
              Trace(rewards=[0.2, 0.3], keys=["top", "f"])]
    s = summarize("random", traces, budget=3, threshold=0.5, targets={"top"})
    assert (s.reached, s.median_to_threshold) == (2, 2.0)


def test_search_sim_replays_a_table_file(tmp_path: Path) -> None:
    path = save(tiny_table(), tmp_path / "t.jsonl.gz")
    result = CliRunner().invoke(main, ["search-sim", "--table", str(path), "--strategy", "random",
                                       "--budget", "8", "--seeds", "3", "--top-fraction", "0.1",
                                       "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["top_functions"] == top(tiny_table(), 0.1).count
    (s,) = out["strategies"]
    assert s["seeds"] == 3 and 0 <= s["reached"] <= 3
    assert s["evaluations_to_threshold"]["reached"].count(True) == s["reached"]
    if s["reached"] == 0:
        assert s["median_evaluations_to_threshold"] is None
    assert 0 < s["best_after"][-1]["median"] <= 0.91


def test_search_sim_with_a_table_refuses_a_space_or_a_target(tmp_path: Path) -> None:
    path = save(tiny_table(), tmp_path / "t.jsonl.gz")
    r = CliRunner().invoke(main, ["search-sim", "--table", str(path), "--unary", "id,sin"])
    assert r.exit_code == 2 and "the table fixes the space; drop --unary" in r.output
    r = CliRunner().invoke(main, ["search-sim", "--table", str(path), "--target", "max(id(x), sin(x))"])
    assert r.exit_code == 2 and "exactly one of --target, --table and --protocol" in r.output
    (tmp_path / "bad.jsonl.gz").write_text("nonsense")
    r = CliRunner().invoke(main, ["search-sim", "--table", str(tmp_path / "bad.jsonl.gz")])
    assert r.exit_code == 2 and "not JSON" in r.output and "Traceback" not in r.output


def test_fingerprints_of_the_tiny_table_are_real() -> None:
    for e in tiny_table().entries:
        assert fingerprint(parse(e.expression)) == e.fingerprint


def test_the_proposal_cap_grows_as_the_table_covers_less_of_the_space() -> None:
    from orchestrator.table.replay import proposal_cap

    t = tiny_table()
    assert proposal_cap(t, 10) == 250  # no census in the metadata: the simulator's 25 × budget
    meta = {**t.meta, "space": {**t.meta["space"], "passing_screen": 4 * len(t)}}
    assert proposal_cap(Table(meta, t.entries), 10) == 1000
