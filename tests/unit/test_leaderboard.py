"""The leaderboard's Markdown, ties and per-trial series; the names and structure params of a
function in MLflow."""

from __future__ import annotations

from orchestrator.loop.leaderboard import Entry, rank, to_markdown
from orchestrator.loop.ledger import DONE, QUEUED
from orchestrator.loop.trials import Trial, trial_points
from orchestrator.search.base import Candidate
from orchestrator.space import encode, parse
from orchestrator.space.naming import RUN_NAME_LIMIT, has_beta, structure_params, trial_run_name

ABS = "add(abs(x), sin(x))"
SWISH = "sigmul(mul_beta(x), id(x))"
RELU = "add(relu(x), sin(x))"


def test_a_pipe_in_an_expression_does_not_split_the_table_row() -> None:
    md = to_markdown([Entry("s-t00001", ABS, "f1", 0.9)])
    row = md.splitlines()[2]
    assert row.count("|") - row.count("\\|") == 8  # 7 cells: 8 unescaped separators


def test_ties_are_marked_and_share_a_rank() -> None:
    rows = rank([Entry("s-t00003", SWISH, "a", 0.97, test_accuracy=0.95),
                 Entry("s-t00001", ABS, "b", 0.97, test_accuracy=0.93),
                 Entry("s-t00002", RELU, "c", 0.90)])
    assert [(e.trial_id, e.tied) for e in rows] == [
        ("s-t00001", True), ("s-t00003", True), ("s-t00002", False)]
    lines = to_markdown(rows).splitlines()
    assert lines[2].startswith("| =1 |") and lines[3].startswith("| =1 |")
    assert lines[4].startswith("| 3 |") and "0.9500" in lines[3] and "| - |" in lines[4]
    assert "tied" in lines[-1]


def _trial(i: int, reward: float | None, state: str = DONE) -> Trial:
    return Trial(f"s-t{i:05d}", i, Candidate(encode(parse(SWISH)), SWISH, 0.0, 0), "f", state,
                 reward=reward, failure=None if reward is not None else "nan")


def test_the_per_trial_series_follows_the_trial_index_and_stops_at_the_first_unfinished() -> None:
    trials = [_trial(0, 0.5), _trial(1, None), _trial(2, 0.4), _trial(3, 0.9, QUEUED)]
    points, nxt, best = trial_points(trials, 0)
    assert (nxt, best) == (3, 0.5)
    assert points == [(0, {"trial_val_accuracy": 0.5, "best_val_accuracy": 0.5}),
                      (1, {"best_val_accuracy": 0.5}),
                      (2, {"trial_val_accuracy": 0.4, "best_val_accuracy": 0.5})]
    trials[3].state = DONE
    assert trial_points(trials, nxt, best) == ([(3, {"trial_val_accuracy": 0.9,
                                                     "best_val_accuracy": 0.9})], 4, 0.9)
    trials[3].reward = 0.3  # the best before ``start`` is carried, not read again
    assert trial_points(trials, nxt, best)[0] == [(3, {"trial_val_accuracy": 0.3,
                                                        "best_val_accuracy": 0.5})]


def test_run_names_are_short_math_with_the_trial_index() -> None:
    assert trial_run_name(7, parse(SWISH)) == "t7 · σ(β·x)·x"
    text = "x"
    for _ in range(6):
        text = f"add(sin({text}), cos(x))"
    name = trial_run_name(12345, parse(text))
    assert len(name) == RUN_NAME_LIMIT and name.startswith("t12345 · ") and name.endswith("…")


def test_structure_params_name_each_unit_and_its_inputs() -> None:
    p = structure_params(parse("add(id(max(id(x), neg(x))), sin(x))"))
    assert p == {"units": "2", "unit1.binary": "max", "unit1.unary1": "id",
                 "unit1.unary2": "neg", "unit1.inputs": "x,x", "unit2.binary": "add",
                 "unit2.unary1": "id", "unit2.unary2": "sin", "unit2.inputs": "u1,x"}
    assert has_beta(parse(SWISH)) and not has_beta(parse(RELU))
