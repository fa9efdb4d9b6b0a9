"""Regularized evolution (Real et al. 2019): tournament, mutate the winner, age out the oldest.

The first ``population`` proposals are uniform samples. After that each proposal draws
``sample_size`` members of the population with replacement, takes the one with the best reward
and changes exactly one of its tokens. Results join the population in the order they arrive and
the oldest member leaves, so a lucky early reward cannot rule forever.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from orchestrator.search.base import Candidate, Result, StrategyError, check_count
from orchestrator.search.options import build_config, require_int, require_number
from orchestrator.space import SearchSpace, decode, to_text


@dataclass(frozen=True)
class EvolutionConfig:
    population: int = 100
    sample_size: int = 25
    failure_reward: float = 0.0

    def __post_init__(self) -> None:
        require_int(self, "population", 1)
        require_int(self, "sample_size", 1)
        require_number(self, "failure_reward", float("-inf"), high=None)
        if self.sample_size > self.population:
            raise StrategyError(
                f"option sample_size ({self.sample_size}) must not exceed population "
                f"({self.population})"
            )


def mutations(space: SearchSpace, tokens: Sequence[int]) -> dict[int, list[int]]:
    """For each position, the other tokens that keep the whole sequence valid.

    Unary and binary masks do not depend on the prefix, so any other allowed op is valid;
    an input token also constrains later inputs, so each alternative is checked in full.
    """
    seq = list(tokens)
    out: dict[int, list[int]] = {}
    for pos in range(space.length):
        allowed = np.flatnonzero(space.mask(seq[:pos]))
        alts = [int(t) for t in allowed if t != seq[pos]]
        if space.kind(pos) == "input":
            alts = [t for t in alts if space.is_valid(seq[:pos] + [t] + seq[pos + 1 :])]
        if alts:
            out[pos] = alts
    return out


def mutate(
    space: SearchSpace, tokens: Sequence[int], rng: np.random.Generator
) -> tuple[tuple[int, ...], float]:
    """One token changed, position then replacement uniform; returns (tokens, log-prob)."""
    options = mutations(space, tokens)
    if not options:
        raise StrategyError(f"no valid single-token mutation of {tuple(tokens)}")
    positions = sorted(options)
    pos = positions[int(rng.integers(len(positions)))]
    alts = options[pos]
    child = list(tokens)
    child[pos] = alts[int(rng.integers(len(alts)))]
    return tuple(child), -math.log(len(positions)) - math.log(len(alts))


class RegularizedEvolution:
    name = "evolution"

    def __init__(self, space: SearchSpace, seed: int, config: EvolutionConfig) -> None:
        self.space = space
        self.config = config
        self.rng = np.random.default_rng(seed)
        self.members: list[tuple[tuple[int, ...], float]] = []  # oldest first
        self.proposed = 0
        self.observed = 0
        self._log_uniform = -math.log(space.count())

    def propose(self, n: int) -> list[Candidate]:
        check_count(n)
        return [self._one() for _ in range(n)]

    def _one(self) -> Candidate:
        initial = self.proposed < self.config.population or not self.members
        self.proposed += 1
        if initial:
            tokens, logp = self.space.sample(self.rng), self._log_uniform
        else:
            picks = self.rng.integers(len(self.members), size=self.config.sample_size)
            parent = max((self.members[int(i)] for i in picks), key=lambda m: m[1])
            tokens, logp = mutate(self.space, parent[0], self.rng)
        return Candidate(tokens, to_text(decode(tokens)), logp, self.observed)

    def observe(self, results: Sequence[Result]) -> None:
        for r in results:
            self.members.append((r.candidate.tokens, r.value(self.config.failure_reward)))
        self.observed += len(results)
        del self.members[: max(0, len(self.members) - self.config.population)]

    def state_dict(self) -> dict[str, Any]:
        return {
            "strategy": self.name,
            "rng": copy.deepcopy(self.rng.bit_generator.state),
            "members": [[list(t), r] for t, r in self.members],
            "proposed": self.proposed,
            "observed": self.observed,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.rng.bit_generator.state = copy.deepcopy(state["rng"])
        self.members = [(tuple(int(x) for x in t), float(r)) for t, r in state["members"]]
        self.proposed = int(state["proposed"])
        self.observed = int(state["observed"])


def make_evolution(space: SearchSpace, seed: int, **options: Any) -> RegularizedEvolution:
    return RegularizedEvolution(space, seed, build_config(EvolutionConfig, "evolution", options))
