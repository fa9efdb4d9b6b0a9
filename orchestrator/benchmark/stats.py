"""The benchmark's statistics: median over seeds with its spread, and the paired sign test.

Pure functions over plain numbers; nothing here knows about MLflow or cells.

- **Median and spread.** The paper reports the median of 5 runs. We report the median and the
  range (min–max) of the seeds' values: with 3–5 seeds an interquartile range says little more
  than the range, and the range shows every seed's reach.
- **Sign test.** For each pair (a model × dataset's two medians, or one seed's two values), the
  candidate wins when it beats the baseline by more than the tie tolerance, loses when it trails
  by more, and ties otherwise. The p-value is the exact two-sided binomial test of wins against
  losses with ties dropped: ``min(1, 2·P(X ≤ min(w, l)))`` for ``X ~ Binomial(w + l, 1/2)``;
  1 when every pair ties.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Summary:
    """The values of one activation × model × dataset over its seeds."""

    n: int
    median: float
    lo: float
    hi: float


def summarize(values: Sequence[float]) -> Summary:
    if not values:
        return Summary(0, math.nan, math.nan, math.nan)
    return Summary(len(values), float(statistics.median(values)), float(min(values)),
                   float(max(values)))


def outcome(candidate: float, baseline: float, tie_tolerance: float = 0.0) -> int:
    """+1 win, 0 tie, -1 loss of ``candidate`` against ``baseline``."""
    diff = candidate - baseline
    if diff > tie_tolerance:
        return 1
    if diff < -tie_tolerance:
        return -1
    return 0


def sign_test_p(wins: int, losses: int) -> float:
    """Exact two-sided binomial p-value of ``wins`` against ``losses`` (ties already dropped)."""
    n = wins + losses
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(wins, losses) + 1)) / 2**n
    return min(1.0, 2.0 * tail)


@dataclass(frozen=True)
class SignTest:
    wins: int
    ties: int
    losses: int

    @property
    def p_value(self) -> float:
        return sign_test_p(self.wins, self.losses)


def sign_test(pairs: Iterable[tuple[float, float]], tie_tolerance: float = 0.0) -> SignTest:
    """Over (candidate, baseline) pairs; pairs with a NaN on either side are left out."""
    results = [outcome(c, b, tie_tolerance) for c, b in pairs
               if not (math.isnan(c) or math.isnan(b))]
    return SignTest(results.count(1), results.count(0), results.count(-1))
