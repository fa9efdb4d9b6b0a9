"""Replaying a table: a strategy's proposals get real child accuracies (``search-sim --table``).

A proposal's function is looked up by fingerprint. In the table, its reward is the final
validation accuracy of one of its seeds, drawn at random (seeded), so the replay has the real
seed noise and the real plateaus of training; a seed that diverged was trained all the same: an
evaluation spent, with the failure reward. Not in the table (a uniform sample leaves most of
the space out): refused before any training, like a function the numeric screen rejects, at no
cost in evaluations; the strategy observes the failure reward, so the replay searches the
table's functions and nothing else.

The goal of a replayed search is the table's top ``fraction`` (1 %) of functions by mean final
accuracy over seeds: a run reaches it when it first evaluates one of them, whatever the seed it
drew, so a lucky seed of a mediocre function does not count and an unlucky seed of a top
function does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from orchestrator.search.base import Candidate, Result
from orchestrator.space import Numerics, SearchSpace
from orchestrator.space.fingerprint import fingerprint
from orchestrator.space.screen import screen
from orchestrator.table.format import Entry, Table

NOT_IN_TABLE = "not in table"
SCREENED = "screened out"


def ranking(table: Table) -> list[tuple[Entry, float]]:
    """Functions with every seed finished, best mean final validation accuracy first (ties by
    expression, so the order is the same everywhere)."""
    scored = [(e, m) for e in table.entries if (m := e.mean_final()) is not None]
    return sorted(scored, key=lambda t: (-t[1], t[0].expression))


@dataclass(frozen=True)
class Top:
    """The table's best functions: ``count`` of them (with ties at the edge), their fingerprints,
    and the lowest mean final accuracy among them."""

    fraction: float
    count: int
    fingerprints: frozenset[str]
    threshold: float


def top(table: Table, fraction: float = 0.01) -> Top:
    """The top ``fraction`` of the table's functions (at least one; functions with a failed seed
    count in the total but are never among the best); ties with the last one are included."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1]; got {fraction}")
    ranked = ranking(table)
    if not ranked:
        raise ValueError("no function of the table has every seed finished")
    k = min(len(ranked), max(1, math.ceil(fraction * len(table))))
    threshold = ranked[k - 1][1]
    chosen = frozenset(e.fingerprint for e, m in ranked if m >= threshold)
    return Top(fraction, len(chosen), chosen, threshold)


def table_space(table: Table) -> SearchSpace:
    """The space a table's functions come from (its metadata's units and op lists)."""
    space = table.meta.get("space", {})
    try:
        return SearchSpace(units=int(space["units"]), unary=tuple(space["unary"]),
                           binary=tuple(space["binary"]))
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"the table's metadata has no usable space: {e}") from e


def proposal_cap(table: Table, budget: int) -> int:
    """Proposals a replayed run may make: the simulator's 25 × budget, scaled up by how much of
    the space the table leaves out (refusals are free, so a table of a tenth of the functions
    needs ten times the proposals for the same budget)."""
    passing = table.meta.get("space", {}).get("passing_screen")
    share = len(table) / passing if isinstance(passing, int) and passing >= len(table) > 0 else 1.0
    return math.ceil(25 * budget / share)


@dataclass
class TableReward:
    """Rewards from a table: a random seed's final validation accuracy (see the module)."""

    table: Table
    seed: int
    numerics: Numerics = "safe"
    rng: np.random.Generator = field(init=False)
    draws: dict[str, int] = field(default_factory=dict)  # fingerprint -> the seed drawn

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)

    def __call__(self, candidate: Candidate) -> Result:
        return self.draw(candidate)[0]

    def draw(self, candidate: Candidate) -> tuple[Result, Entry | None, int | None]:
        """The result, with the table entry and the seed drawn (None, None: refused), so a
        caller walking the drawn curve (``table.staged``) fingerprints each candidate once."""
        expr = candidate.expr
        key = fingerprint(expr, self.numerics)
        entry = self.table.get(key)
        if entry is None:
            verdict = screen(expr, self.numerics)
            if not verdict.ok:
                return Result.failed(candidate, f"{SCREENED}: {verdict.reason}"), None, None
            return Result.failed(candidate, NOT_IN_TABLE), None, None
        seeds = entry.seeds
        seed = seeds[int(self.rng.integers(len(seeds)))]
        self.draws[key] = seed
        value = entry.final(seed)
        if value is None:
            return Result.failed(candidate, f"{entry.curves[seed].failure or 'failed'} "
                                            f"(table seed {seed})"), entry, seed
        return Result.success(candidate, value), entry, seed

    def charged(self, result: Result) -> bool:
        """A table function was trained, whatever its outcome; a refused one was not."""
        return result.ok or not (result.failure or "").startswith((NOT_IN_TABLE, SCREENED))
