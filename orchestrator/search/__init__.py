"""Search strategies behind one interface: ppo, reinforce, random, exhaustive, evolution."""

from orchestrator.search.base import (
    Candidate,
    Learner,
    Result,
    Strategy,
    StrategyError,
    UpdateStats,
)
from orchestrator.search.dedup import Dedup, Routed, candidate_key
from orchestrator.search.registry import (
    STRATEGY_NAMES,
    check_options,
    make_strategy,
    strategy_options,
)

__all__ = [
    "STRATEGY_NAMES", "Candidate", "Dedup", "Learner", "Result", "Routed", "Strategy",
    "StrategyError", "UpdateStats", "candidate_key", "check_options", "make_strategy",
    "strategy_options",
]
