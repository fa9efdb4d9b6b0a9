"""The one interface every search strategy implements, and the plain data it exchanges.

A strategy proposes candidates (token sequences with the behaviour log-probability they were
drawn with and the policy version that drew them) and observes results (a reward, or a failure).
Candidates and results are frozen plain data, so a controller can checkpoint its pending trials
and a restarted strategy can learn from results of candidates proposed before the restart.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from orchestrator.space import Expr, decode


class StrategyError(ValueError):
    """A strategy asked for with a name, option or value it does not allow."""


@dataclass(frozen=True)
class Candidate:
    """One proposed activation.

    ``log_prob`` is the log-probability of ``tokens`` under the policy that drew them (the
    behaviour policy); ``token_log_probs`` splits it per token where the strategy knows it.
    PPO's importance ratio is computed against these stored values, never against a
    recomputation, so an update after a restart or a late result is still correct.
    """

    tokens: tuple[int, ...]
    expression: str
    log_prob: float
    policy_version: int
    token_log_probs: tuple[float, ...] | None = None

    @property
    def expr(self) -> Expr:
        return decode(self.tokens)

    def as_dict(self) -> dict[str, Any]:
        return {
            "tokens": list(self.tokens),
            "expression": self.expression,
            "log_prob": self.log_prob,
            "policy_version": self.policy_version,
            "token_log_probs": None if self.token_log_probs is None else list(self.token_log_probs),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Candidate:
        tlp = d.get("token_log_probs")
        return cls(
            tokens=tuple(int(t) for t in d["tokens"]),
            expression=str(d["expression"]),
            log_prob=float(d["log_prob"]),
            policy_version=int(d["policy_version"]),
            token_log_probs=None if tlp is None else tuple(float(v) for v in tlp),
        )


@dataclass(frozen=True)
class Result:
    """The outcome of one candidate: a finite reward, or the reason it failed.

    Build with ``Result.success`` or ``Result.failed``; a non-finite reward is a failure.
    """

    candidate: Candidate
    reward: float | None = None
    failure: str | None = None

    def __post_init__(self) -> None:
        if (self.reward is None) == (self.failure is None):
            raise ValueError("a result has either a reward or a failure reason, not both or neither")
        if self.reward is not None and not math.isfinite(self.reward):
            raise ValueError(f"a reward must be finite; got {self.reward!r} (report a failure)")

    @classmethod
    def success(cls, candidate: Candidate, reward: float) -> Result:
        return cls(candidate, reward=float(reward))

    @classmethod
    def failed(cls, candidate: Candidate, reason: str) -> Result:
        return cls(candidate, failure=reason)

    @property
    def ok(self) -> bool:
        return self.failure is None

    def as_dict(self) -> dict[str, Any]:
        return {"candidate": self.candidate.as_dict(), "reward": self.reward, "failure": self.failure}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Result:
        return cls(Candidate.from_dict(d["candidate"]), reward=d["reward"], failure=d["failure"])

    def value(self, failure_reward: float) -> float:
        """The reward a strategy learns from: the failure reward stands in for a failed child."""
        return failure_reward if self.reward is None else self.reward


@runtime_checkable
class Strategy(Protocol):
    """What the search loop needs from a strategy."""

    name: str

    def propose(self, n: int) -> list[Candidate]:
        """``n`` new candidates; never blocks on pending results."""
        ...

    def observe(self, results: Sequence[Result]) -> None:
        """Learn from finished candidates, in any order and from any earlier proposal."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: plain data and tensors (``torch.save``-able)."""
        ...

    def load_state_dict(self, state: Mapping[str, Any]) -> None: ...


@dataclass(frozen=True)
class UpdateStats:
    """One policy update, for learning curves: the batch's rewards and the policy's entropy."""

    version: int
    mean_reward: float
    entropy: float
    loss: float
    baseline: float


@runtime_checkable
class Learner(Protocol):
    """A strategy with a learned policy exposes its update history."""

    updates: list[UpdateStats]


def check_count(n: int) -> None:
    if not isinstance(n, int) or n < 1:
        raise StrategyError(f"propose(n) needs an integer n >= 1; got {n!r}")
