"""Any strategy, screened by the surrogate: propose ``candidates``× more, train only the best-ranked.

Option ``surrogate: {candidates: 4, warmup: 20, neighbours: 5}`` of every strategy. Until
``warmup`` rewards have been seen the wrapped strategy's proposals pass through unchanged. After
that each ``propose(n)`` asks the wrapped strategy for ``candidates · n`` proposals, drops
functions already evaluated or proposed twice (by fingerprint: they would cost nothing, but would
take a slot) and returns the ``n`` the surrogate (``surrogate.NearestNeighbours`` on
``surrogate.features``) ranks highest, topped up with known functions when fewer than ``n`` are
new. So the wrapper never asks for more training than the strategy alone would: ``n`` per call.

The wrapped strategy observes only the proposals that were returned (trained or cached); the
others are dropped unseen. A policy therefore learns from a filtered sample; its stored behaviour
log-probabilities keep PPO's ratio correct per candidate, but the selection is not corrected for.
``prior`` (expression, reward) pairs, e.g. from a table of trained functions, join the training
set from the start and count towards ``warmup``. The option ``surrogate.prior`` names a half of
the replayed table (``development`` or ``heldout``, ``orchestrator.table.split``): a table
protocol fits the surrogate on that half's functions and never on the half it measures.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from orchestrator.search.base import (
    Candidate,
    Learner,
    Result,
    Strategy,
    StrategyError,
    UpdateStats,
)
from orchestrator.search.surrogate import NearestNeighbours, features
from orchestrator.space import Expr, parse, to_text
from orchestrator.space.fingerprint import fingerprint

PRIOR_HALVES = ("development", "heldout")
"""What ``surrogate.prior`` may name: a half of the replayed table (``orchestrator.table.split``),
whose functions the runner of a table protocol resolves to (expression, reward) pairs."""


@dataclass(frozen=True)
class SurrogateConfig:
    candidates: int = 4
    warmup: int = 20
    neighbours: int = 5
    prior: str | None = None

    def __post_init__(self) -> None:
        for name, low in (("candidates", 1), ("warmup", 1), ("neighbours", 1)):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < low:
                raise StrategyError(f"option surrogate.{name} must be an integer >= {low}; got {v!r}")
        if self.prior is not None and self.prior not in PRIOR_HALVES:
            raise StrategyError(f"option surrogate.prior must be one of {', '.join(PRIOR_HALVES)} "
                                f"(a half of the replayed table); got {self.prior!r}")


def surrogate_config(value: object) -> SurrogateConfig:
    """The ``surrogate`` option as a config; refuses anything but a mapping of known keys."""
    if not isinstance(value, Mapping):
        raise StrategyError("option surrogate must be a mapping such as {candidates: 4, warmup: 20}; "
                            f"got {value!r}")
    allowed = ("candidates", "warmup", "neighbours", "prior")
    unknown = sorted(set(map(str, value)) - set(allowed))
    if unknown:
        raise StrategyError(f"unknown option(s) {', '.join(map(repr, unknown))} for surrogate; "
                            f"allowed: {', '.join(allowed)}")
    return SurrogateConfig(**value)


@lru_cache(maxsize=65536)
def _describe(expression: str) -> tuple[str, np.ndarray | None]:
    """A function's fingerprint and features, by its canonical text: pure, so shared by every
    screen in the process (a table protocol builds one per seed, each with the same prior)."""
    expr = parse(expression)
    return fingerprint(expr), features(expr)


class SurrogateScreen:
    """``inner`` with its proposals ranked by the surrogate before any is trained."""

    def __init__(self, inner: Strategy, config: SurrogateConfig,
                 prior: Sequence[tuple[str, float]] = ()) -> None:
        self.inner = inner
        self.config = config
        self.name = inner.name
        self.prior = [(str(e), float(r)) for e, r in prior]
        self.seen: dict[str, tuple[str, float | None]] = {}  # fingerprint -> (expression, reward)
        self._x: list[np.ndarray] = []
        self._y: list[float] = []
        self.screened = 0  # proposals dropped unseen
        for e, r in self.prior:
            self._learn(parse(e), r)

    @property
    def updates(self) -> list[UpdateStats]:
        return list(self.inner.updates) if isinstance(self.inner, Learner) else []

    def _key_features(self, expr: Expr) -> tuple[str, np.ndarray | None]:
        return _describe(to_text(expr))

    def _learn(self, expr: Expr, reward: float) -> None:
        _, f = self._key_features(expr)
        if f is not None:
            self._x.append(f)
            self._y.append(reward)

    def propose(self, n: int) -> list[Candidate]:
        if len(self._y) < self.config.warmup or self.config.candidates == 1:
            return self.inner.propose(n)
        pool = self.inner.propose(self.config.candidates * n)
        new: list[tuple[Candidate, np.ndarray | None]] = []
        known: list[Candidate] = []
        keys: set[str] = set()
        for c in pool:
            key, f = self._key_features(c.expr)
            if key in self.seen or key in keys:
                known.append(c)
            else:
                keys.add(key)
                new.append((c, f))
        model = NearestNeighbours.fit(self._x, self._y, k=self.config.neighbours)
        scorable = [f for _, f in new if f is not None]
        predicted = iter(model.predict(scorable))
        scores = [float(next(predicted)) if f is not None else -np.inf for _, f in new]
        order = np.argsort(-np.asarray(scores), kind="stable")
        chosen = [new[int(i)][0] for i in order[:n]] + known[: max(0, n - len(new))]
        self.screened += len(pool) - len(chosen)
        return chosen

    def observe(self, results: Sequence[Result]) -> None:
        for r in results:
            key, _ = self._key_features(r.candidate.expr)
            if key not in self.seen and r.reward is not None:
                self._learn(r.candidate.expr, r.reward)
            self.seen.setdefault(key, (r.candidate.expression, r.reward))
        self.inner.observe(results)

    def state_dict(self) -> dict[str, Any]:
        return {
            "strategy": self.name,
            "surrogate": {"seen": [[k, e, r] for k, (e, r) in self.seen.items()],
                          "screened": self.screened},
            "inner": self.inner.state_dict(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        s = state["surrogate"]
        self.seen, self._x, self._y = {}, [], []
        for e, r in self.prior:
            self._learn(parse(e), r)
        for k, e, r in s["seen"]:
            self.seen[str(k)] = (str(e), None if r is None else float(r))
            if r is not None:
                self._learn(parse(str(e)), float(r))
        self.screened = int(s["screened"])
        self.inner.load_state_dict(copy.copy(dict(state["inner"])))
