"""Replaying a table with early stopping: what a stopping rule saves in child-steps, and what it
costs in the quality of the search (``bench/early_stopping.py``).

Each evaluation draws a seed like ``TableReward`` and walks that seed's curve step by step; at
each step the rule (``orchestrator.search.stopping``) decides from the trials before it. A
stopped child costs the steps it reached, and its reward, the one the strategy observes, is its
last validation accuracy; it is not a complete result: the best function found and the goal
(the table's top functions) count only children that ran to the end.

Children run side by side in the real loop, so a child cannot see the trials started just
before it: with ``concurrency`` c, trial i sees trials 0 … i−c (c = 1: strictly sequential,
the most favourable case for a rule). A child that diverged costs the steps up to its first
missing value, with or without a rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from orchestrator.search.base import Candidate, Result
from orchestrator.search.stopping import STOP, Rule, Trial
from orchestrator.table.format import Table
from orchestrator.table.replay import TableReward


@dataclass(frozen=True)
class Run:
    """One evaluated child: its function, the steps it trained, whether it ran to the end, and
    its last validation accuracy (None: diverged)."""

    key: str
    steps: int
    complete: bool
    last: float | None
    trial: Trial


@dataclass
class StagedReward:
    """``TableReward`` with a stopping rule (None: every child trains to the end)."""

    table: Table
    seed: int
    rule: Rule | None
    concurrency: int = 1
    runs: list[Run] = field(default_factory=list)
    base: TableReward = field(init=False)

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be >= 1; got {self.concurrency}")
        self.base = TableReward(self.table, self.seed)

    def __call__(self, candidate: Candidate) -> Result:
        result, entry, seed = self.base.draw(candidate)
        if entry is None or seed is None:
            return result  # refused for free: not trained
        key = entry.fingerprint
        curve = entry.curves[seed].val
        steps = self.table.steps
        seen = self.runs[: max(0, len(self.runs) - self.concurrency + 1)]
        history = [r.trial for r in seen]
        reached = next((i for i, v in enumerate(curve) if v is None), len(curve) - 1)
        for k in range(len(curve)):
            if self.rule is not None and self.rule.decide(steps, history, curve[: k + 1]) == STOP:
                last = curve[k]
                self.runs.append(Run(key, steps[min(k, reached)], False, last,
                                     Trial(tuple(curve[: k + 1]), False)))
                if last is None:
                    return Result.failed(candidate, "stopped early: diverged")
                return Result.success(candidate, last)
        complete = curve[-1] is not None
        self.runs.append(Run(key, steps[reached], complete, curve[-1],
                             Trial(tuple(curve), complete)))
        return result

    def charged(self, result: Result) -> bool:
        return self.base.charged(result)


@dataclass(frozen=True)
class Outcome:
    """One replayed search's cost and quality."""

    evaluations: int
    child_steps: int
    stopped: int
    best_accuracy: float | None  # ``Entry.mean_finished`` of the best complete child's function
    evaluations_to_goal: int | None
    steps_to_goal: int | None


def outcome(table: Table, runs: list[Run], goal: frozenset[str]) -> Outcome:
    """Cost and quality of one replay: the best function is the complete child with the best
    last accuracy; the goal is reached at the first complete child of a ``goal`` function."""
    spent = 0
    to_goal: tuple[int, int] | None = None
    best: Run | None = None
    for i, run in enumerate(runs):
        spent += run.steps
        if not run.complete or run.last is None:
            continue
        if best is None or best.last is None or run.last > best.last:
            best = run
        if to_goal is None and run.key in goal:
            to_goal = (i + 1, spent)
    entry = table.get(best.key) if best is not None else None
    return Outcome(
        evaluations=len(runs),
        child_steps=spent,
        stopped=sum(not r.complete for r in runs),
        best_accuracy=entry.mean_finished() if entry is not None else None,
        evaluations_to_goal=to_goal[0] if to_goal else None,
        steps_to_goal=to_goal[1] if to_goal else None,
    )


def within_steps(runs: list[Run], limit: int) -> list[Run]:
    """The runs a search could pay for with ``limit`` child-steps: the longest prefix whose
    steps add up to at most ``limit`` (a search with a rule, given what one without spent)."""
    spent, out = 0, []
    for run in runs:
        spent += run.steps
        if spent > limit:
            break
        out.append(run)
    return out
