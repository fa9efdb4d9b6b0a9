"""Strategies by name: ``make_strategy("ppo", space, seed, lr=1e-3)``.

Each strategy is listed with its options (a frozen dataclass whose ``__post_init__`` checks names,
types and ranges) and where its builder lives. ``check_options`` validates a spec's options
against that table alone, so a spec validates without importing torch or building a policy;
``make_strategy`` imports the builder when a search actually runs.

Every strategy also takes ``surrogate: {candidates, warmup, neighbours}``
(``orchestrator.search.screened``): the strategy's proposals are ranked by a surrogate before
any is trained.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from orchestrator.search.base import Strategy, StrategyError
from orchestrator.search.evolution import EvolutionConfig
from orchestrator.search.exhaustive import ExhaustiveConfig
from orchestrator.search.options import build_config
from orchestrator.search.policy_options import ControllerConfig, PPOConfig
from orchestrator.search.screened import SurrogateScreen, surrogate_config
from orchestrator.search.uniform import UniformConfig
from orchestrator.space import SearchSpace


@dataclass(frozen=True)
class _Entry:
    options: type
    builder: str  # "module:function", imported on first use


_STRATEGIES: dict[str, _Entry] = {
    "ppo": _Entry(PPOConfig, "orchestrator.search.ppo:make_ppo"),
    "reinforce": _Entry(ControllerConfig, "orchestrator.search.reinforce:make_reinforce"),
    "random": _Entry(UniformConfig, "orchestrator.search.uniform:make_uniform"),
    "exhaustive": _Entry(ExhaustiveConfig, "orchestrator.search.exhaustive:make_exhaustive"),
    "evolution": _Entry(EvolutionConfig, "orchestrator.search.evolution:make_evolution"),
}
STRATEGY_NAMES: tuple[str, ...] = tuple(_STRATEGIES)


def strategy_options(name: str) -> dict[str, Any]:
    """The options a strategy accepts, with their defaults."""
    _check_name(name)
    return {**{f.name: f.default for f in dataclasses.fields(_STRATEGIES[name].options)},
            "surrogate": None}


def check_options(name: str, seed: int, **options: Any) -> None:
    """Refuse what ``make_strategy`` would refuse, with the same ``StrategyError``, building
    nothing but the options dataclass."""
    _check_name(name)
    _check_seed(seed)
    options = dict(options)
    if options.get("surrogate") is not None:
        surrogate_config(options["surrogate"])
    options.pop("surrogate", None)
    build_config(_STRATEGIES[name].options, name, options)


def make_strategy(name: str, space: SearchSpace, seed: int, **options: Any) -> Strategy:
    """Build a strategy from its spec; an unknown name or option raises ``StrategyError``
    (a ``ValueError``) naming it and listing what is allowed."""
    _check_name(name)
    _check_seed(seed)
    options = dict(options)
    surrogate = options.pop("surrogate", None)
    config = None if surrogate is None else surrogate_config(surrogate)
    module, function = _STRATEGIES[name].builder.split(":")
    builder = cast(Callable[..., Strategy], getattr(importlib.import_module(module), function))
    strategy = builder(space, seed, **options)
    return strategy if config is None else SurrogateScreen(strategy, config)


def _check_name(name: str) -> None:
    if name not in _STRATEGIES:
        raise StrategyError(f"unknown strategy {name!r}; allowed: {', '.join(STRATEGY_NAMES)}")


def _check_seed(seed: int) -> None:
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise StrategyError(f"seed must be an integer >= 0; got {seed!r}")
