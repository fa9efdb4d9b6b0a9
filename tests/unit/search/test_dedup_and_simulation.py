"""Dedup of functions already evaluated, the simulator's reward, and that the policy learns."""

from __future__ import annotations

import numpy as np
import pytest

from orchestrator.search import Candidate, Dedup, Result, candidate_key, make_strategy
from orchestrator.search.simulate import (
    SimilarityReward,
    Trace,
    similarity,
    simulate,
    summarize,
)
from orchestrator.space import SearchSpace, encode, parse, to_text

MAX_SIGMOID = "max(id(x), sigmoid(x))"


def _candidate(text: str) -> Candidate:
    expr = parse(text)
    return Candidate(encode(expr), to_text(expr), 0.0, 0)


def test_a_function_already_evaluated_reuses_its_reward_and_is_not_evaluated_again() -> None:
    dedup = Dedup()
    a = _candidate(MAX_SIGMOID)
    same_function = _candidate("max(sigmoid(x), id(x))")  # another tree, the same function
    other = _candidate("min(id(x), sin(x))")
    keys = [candidate_key(c) for c in (a, same_function, other)]
    assert keys[0] == keys[1] != keys[2]

    routed = dedup.route([a], keys[:1])
    assert [c for c, _ in routed.evaluate] == [a] and routed.reused == []
    dedup.complete(Result.success(a, 0.7), keys[0])

    routed = dedup.route([same_function, other], keys[1:])
    assert [c for c, _ in routed.evaluate] == [other]
    assert routed.reused == [Result.success(same_function, 0.7)]


def test_a_duplicate_within_one_batch_waits_for_the_first_evaluation() -> None:
    dedup = Dedup()
    a, b = _candidate(MAX_SIGMOID), _candidate("max(sigmoid(x), id(x))")
    key = candidate_key(a)
    routed = dedup.route([a, b], [key, key])
    assert len(routed.evaluate) == 1 and routed.reused == []
    released = dedup.complete(Result.failed(a, "NaN loss"), key)
    assert released == [Result.failed(a, "NaN loss"), Result.failed(b, "NaN loss")]
    restored = Dedup()
    restored.load_state_dict(dedup.state_dict())
    assert restored.outcome(key) == (None, "NaN loss") and len(restored) == 1


def test_similarity_is_one_for_the_target_and_falls_with_distance() -> None:
    t = np.linspace(-5, 5, 11)
    assert similarity(t, t, 1.0) == 1.0
    assert 1.0 > similarity(t + 0.1, t, 1.0) > similarity(t + 1.0, t, 1.0) > 0.0
    assert similarity(np.full_like(t, np.nan), t, 1.0) == 0.0


def test_the_simulated_reward_fails_screened_out_functions() -> None:
    reward = SimilarityReward(parse(MAX_SIGMOID))
    assert reward(_candidate(MAX_SIGMOID)).reward == pytest.approx(1.0)
    assert 0.9 < reward(_candidate("beta_mix(softplus(x), id(x))")).reward < 0.95  # type: ignore[operator]
    failed = reward(_candidate("add(beta(x), beta(x))"))  # constant: the screen rejects it
    assert not failed.ok and "screened out" in str(failed.failure)
    with pytest.raises(ValueError, match="constant"):
        SimilarityReward(parse("add(beta(x), beta(x))"))


def test_the_simulator_counts_only_new_functions_that_pass_the_screen() -> None:
    space = SearchSpace(units=1, unary=("id", "sigmoid", "beta"), binary=("max", "add"))
    trace = simulate(make_strategy("exhaustive", space, 0), SimilarityReward(parse(MAX_SIGMOID)),
                     budget=1000)
    functions = {candidate_key(_candidate(to_text(c.expr))) for c in
                 make_strategy("exhaustive", space, 0).propose(space.count())}
    assert trace.proposals == space.count()
    assert len(trace.rewards) + trace.failures == len(functions)
    assert trace.repeats == space.count() - len(functions)
    assert max(trace.rewards) == pytest.approx(1.0)


def test_summary_reports_evaluations_to_threshold_with_unreached_seeds_censored() -> None:
    traces = [Trace(rewards=[0.1, 0.5, 0.9]), Trace(rewards=[0.1, 0.2, 0.3]),
              Trace(rewards=[0.9]), Trace(rewards=[0.2, 0.3])]  # the last ran out of proposals
    s = summarize("x", traces, budget=3, threshold=0.8)
    assert s.reached == 2 and s.hits.times == (3, 3, 1, 2)
    assert s.hits.reached == (True, False, True, False)
    # KM: S(1) = 3/4 exactly (q1 midway to the next event, 3: 2); at 3 the one event among
    # the two runs still at risk halves it: 3/8, so the median is 3 and q3 "> budget"
    assert s.to_threshold == (2, 3, None)
    assert s.best[-1].median == pytest.approx(0.6)


def test_ppo_learns_on_a_small_fixed_seed_simulated_run() -> None:
    """Mean reward of later batches beats the first ones, and the policy's entropy falls."""
    space = SearchSpace(units=1)
    strategy = make_strategy("ppo", space, 0)
    trace = simulate(strategy, SimilarityReward(parse(MAX_SIGMOID)), budget=400)
    updates = trace.updates
    assert len(updates) >= 15
    k = max(3, len(updates) // 10)  # first and last 10 % of the updates, as search-sim reports
    early, late = updates[:k], updates[-k:]
    assert np.mean([u.mean_reward for u in late]) > np.mean([u.mean_reward for u in early]) + 0.2
    assert np.mean([u.entropy for u in late]) < np.mean([u.entropy for u in early]) - 2.0


def test_best_beta_finds_the_optimum_of_a_smooth_score_and_keeps_the_grid_best() -> None:
    from orchestrator.search.simulate import best_beta

    beta, score = best_beta(lambda b: -(b - 2.345) ** 2)
    assert beta == pytest.approx(2.345, abs=1e-3) and score == pytest.approx(0.0, abs=1e-6)
    beta, _ = best_beta(lambda b: -abs(b + 3.9))  # near the edge of the range
    assert beta == pytest.approx(-3.9, abs=1e-3)


def test_a_candidate_that_reads_beta_scores_at_its_best_beta() -> None:
    from orchestrator.search.base import Candidate
    from orchestrator.space import encode

    reward = SimilarityReward(parse("max(relu(x), relu(x))"))

    def score(text: str) -> float:
        r = reward(Candidate(encode(parse(text)), text, 0.0, 0))
        assert r.reward is not None
        return r.reward

    # β·x + (1 − β)·relu(x) is ReLU at β = 0, x at β = 1: scored as ReLU, not as x
    assert score("beta_mix(id(x), relu(x))") == pytest.approx(1.0, abs=1e-6)
    assert score("max(id(x), id(x))") < 0.9
