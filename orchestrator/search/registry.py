"""Strategies by name: ``make_strategy("ppo", space, seed, lr=1e-3)``."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from orchestrator.search.base import Strategy, StrategyError
from orchestrator.search.evolution import EvolutionConfig, make_evolution
from orchestrator.search.exhaustive import ExhaustiveConfig, make_exhaustive
from orchestrator.search.policy_gradient import ControllerConfig
from orchestrator.search.ppo import PPOConfig, make_ppo
from orchestrator.search.reinforce import make_reinforce
from orchestrator.search.uniform import UniformConfig, make_uniform
from orchestrator.space import SearchSpace

_BUILDERS: dict[str, tuple[Callable[..., Strategy], type]] = {
    "ppo": (make_ppo, PPOConfig),
    "reinforce": (make_reinforce, ControllerConfig),
    "random": (make_uniform, UniformConfig),
    "exhaustive": (make_exhaustive, ExhaustiveConfig),
    "evolution": (make_evolution, EvolutionConfig),
}
STRATEGY_NAMES: tuple[str, ...] = tuple(_BUILDERS)


def strategy_options(name: str) -> dict[str, Any]:
    """The options a strategy accepts, with their defaults."""
    _check_name(name)
    return {f.name: f.default for f in dataclasses.fields(_BUILDERS[name][1])}


def make_strategy(name: str, space: SearchSpace, seed: int, **options: Any) -> Strategy:
    """Build a strategy from its spec; an unknown name or option raises ``StrategyError``
    (a ``ValueError``) naming it and listing what is allowed."""
    _check_name(name)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise StrategyError(f"seed must be an integer >= 0; got {seed!r}")
    return _BUILDERS[name][0](space, seed, **options)


def _check_name(name: str) -> None:
    if name not in _BUILDERS:
        raise StrategyError(f"unknown strategy {name!r}; allowed: {', '.join(STRATEGY_NAMES)}")
