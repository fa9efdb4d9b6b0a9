"""Search quality without training: the reward of a candidate is how closely its function
matches a known target's.

Similarity: ``exp(−RMSE(f, t) / std(t))`` over ``GRID_POINTS`` points evenly spaced on
``[−5, 5]`` at β = 1 (NumPy reference, safe numerics). It is 1 for the target's function, about
0.37 for a constant at the target's mean, and falls smoothly in between, so near-misses earn
partial credit a policy can climb. A candidate the numeric screen rejects, or one with a
non-finite value on the grid, fails and gets the strategy's failure reward.

β: children train β, so a candidate that reads β is scored at its best β, found per candidate by
a grid over ``BETA_RANGE`` refined by golden-section search (``best_beta``): ``beta_mix(relu, …)``
is no longer scored as ReLU. Functions without β are scored as they are.

Budget and cost mirror the real search: an *evaluation* is a function that would be trained,
i.e. new (by fingerprint) and passing the screen. Repeats reuse the cached outcome (``Dedup``)
and screened-out functions are never trained, so neither counts; ``max_proposals`` bounds a
strategy that only repeats itself. Any reward with a ``charged(result)`` method (``Reward``)
drives the same loop: ``orchestrator.table.replay.TableReward`` replays real accuracies, where a
child that diverged was trained (an evaluation, without a reward) and a function outside the
table is refused for free, like a screened-out one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from orchestrator.search.base import Candidate, Learner, Result, Strategy, UpdateStats
from orchestrator.search.dedup import Dedup
from orchestrator.search.survival import (
    Quartiles,
    Sample,
    TwoSampleTest,
    km_quantile,
    weighted_logrank,
)
from orchestrator.space import Expr
from orchestrator.space.evaluate import evaluate
from orchestrator.space.expr import uses_beta
from orchestrator.space.fingerprint import fingerprint
from orchestrator.space.screen import screen

DOMAIN = 5.0
GRID_POINTS = 201
BETA_RANGE = (-4.0, 4.0)
BETA_GRID = 41
"""β values tried per candidate (step 0.2), before golden-section refinement around the best."""
GOLDEN_STEPS = 20
"""Golden-section iterations: the bracket of width 0.4 shrinks to about 3e-5."""


def similarity(values: np.ndarray, target: np.ndarray, scale: float) -> float:
    """``exp(−RMSE / scale)``; 0 when ``values`` has a non-finite entry."""
    if not np.all(np.isfinite(values)):
        return 0.0
    rmse = math.sqrt(float(np.mean(np.square(values - target))))
    return math.exp(-rmse / scale)


def best_beta(score: Callable[[float], float], low: float = BETA_RANGE[0],
              high: float = BETA_RANGE[1], grid: int = BETA_GRID,
              steps: int = GOLDEN_STEPS) -> tuple[float, float]:
    """The β in [low, high] that maximises ``score``, and its score: the best of an even grid,
    refined by golden-section search between its neighbours (a local search: the grid guards
    against the many optima of periodic functions)."""
    betas = np.linspace(low, high, grid)
    scores = [score(float(b)) for b in betas]
    i = int(np.argmax(scores))
    best_b, best_s = float(betas[i]), float(scores[i])
    a, b = float(betas[max(i - 1, 0)]), float(betas[min(i + 1, grid - 1)])
    g = (math.sqrt(5) - 1) / 2
    c, d = b - g * (b - a), a + g * (b - a)
    sc, sd = score(c), score(d)
    for _ in range(steps):
        if sc >= sd:
            b, d, sd = d, c, sc
            c = b - g * (b - a)
            sc = score(c)
        else:
            a, c, sc = c, d, sd
            d = a + g * (b - a)
            sd = score(d)
    for beta, value in ((c, sc), (d, sd)):
        if value > best_s:
            best_b, best_s = beta, value
    return best_b, best_s


class Reward(Protocol):
    """What ``simulate`` asks of a reward: a result per candidate, and whether a failed result
    still cost an evaluation (a child that was trained and diverged) or was refused for free."""

    def __call__(self, candidate: Candidate) -> Result: ...

    def charged(self, result: Result) -> bool: ...


@dataclass(frozen=True)
class SimilarityReward:
    """The simulator's reward: similarity of a candidate's function to ``target``'s, at the
    candidate's best β when it reads β (the target is taken at β = 1)."""

    target: Expr
    grid: np.ndarray = field(default_factory=lambda: np.linspace(-DOMAIN, DOMAIN, GRID_POINTS))

    def __post_init__(self) -> None:
        if float(np.std(self._values(self.target))) <= 1e-12:
            raise ValueError("the target must not be constant on [-5, 5]")

    def _values(self, expr: Expr, beta: float = 1.0) -> np.ndarray:
        return evaluate(expr, self.grid, beta=beta, numerics="safe")

    def __call__(self, candidate: Candidate) -> Result:
        expr = candidate.expr
        verdict = screen(expr, numerics="safe")
        if not verdict.ok:
            return Result.failed(candidate, f"screened out: {verdict.reason}")
        values = self._values(expr)
        if not np.all(np.isfinite(values)):
            return Result.failed(candidate, "non-finite value on the grid")
        t = self._values(self.target)
        scale = float(np.std(t))
        if not uses_beta(expr):
            return Result.success(candidate, similarity(values, t, scale))
        with np.errstate(all="ignore"):
            _, best = best_beta(lambda b: similarity(self._values(expr, b), t, scale))
        return Result.success(candidate, max(best, similarity(values, t, scale)))

    def charged(self, result: Result) -> bool:
        return result.ok


@dataclass
class Trace:
    """One simulated search: the reward of each evaluation in order (None: trained, but failed),
    the fingerprint of each, and the cost counters (``failures``: refused or failed proposals)."""

    rewards: list[float | None] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    proposals: int = 0
    failures: int = 0
    repeats: int = 0
    updates: list[UpdateStats] = field(default_factory=list)
    best_expression: str | None = None

    def best_after(self, evaluations: int) -> float:
        """The best reward among the first ``evaluations`` (0.0 before any)."""
        head = [r for r in self.rewards[:evaluations] if r is not None]
        return max(head) if head else 0.0

    def evaluations_to(self, threshold: float) -> int | None:
        """How many evaluations until the first reward >= threshold (None: never)."""
        for i, r in enumerate(self.rewards):
            if r is not None and r >= threshold:
                return i + 1
        return None

    def evaluations_to_any(self, targets: set[str]) -> int | None:
        """How many evaluations until the first of the functions ``targets`` (fingerprints)
        was evaluated, whatever its reward (None: never)."""
        for i, key in enumerate(self.keys):
            if key in targets:
                return i + 1
        return None


def simulate(
    strategy: Strategy,
    reward: Reward,
    budget: int,
    batch: int = 20,
    max_proposals: int | None = None,
) -> Trace:
    """Run ``strategy`` until ``budget`` evaluations (or ``max_proposals``, default 25·budget)."""
    limit = 25 * budget if max_proposals is None else max_proposals
    dedup = Dedup()
    keys: dict[tuple[int, ...], str] = {}  # tokens -> fingerprint, to fingerprint once
    trace = Trace()
    best = -math.inf
    while len(trace.rewards) < budget and trace.proposals < limit:
        candidates = strategy.propose(batch)
        if not candidates:
            break  # exhaustive search ran out of sequences
        trace.proposals += len(candidates)
        for c in candidates:
            if c.tokens not in keys:
                keys[c.tokens] = fingerprint(c.expr)
        routed = dedup.route(candidates, [keys[c.tokens] for c in candidates])
        results: list[Result] = list(routed.reused)
        trace.repeats += len(routed.reused)
        for c, key in routed.evaluate:
            if len(trace.rewards) >= budget:
                break
            r = reward(c)
            if r.ok:
                trace.rewards.append(float(r.reward))  # type: ignore[arg-type]
                trace.keys.append(key)
                if r.reward > best:  # type: ignore[operator]
                    best, trace.best_expression = float(r.reward), c.expression  # type: ignore[arg-type]
            else:
                trace.failures += 1
                if reward.charged(r):
                    trace.rewards.append(None)
                    trace.keys.append(key)
            done = dedup.complete(r, key)
            trace.repeats += len(done) - 1
            results += done
        strategy.observe(results)
    if isinstance(strategy, Learner):
        trace.updates = list(strategy.updates)
    return trace


@dataclass(frozen=True)
class Spread:
    mean: float
    std: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        if not values:
            return cls(math.nan, math.nan, 0)
        return cls(float(np.mean(values)), float(np.std(values)), len(values))


@dataclass(frozen=True)
class Summary:
    """One strategy's traces over seeds: medians with their interquartile range, and the
    evaluations to ``threshold`` as censored times (``survival``): a seed that never reached it
    is censored at the evaluations it made, not counted as the budget."""

    strategy: str
    seeds: int
    budget: int
    checkpoints: list[int]
    best: list[Quartiles]  # best reward after each checkpoint
    threshold: float
    hits: Sample  # evaluations to the threshold, censored where not reached
    to_threshold: tuple[float | None, float | None, float | None]  # Kaplan–Meier q1, median, q3
    proposals: Quartiles
    entropy_first_last: tuple[Spread, Spread] | None
    reward_first_last: tuple[Spread, Spread] | None

    @property
    def reached(self) -> int:
        return self.hits.events

    @property
    def median_to_threshold(self) -> float | None:
        """Kaplan–Meier median of the evaluations to the threshold; None: "> budget"."""
        return self.to_threshold[1]


def summarize(name: str, traces: Sequence[Trace], budget: int, threshold: float,
              targets: set[str] | None = None) -> Summary:
    """Summary over seeds; a run reaches the threshold at its first reward >= ``threshold``,
    or, given ``targets`` (fingerprints), at its first evaluation of one of them."""
    checkpoints = [max(1, round(budget * k / 10)) for k in range(1, 11)]
    hits = Sample.of([t.evaluations_to(threshold) if targets is None else t.evaluations_to_any(targets)
                      for t in traces], [len(t.rewards) for t in traces])
    learned = [t.updates for t in traces if len(t.updates) >= 10]
    ent = rew = None
    if learned:
        def window(us: list[UpdateStats], attr: str, last: bool) -> float:
            k = max(1, len(us) // 10)  # first / last 10 % of the updates
            part = us[-k:] if last else us[:k]
            return float(np.mean([getattr(u, attr) for u in part]))

        ent = (Spread.of([window(u, "entropy", False) for u in learned]),
               Spread.of([window(u, "entropy", True) for u in learned]))
        rew = (Spread.of([window(u, "mean_reward", False) for u in learned]),
               Spread.of([window(u, "mean_reward", True) for u in learned]))
    return Summary(
        strategy=name,
        seeds=len(traces),
        budget=budget,
        checkpoints=checkpoints,
        best=[Quartiles.of([t.best_after(c) for t in traces]) for c in checkpoints],
        threshold=threshold,
        hits=hits,
        to_threshold=(km_quantile(hits, 0.25), km_quantile(hits, 0.5), km_quantile(hits, 0.75)),
        proposals=Quartiles.of([float(t.proposals) for t in traces]),
        entropy_first_last=ent,
        reward_first_last=rew,
    )


@dataclass(frozen=True)
class Versus:
    """A strategy's evaluations to the threshold against a baseline's, by two censoring-aware
    tests (``z`` < 0: the strategy reaches earlier)."""

    baseline: str
    logrank: TwoSampleTest
    gehan: TwoSampleTest


def versus(summary: Summary, baseline: Summary) -> Versus:
    return Versus(baseline.strategy, weighted_logrank(summary.hits, baseline.hits, "logrank"),
                  weighted_logrank(summary.hits, baseline.hits, "gehan"))
