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
from collections.abc import Callable, Sequence
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


NO_PRIOR = ("option surrogate.prior names a half of a replayed table; only a table protocol "
            "(search-sim --protocol with table:) has one")


def check_options(name: str, seed: int, *, table_halves: bool = False, **options: Any) -> None:
    """Refuse what ``make_strategy`` would refuse, with the same ``StrategyError``, building
    nothing but the options dataclass. ``surrogate.prior`` only where ``table_halves``."""
    _check_name(name)
    _check_seed(seed)
    options = dict(options)
    if options.get("surrogate") is not None:
        config = surrogate_config(options["surrogate"])
        if config.prior is not None and not table_halves:
            raise StrategyError(NO_PRIOR)
    options.pop("surrogate", None)
    build_config(_STRATEGIES[name].options, name, options)


def make_strategy(name: str, space: SearchSpace, seed: int, *,
                  surrogate_prior: Sequence[tuple[str, float]] | None = None,
                  **options: Any) -> Strategy:
    """Build a strategy from its spec; an unknown name or option raises ``StrategyError``
    (a ``ValueError``) naming it and listing what is allowed. ``surrogate_prior``: the
    (expression, reward) pairs that ``surrogate.prior`` names, resolved by the caller."""
    _check_name(name)
    _check_seed(seed)
    options = dict(options)
    surrogate = options.pop("surrogate", None)
    config = None if surrogate is None else surrogate_config(surrogate)
    if config is not None and config.prior is not None and surrogate_prior is None:
        raise StrategyError(NO_PRIOR)
    module, function = _STRATEGIES[name].builder.split(":")
    builder = cast(Callable[..., Strategy], getattr(importlib.import_module(module), function))
    strategy = builder(space, seed, **options)
    if config is None:
        return strategy
    return SurrogateScreen(strategy, config, surrogate_prior or ())


def _check_name(name: str) -> None:
    if name not in _STRATEGIES:
        raise StrategyError(f"unknown strategy {name!r}; allowed: {', '.join(STRATEGY_NAMES)}")


def _check_seed(seed: int) -> None:
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise StrategyError(f"seed must be an integer >= 0; got {seed!r}")
