"""A controller search must not stall while functions remain unevaluated (``novelty``).

On a space small enough to exhaust, a budget of every distinct function must be spent before
the simulator's proposal cap: a policy that settles on the functions it has seen (repeats are
free, so they never end a run) fails it. The assertions are properties of the mechanism (the
heat rises when a batch brings nothing new, a hot draw is uniform), not the outcome of one
chaotic search, so they hold on any CPU.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch

from orchestrator.search import Candidate, StrategyError, make_strategy, strategy_options
from orchestrator.search.policy_gradient import MAX_HEAT, next_heat
from orchestrator.search.simulate import SimilarityReward, simulate
from orchestrator.space import SearchSpace, decode, parse, to_text
from orchestrator.space.fingerprint import fingerprint

TINY = SearchSpace(units=1, unary=("id", "neg", "sin", "relu", "square", "exp"),
                   binary=("add", "mul", "max"))
TARGET = parse("max(relu(x), sin(x))")


def _evaluable(space: SearchSpace) -> set[str]:
    """Fingerprints of the functions the similarity reward trains (new and passing its screen)."""
    reward = SimilarityReward(TARGET)
    keys = set()
    for tokens in space.enumerate():
        expr = decode(tokens)
        c = Candidate(tokens=tokens, expression=to_text(expr), log_prob=0.0, policy_version=0)
        if reward(c).ok:
            keys.add(fingerprint(expr))
    return keys


@pytest.mark.parametrize("strategy", ["ppo", "reinforce"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_controller_search_evaluates_every_function_of_a_small_space_before_the_cap(
    strategy: str, seed: int
) -> None:
    functions = _evaluable(TINY)
    assert 20 < len(functions) < TINY.count()  # small enough to exhaust, with repeats
    options = {} if strategy == "ppo" else {"novelty": 0.75}  # PPO: its defaults
    trace = simulate(make_strategy(strategy, TINY, seed, **options), SimilarityReward(TARGET),
                     budget=len(functions))  # the cap: 25 proposals per function
    assert len(trace.rewards) == len(functions)
    assert set(trace.keys) == functions


def test_the_heat_doubles_below_the_target_and_halves_back_to_one() -> None:
    assert next_heat(1.0, 0.0, 0.5) == 2.0
    assert next_heat(8.0, 0.49, 0.5) == 16.0
    assert next_heat(8.0, 0.5, 0.5) == 4.0
    assert next_heat(1.0, 1.0, 0.5) == 1.0
    assert next_heat(MAX_HEAT, 0.0, 0.5) == MAX_HEAT
    assert next_heat(1.0, 0.0, 0.0) == 1.0  # novelty 0: never heats


def test_a_hot_draw_is_uniform_over_each_positions_valid_tokens() -> None:
    strategy = make_strategy("ppo", TINY, 0)
    rollout = strategy.controller.sample(50, np.random.default_rng(0), heat=MAX_HEAT)
    for row, logps in zip(rollout.tokens, rollout.token_log_probs, strict=True):
        for p, lp in enumerate(logps):
            valid = int(TINY.mask(tuple(int(t) for t in row[:p])).sum())
            assert lp == pytest.approx(-math.log(valid), abs=1e-5)


def test_without_novelty_the_policy_is_sampled_as_it_is() -> None:
    a = make_strategy("ppo", TINY, 4, novelty=0.0)
    b = make_strategy("ppo", TINY, 4, novelty=0.5)
    assert a.propose(20) == b.propose(20)  # the first batch: heat 1 for both
    for _ in range(30):
        a.propose(20)
    assert a.heat == 1.0 and not a.proposed


def test_repeated_batches_heat_the_sampler_and_new_sequences_cool_it() -> None:
    strategy = make_strategy("ppo", TINY, 0, novelty=0.5)
    strategy.proposed = set(map(tuple, TINY.enumerate()))  # everything proposed already
    strategy.propose(10)
    strategy.propose(10)
    assert strategy.heat == 4.0
    strategy.proposed = set()
    strategy.propose(10)  # ten never-proposed sequences (at most 10 repeats within the batch)
    assert strategy.heat in (2.0, 8.0)
    assert len(strategy.proposed) >= 1


def test_the_heat_and_the_proposed_sequences_survive_a_checkpoint() -> None:
    a = make_strategy("ppo", TINY, 2, novelty=0.9)
    for _ in range(5):
        a.propose(20)
    assert a.heat > 1.0
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)
    buf.seek(0)
    b = make_strategy("ppo", TINY, 7, novelty=0.9)
    b.load_state_dict(torch.load(buf, weights_only=False))
    assert (b.heat, b.proposed) == (a.heat, a.proposed)
    assert a.propose(20) == b.propose(20)


@pytest.mark.parametrize("value", [1.0, -0.1, 2, "0.5", True])
def test_a_bad_novelty_is_refused_naming_the_option_and_its_range(value: object) -> None:
    for name in ("ppo", "reinforce"):
        with pytest.raises(StrategyError, match=r"option novelty must be a number in \[0, 1\); got"):
            make_strategy(name, TINY, 0, novelty=value)


def test_ppo_defaults_to_novelty_and_reinforce_does_not() -> None:
    assert strategy_options("ppo")["novelty"] == 0.75
    assert strategy_options("reinforce")["novelty"] == 0.0
