"""The surrogate screen: features without training, a regressor that ranks a planted signal, and
a wrapper that never asks for more training than the strategy it wraps."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from orchestrator.search import Candidate, Result, StrategyError, check_options, make_strategy
from orchestrator.search.screened import SurrogateConfig, SurrogateScreen
from orchestrator.search.simulate import SimilarityReward
from orchestrator.search.surrogate import FEATURES, NearestNeighbours, features
from orchestrator.space import SearchSpace, parse
from orchestrator.space.fingerprint import fingerprint

SPACE = SearchSpace(units=1)


def test_features_are_finite_and_depend_on_the_function_only() -> None:
    relu = features(parse("max(relu(x), min0(x))"))
    assert relu is not None and relu.shape == (FEATURES,)
    same = features(parse("max(id(x), relu(x))"))  # relu(x) written another way
    assert same is not None and np.allclose(relu, same)
    tanh = features(parse("max(tanh(x), tanh(x))"))
    assert tanh is not None and not np.allclose(relu, tanh)


def test_a_function_that_explodes_keeps_finite_squashed_features() -> None:
    f = features(parse("mul(exp(x), exp(mul(cube(x), cube(x))))"))  # exp(x + x⁶), clamped
    assert f is not None and np.all(np.abs(f) < 710)  # log1p of the largest float64
    low, high = features(parse("max(exp(x), exp(x))")), features(parse("mul(exp(x), exp(x))"))
    assert low is not None and high is not None and high[-1] > low[-1]  # order kept: sd of f'(z)


def test_nearest_neighbours_ranks_a_planted_signal() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, FEATURES))
    y = np.tanh(x[:, 0]) + 0.05 * rng.normal(size=200)  # the reward hides in one feature
    model = NearestNeighbours.fit(list(x[:150]), list(y[:150]), k=5)
    pred = model.predict(list(x[150:]))
    assert np.corrcoef(pred, y[150:])[0, 1] > 0.5
    assert model.predict([x[3]])[0] == pytest.approx(y[3], abs=1e-6)  # a training point


class Spy:
    """A random strategy that records how many proposals it was asked for."""

    name = "spy"

    def __init__(self, seed: int) -> None:
        self.inner = make_strategy("random", SPACE, seed)
        self.asked: list[int] = []
        self.observed: list[Result] = []

    def propose(self, n: int) -> list[Candidate]:
        self.asked.append(n)
        return self.inner.propose(n)

    def observe(self, results: Sequence[Result]) -> None:
        self.observed += results

    def state_dict(self) -> dict[str, Any]:
        return self.inner.state_dict()

    def load_state_dict(self, state: Any) -> None:
        self.inner.load_state_dict(state)


def _relu_reward() -> SimilarityReward:
    return SimilarityReward(parse("max(relu(x), min0(x))"))


def test_the_wrapper_passes_through_until_warmup_then_trains_only_its_share() -> None:
    reward, spy = _relu_reward(), Spy(1)
    screen = SurrogateScreen(spy, SurrogateConfig(candidates=4, warmup=20))
    first = screen.propose(10)
    assert spy.asked == [10] and len(first) == 10  # no rewards yet: pass through
    screen.observe([reward(c) for c in first] + [reward(c) for c in screen.propose(15)])
    assert spy.asked[-1] == 15
    evaluated = set(screen.seen)
    assert len(screen._y) >= 20  # most 1-unit functions pass the screen: warm now
    chosen = screen.propose(10)
    assert spy.asked[-1] == 40 and len(chosen) == 10
    new = [k for k in (fingerprint(c.expr) for c in chosen) if k not in evaluated]
    assert len(set(new)) == len(new)  # no function twice in one batch
    assert len(spy.observed) == 25  # the wrapped strategy sees what was trained, nothing else


def test_the_wrapper_trains_the_candidates_the_surrogate_ranks_highest() -> None:
    reward = _relu_reward()
    prior = [(r.candidate.expression, float(r.reward or 0.0))
             for r in map(reward, make_strategy("random", SPACE, 7).propose(200)) if r.ok]
    screen = SurrogateScreen(Spy(3), SurrogateConfig(candidates=8, warmup=20), prior=prior)
    chosen = screen.propose(10)
    pool = Spy(3).propose(80)  # the same seed draws the same pool
    score = [r.value(0.0) for r in map(reward, chosen)]
    pool_score = [r.value(0.0) for r in map(reward, pool)]
    assert len(chosen) == 10 and np.mean(score) > np.mean(pool_score) + 0.05


def test_surrogate_options_are_validated_like_other_options() -> None:
    with pytest.raises(StrategyError, match=r"option surrogate.candidates must be an integer >= 1; got 0"):
        make_strategy("random", SPACE, 0, surrogate={"candidates": 0})
    with pytest.raises(StrategyError, match="option surrogate must be a mapping"):
        check_options("ppo", 0, surrogate=4)
    with pytest.raises(StrategyError, match=r"unknown option.*'size' for surrogate; allowed: candidates"):
        check_options("evolution", 0, surrogate={"size": 4})
    check_options("evolution", 0, surrogate={"candidates": 4, "warmup": 20})
    assert isinstance(make_strategy("evolution", SPACE, 0, surrogate={}), SurrogateScreen)


def test_a_restored_wrapper_makes_the_same_next_proposals() -> None:
    reward = _relu_reward()
    a = make_strategy("evolution", SPACE, 5, surrogate={"candidates": 3, "warmup": 10})
    for _ in range(3):
        a.observe([reward(c) for c in a.propose(10)])
    b = make_strategy("evolution", SPACE, 5, surrogate={"candidates": 3, "warmup": 10})
    b.load_state_dict(a.state_dict())
    assert [c.tokens for c in a.propose(10)] == [c.tokens for c in b.propose(10)]
