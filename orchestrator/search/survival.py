"""Evaluations-to-threshold as time-to-event data: Kaplan–Meier quantiles and censoring-aware
two-sample tests.

A search run either reaches the threshold after ``t`` evaluations (an *event* at ``t``) or stops
without reaching it, after its budget or earlier when it ran out of proposals (*censored* at the
evaluations it made: all we know is that its time is larger). Counting a censored run as its
budget, or dropping it, biases any mean or median; these estimators do neither.

- **Kaplan–Meier** ``S(t) = Π_{t_j ≤ t} (1 − d_j / n_j)`` over the distinct event times ``t_j``
  (``d_j`` events among the ``n_j`` runs still at risk; a run censored at ``t_j`` is still at
  risk there, the usual convention). The q-quantile is the smallest event time with
  ``S(t) < 1 − q``, or midway between two event times where ``S`` sits exactly at ``1 − q``
  (so that without censoring the median is the ordinary sample median); ``None`` when ``S``
  never gets that low (the median is then "> budget": at most half the runs reached the goal).
- **Weighted log-rank tests** of equal time-to-event distributions in two samples: at each
  event time the observed events of sample A are compared with their expectation under the null,
  weighted by ``w_j``; ``Z = Σ w_j (O_j − E_j) / sqrt(Σ w_j² V_j)`` is asymptotically normal and
  the two-sided p-value is ``P(|N(0,1)| ≥ |Z|)``. Log-rank: ``w_j = 1`` (equal weight to every
  event time, most powerful when one hazard is a constant multiple of the other); Gehan's
  generalised Wilcoxon: ``w_j = n_j`` (more weight to early events).

Pure functions over plain numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.stats import norm  # type: ignore[import-untyped]

Weights = Literal["logrank", "gehan"]


@dataclass(frozen=True)
class Sample:
    """Times with their event flags: ``reached[i]`` False means censored at ``times[i]``."""

    times: tuple[float, ...]
    reached: tuple[bool, ...]

    def __post_init__(self) -> None:
        if len(self.times) != len(self.reached):
            raise ValueError(f"times ({len(self.times)}) and reached ({len(self.reached)}) "
                             "must have the same length")
        if any(not math.isfinite(t) or t < 0 for t in self.times):
            raise ValueError("times must be finite and >= 0")

    @classmethod
    def of(cls, hits: Sequence[int | None], censored_at: Sequence[int]) -> Sample:
        """From per-run hits (None: never reached) and the evaluations each run made."""
        if len(hits) != len(censored_at):
            raise ValueError("hits and censored_at must have the same length")
        return cls(tuple(float(c if h is None else h) for h, c in zip(hits, censored_at, strict=True)),
                   tuple(h is not None for h in hits))

    @property
    def events(self) -> int:
        return sum(self.reached)

    def __len__(self) -> int:
        return len(self.times)


def kaplan_meier(sample: Sample) -> list[tuple[float, float]]:
    """The survival curve's steps: ``(event time, S just after it)``, in time order."""
    times = np.asarray(sample.times, dtype=np.float64)
    reached = np.asarray(sample.reached, dtype=bool)
    s = 1.0
    steps = []
    for t in np.unique(times[reached]):
        at_risk = int(np.sum(times >= t))
        d = int(np.sum((times == t) & reached))
        s *= 1.0 - d / at_risk
        steps.append((float(t), s))
    return steps


def km_quantile(sample: Sample, q: float) -> float | None:
    """The time by which a fraction ``q`` of the runs has reached the goal (Kaplan–Meier); None
    when the curve never falls that low."""
    if not 0.0 < q < 1.0:
        raise ValueError(f"q must be in (0, 1); got {q!r}")
    steps = kaplan_meier(sample)
    for i, (t, s) in enumerate(steps):
        if abs(s - (1.0 - q)) <= 1e-12:  # flat exactly at 1 − q: midway to the next event
            return (t + steps[i + 1][0]) / 2 if i + 1 < len(steps) else None
        if s < 1.0 - q:
            return t
    return None


def km_median(sample: Sample) -> float | None:
    return km_quantile(sample, 0.5)


@dataclass(frozen=True)
class TwoSampleTest:
    """A weighted log-rank statistic: ``z`` > 0 when sample A reaches *later* than B."""

    z: float
    p_value: float
    weights: Weights


def weighted_logrank(a: Sample, b: Sample, weights: Weights = "logrank") -> TwoSampleTest:
    """Two-sided test that ``a`` and ``b`` share one time-to-event distribution.

    ``p_value`` is 1 when there is nothing to compare (no event, or no variance)."""
    if weights not in ("logrank", "gehan"):
        raise ValueError(f"weights must be 'logrank' or 'gehan'; got {weights!r}")
    ta, ea = np.asarray(a.times, dtype=np.float64), np.asarray(a.reached, dtype=bool)
    tb, eb = np.asarray(b.times, dtype=np.float64), np.asarray(b.reached, dtype=bool)
    event_times = np.unique(np.concatenate([ta[ea], tb[eb]]))
    num = var = 0.0
    for t in event_times:
        na, nb = int(np.sum(ta >= t)), int(np.sum(tb >= t))
        da, db = int(np.sum((ta == t) & ea)), int(np.sum((tb == t) & eb))
        n, d = na + nb, da + db
        w = 1.0 if weights == "logrank" else float(n)
        num += w * (da - d * na / n)
        if n > 1:
            var += w * w * d * (na / n) * (nb / n) * (n - d) / (n - 1)
    if var <= 0.0:
        return TwoSampleTest(0.0, 1.0, weights)
    z = -num / math.sqrt(var)  # more events than expected in A = A reaches earlier = z < 0
    return TwoSampleTest(z, float(2.0 * norm.sf(abs(z))), weights)


@dataclass(frozen=True)
class Quartiles:
    """Median and interquartile range of plain (uncensored) values."""

    q1: float
    median: float
    q3: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Quartiles:
        if not values:
            return cls(math.nan, math.nan, math.nan, 0)
        q1, med, q3 = np.percentile(np.asarray(values, dtype=np.float64), [25, 50, 75])
        return cls(float(q1), float(med), float(q3), len(values))
