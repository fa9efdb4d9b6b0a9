"""Every strategy behind the one interface: proposals, checkpoints, options."""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import pytest
import torch

from orchestrator.search import (
    STRATEGY_NAMES,
    Candidate,
    Result,
    StrategyError,
    check_options,
    make_strategy,
)
from orchestrator.search.evolution import mutate, mutations
from orchestrator.space import SearchSpace, decode, to_text

Reward = Callable[[Candidate], Result]
FAST = {
    "ppo": {"hidden": 16, "batch_size": 8},
    "reinforce": {"hidden": 16, "batch_size": 8},
    "evolution": {"population": 10, "sample_size": 3},
    "random": {},
    "exhaustive": {"top_k": 3},
}


def _run(strategy, reward: Reward, rounds: int, n: int = 6) -> None:
    for _ in range(rounds):
        strategy.observe([reward(c) for c in strategy.propose(n)])


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_state_dict_round_trip_gives_identical_next_proposals(
    name: str, small_space: SearchSpace, token_reward: Reward
) -> None:
    original = make_strategy(name, small_space, 3, **FAST[name])
    _run(original, token_reward, rounds=5)  # 30 results: crosses several updates / generations
    pending = original.propose(5)  # proposed before the checkpoint, observed after it
    buf = io.BytesIO()
    torch.save(original.state_dict(), buf)
    buf.seek(0)
    restored = make_strategy(name, small_space, 99, **FAST[name])  # a different seed on purpose
    restored.load_state_dict(torch.load(buf, weights_only=False))

    results = [token_reward(c) for c in pending]
    original.observe(results)
    restored.observe(results)
    for _ in range(3):
        a, b = original.propose(7), restored.propose(7)
        assert a == b
        original.observe([token_reward(c) for c in a])
        restored.observe([token_reward(c) for c in b])


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_every_strategy_proposes_valid_canonical_candidates(
    name: str, small_space: SearchSpace, token_reward: Reward
) -> None:
    strategy = make_strategy(name, small_space, 0, **FAST[name])
    for _ in range(4):
        batch = strategy.propose(9)
        assert len(batch) == 9
        for c in batch:
            assert small_space.is_valid(c.tokens)
            assert c.expression == to_text(decode(c.tokens))
            assert np.isfinite(c.log_prob) and c.log_prob <= 0.0
        strategy.observe([token_reward(c) for c in batch])


def test_ppo_update_after_a_restart_equals_the_update_without_one(
    small_space: SearchSpace, token_reward: Reward
) -> None:
    """The behaviour log-probs travel with the candidates, so a controller restarted between
    propose and observe makes exactly the update it would have made."""
    a = make_strategy("ppo", small_space, 0, hidden=16, batch_size=8)
    batch = a.propose(8)
    state = a.state_dict()
    b = make_strategy("ppo", small_space, 5, hidden=16, batch_size=8)
    b.load_state_dict(state)
    results = [token_reward(c) for c in batch]
    a.observe(results)
    b.observe(results)
    for pa, pb in zip(a.controller.parameters(), b.controller.parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert a.version == b.version == 1
    assert any(
        not torch.equal(p, state["controller"][k]) for k, p in a.controller.state_dict().items()
    )


def test_exhaustive_covers_a_small_space_exactly_once() -> None:
    space = SearchSpace(units=2, unary=("id", "sin"), binary=("add", "max"))
    strategy = make_strategy("exhaustive", space, 0)
    seen: list[tuple[int, ...]] = []
    while batch := strategy.propose(7):
        seen += [c.tokens for c in batch]
    assert len(seen) == space.count() == len(set(seen))
    assert set(seen) == set(space.enumerate())
    assert strategy.propose(3) == []


def test_exhaustive_keeps_the_top_k_by_reward(token_reward: Reward) -> None:
    space = SearchSpace(units=1, unary=("id", "neg", "sin"), binary=("add", "max"))
    strategy = make_strategy("exhaustive", space, 0, top_k=4)
    results = [token_reward(c) for c in strategy.propose(50)]
    strategy.observe(results)
    best = sorted((r.value(0.0) for r in results), reverse=True)[:4]
    assert [r for r, _ in strategy.top] == best


def test_exhaustive_skips_non_canonical_orderings_of_the_same_tree() -> None:
    space = SearchSpace(units=3, unary=("id",), binary=("add",))
    strategy = make_strategy("exhaustive", space, 0)
    exprs = [c.expression for c in strategy.propose(1000)]
    assert len(exprs) == len(set(exprs)) < space.count()


def test_evolution_mutations_change_one_token_and_stay_valid() -> None:
    space = SearchSpace(units=3)
    rng = np.random.default_rng(0)
    for _ in range(200):
        parent = space.sample(rng)
        child, logp = mutate(space, parent, rng)
        assert space.is_valid(child)
        assert sum(a != b for a, b in zip(parent, child, strict=True)) == 1
        assert logp < 0.0
        options = mutations(space, parent)
        pos = next(i for i, (a, b) in enumerate(zip(parent, child, strict=True)) if a != b)
        assert child[pos] in options[pos]


def test_evolution_ages_out_the_oldest_member(small_space: SearchSpace, token_reward: Reward) -> None:
    strategy = make_strategy("evolution", small_space, 0, population=5, sample_size=2)
    first = strategy.propose(5)
    strategy.observe([token_reward(c) for c in first])
    later = strategy.propose(2)
    strategy.observe([token_reward(c) for c in later])
    assert [t for t, _ in strategy.members] == [c.tokens for c in first[2:] + later]


def test_evolution_mutates_a_tournament_winner_once_the_population_is_full(
    small_space: SearchSpace, token_reward: Reward
) -> None:
    strategy = make_strategy("evolution", small_space, 0, population=4, sample_size=4)
    strategy.observe([token_reward(c) for c in strategy.propose(4)])
    members = {t for t, _ in strategy.members}
    for child in strategy.propose(10):
        assert any(sum(a != b for a, b in zip(m, child.tokens, strict=True)) == 1 for m in members)


def test_failures_count_as_the_configured_failure_reward(small_space: SearchSpace) -> None:
    strategy = make_strategy("evolution", small_space, 0, population=3, sample_size=1,
                             failure_reward=-1.0)
    strategy.observe([Result.failed(c, "NaN loss") for c in strategy.propose(3)])
    assert [r for _, r in strategy.members] == [-1.0, -1.0, -1.0]


BAD_OPTIONS = [
    ("annealing", {}, "unknown strategy 'annealing'; allowed: ppo, reinforce"),
    ("ppo", {"learning_rate": 0.1}, "unknown option(s) 'learning_rate' for strategy 'ppo'; allowed: hidden"),
    ("reinforce", {"clip": 0.2}, "unknown option(s) 'clip' for strategy 'reinforce'"),
    ("ppo", {"clip": 1.5}, "option clip must be a number in (0, 1)"),
    ("evolution", {"population": 3, "sample_size": 5}, "sample_size (5) must not exceed population (3)"),
    ("exhaustive", {"top_k": 0}, "option top_k must be an integer >= 1"),
    ("ppo", {"top_k": -1}, "option top_k must be an integer >= 0"),
    ("ppo", {"rank_advantages": True, "elite_fraction": 0.5}, "exclude each other"),
]


@pytest.mark.parametrize(("name", "options", "message"), BAD_OPTIONS)
def test_a_bad_spec_is_refused_with_a_message_naming_it(
    name: str, options: dict, message: str, small_space: SearchSpace
) -> None:
    with pytest.raises(StrategyError) as info:
        make_strategy(name, small_space, 0, **options)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(("name", "options", "message"), BAD_OPTIONS)
def test_checking_options_refuses_what_building_refuses_with_the_same_message(
    name: str, options: dict, message: str, small_space: SearchSpace
) -> None:
    with pytest.raises(StrategyError) as built:
        make_strategy(name, small_space, 0, **options)
    with pytest.raises(StrategyError) as checked:
        check_options(name, 0, **options)
    assert str(checked.value) == str(built.value)


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_checking_options_accepts_every_strategys_defaults_and_refuses_a_bad_seed(
    name: str,
) -> None:
    check_options(name, 0)
    check_options(name, 7, **FAST[name])
    with pytest.raises(StrategyError, match="seed must be an integer >= 0"):
        check_options(name, -1)


def test_a_result_has_a_finite_reward_or_a_failure_reason(small_space: SearchSpace) -> None:
    c = make_strategy("random", small_space, 0).propose(1)[0]
    with pytest.raises(ValueError, match="finite"):
        Result.success(c, float("nan"))
    with pytest.raises(ValueError, match="either"):
        Result(c)
    assert Result.failed(c, "crashed").value(0.25) == 0.25


def test_the_top_k_queue_keeps_the_best_distinct_successes_and_trains_on_them(
    small_space: SearchSpace, token_reward: Reward
) -> None:
    strategy = make_strategy("ppo", small_space, 0, hidden=16, batch_size=8, top_k=3)
    seen: dict[tuple[int, ...], float] = {}
    for _ in range(4):
        results = [token_reward(c) for c in strategy.propose(8)]
        seen.update({r.candidate.tokens: r.reward for r in results if r.ok})  # type: ignore[misc]
        strategy.observe(results)
    best = sorted(seen.values(), reverse=True)[:3]
    assert sorted(strategy.best.values(), reverse=True) == best
    assert all(seen[t] == v for t, v in strategy.best.items())  # failures never enter

    # The queue pulls the policy towards its sequences: fed the same results, the policy
    # trained with the queue gives them more probability than the one trained without.
    without = make_strategy("ppo", small_space, 0, hidden=16, batch_size=8, top_k=3,
                            top_k_weight=0.0)
    with_queue = make_strategy("ppo", small_space, 0, hidden=16, batch_size=8, top_k=3)
    for _ in range(4):
        results = [token_reward(c) for c in with_queue.propose(8)]
        with_queue.observe(results)
        without.observe(results)
    assert with_queue.best == without.best
    queued = np.array(list(with_queue.best), dtype=np.int64)
    with torch.no_grad():
        lp_with = float(with_queue.controller.score(queued)[0].sum())
        lp_without = float(without.controller.score(queued)[0].sum())
    assert lp_with > lp_without

    off = make_strategy("ppo", small_space, 0, hidden=16, batch_size=8, top_k=0)
    _run(off, token_reward, rounds=4, n=8)
    assert off.best == {}


def test_rank_advantages_are_centred_ranks_with_ties_sharing_their_mean() -> None:
    from orchestrator.search.policy_gradient import rank_advantages

    assert rank_advantages([0.0, 0.9, 0.91, 0.91, 0.5]).tolist() == [-0.5, 0.0, 0.375, 0.375, -0.25]
    assert rank_advantages([0.3]).tolist() == [0.0]
    assert rank_advantages([2.0, 2.0]).tolist() == [0.0, 0.0]
