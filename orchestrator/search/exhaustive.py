"""Exhaustive search: every valid sequence once, in the space's deterministic order, keeping the
top performers (the paper's method for small spaces).

Sequences that are not canonical (N ≥ 3 units: the same tree written in another unit order) are
skipped, since they would repeat a function. When the space is used up, ``propose`` returns
fewer candidates than asked, and then none.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any

from orchestrator.search.base import Candidate, Result, check_count
from orchestrator.search.options import build_config, require_int, require_number
from orchestrator.space import SearchSpace, decode, is_canonical, to_text


@dataclass(frozen=True)
class ExhaustiveConfig:
    top_k: int = 10
    failure_reward: float = 0.0

    def __post_init__(self) -> None:
        require_int(self, "top_k", 1)
        require_number(self, "failure_reward", float("-inf"), high=None)


class Exhaustive:
    name = "exhaustive"

    def __init__(self, space: SearchSpace, seed: int, config: ExhaustiveConfig) -> None:
        self.space = space
        self.config = config
        self.position = 0  # sequences of space.enumerate() consumed so far
        self.top: list[tuple[float, str]] = []  # (reward, expression), best first
        self._iter: Iterator[tuple[int, ...]] | None = None
        self.exhausted = False

    def _sequences(self) -> Iterator[tuple[int, ...]]:
        if self._iter is None:
            self._iter = islice(self.space.enumerate(), self.position, None)
        return self._iter

    def propose(self, n: int) -> list[Candidate]:
        check_count(n)
        out: list[Candidate] = []
        it = self._sequences()
        while len(out) < n:
            tokens = next(it, None)
            if tokens is None:
                self.exhausted = True
                break
            self.position += 1
            if self.space.units >= 3 and not is_canonical(tokens):
                continue
            out.append(Candidate(tokens, to_text(decode(tokens)), 0.0, 0))
        return out

    def observe(self, results: Sequence[Result]) -> None:
        seen = {e for _, e in self.top}
        for r in results:
            if r.candidate.expression not in seen:
                seen.add(r.candidate.expression)
                self.top.append((r.value(self.config.failure_reward), r.candidate.expression))
        self.top.sort(key=lambda t: -t[0])
        del self.top[self.config.top_k :]

    def state_dict(self) -> dict[str, Any]:
        return {
            "strategy": self.name,
            "position": self.position,
            "exhausted": self.exhausted,
            "top": [list(t) for t in self.top],
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.position = int(state["position"])
        self.exhausted = bool(state["exhausted"])
        self.top = [(float(r), str(e)) for r, e in state["top"]]
        self._iter = None


def make_exhaustive(space: SearchSpace, seed: int, **options: Any) -> Exhaustive:
    return Exhaustive(space, seed, build_config(ExhaustiveConfig, "exhaustive", options))
