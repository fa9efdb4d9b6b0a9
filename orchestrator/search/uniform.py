"""Random search: every valid sequence equally likely (``SearchSpace.sample``). The baseline
any learned strategy has to beat."""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from orchestrator.search.base import Candidate, Result, check_count
from orchestrator.search.options import build_config, require_number
from orchestrator.space import SearchSpace, decode, to_text


@dataclass(frozen=True)
class UniformConfig:
    failure_reward: float = 0.0

    def __post_init__(self) -> None:
        require_number(self, "failure_reward", float("-inf"), high=None)


class UniformRandom:
    name = "random"

    def __init__(self, space: SearchSpace, seed: int, config: UniformConfig) -> None:
        self.space = space
        self.config = config
        self.rng = np.random.default_rng(seed)
        self._log_prob = -math.log(space.count())

    def propose(self, n: int) -> list[Candidate]:
        check_count(n)
        out = []
        for _ in range(n):
            tokens = self.space.sample(self.rng)
            out.append(Candidate(tokens, to_text(decode(tokens)), self._log_prob, 0))
        return out

    def observe(self, results: Sequence[Result]) -> None:
        """Random search does not learn."""

    def state_dict(self) -> dict[str, Any]:
        return {"strategy": self.name, "rng": copy.deepcopy(self.rng.bit_generator.state)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.rng.bit_generator.state = copy.deepcopy(state["rng"])


def make_uniform(space: SearchSpace, seed: int, **options: Any) -> UniformRandom:
    return UniformRandom(space, seed, build_config(UniformConfig, "random", options))
