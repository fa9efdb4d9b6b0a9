"""Functional dedup: a function already evaluated is not trained again; its outcome is reused.

Keys are functional fingerprints (``orchestrator.space.fingerprint``), so two token sequences or
two trees computing the same function share one evaluation. Pure and in memory: the caller
computes keys and runs evaluations; ``Dedup`` only routes candidates and remembers outcomes.
A candidate whose function is being evaluated right now (an earlier duplicate in flight) is held
and released with that evaluation's outcome, so it is never trained twice either.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from orchestrator.search.base import Candidate, Result
from orchestrator.space.fingerprint import fingerprint


def candidate_key(candidate: Candidate) -> str:
    """The functional fingerprint of a candidate's expression (safe numerics)."""
    return fingerprint(candidate.expr)


@dataclass(frozen=True)
class Routed:
    """``evaluate``: (candidate, key) pairs of new functions, to train;
    ``reused``: results of functions already evaluated, with their cached outcome."""

    evaluate: list[tuple[Candidate, str]]
    reused: list[Result]


@dataclass
class Dedup:
    """Outcomes by key (reward or failure reason) and candidates held behind in-flight keys."""

    outcomes: dict[str, tuple[float | None, str | None]] = field(default_factory=dict)
    held: dict[str, list[Candidate]] = field(default_factory=dict)

    def route(self, candidates: Sequence[Candidate], keys: Sequence[str]) -> Routed:
        evaluate: list[tuple[Candidate, str]] = []
        reused: list[Result] = []
        for c, key in zip(candidates, keys, strict=True):
            known = self.outcomes.get(key)
            if known is not None:
                reused.append(Result(c, reward=known[0], failure=known[1]))
            elif key in self.held:
                self.held[key].append(c)
            else:
                self.held[key] = []
                evaluate.append((c, key))
        return Routed(evaluate, reused)

    def complete(self, result: Result, key: str) -> list[Result]:
        """Record the outcome of an evaluated key; returns it and the results of held duplicates."""
        self.outcomes[key] = (result.reward, result.failure)
        waiting = self.held.pop(key, [])
        return [result] + [Result(c, reward=result.reward, failure=result.failure) for c in waiting]

    def outcome(self, key: str) -> tuple[float | None, str | None] | None:
        """(reward, failure reason) of an evaluated key, or None if it was never completed."""
        return self.outcomes.get(key)

    def __contains__(self, key: object) -> bool:
        return key in self.outcomes

    def __len__(self) -> int:
        return len(self.outcomes)

    def state_dict(self) -> dict[str, Any]:
        return {
            "outcomes": {k: list(v) for k, v in self.outcomes.items()},
            "held": {k: [c.as_dict() for c in cs] for k, cs in self.held.items()},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.outcomes = {k: (v[0], v[1]) for k, v in state["outcomes"].items()}
        self.held = {k: [Candidate.from_dict(c) for c in cs] for k, cs in state["held"].items()}
