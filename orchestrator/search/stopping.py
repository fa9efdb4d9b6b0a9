"""Early stopping of children: pure rules that decide, from the validation curves seen so far,
whether a running child is worth its remaining steps.

A child reports validation accuracy at its evaluation steps (``steps``, e.g. 100, 200, 300,
400); ``curve`` holds what it has reported so far, one value per step reached (None where it
had diverged). ``history`` holds the other trials: finished ones (``complete``) and ones
already stopped. Each rule is a frozen, validated options dataclass with ``decide``:

- ``median`` (Katib's median stopping rule): at step s ≥ ``start_step``, once ``min_trials``
  trials have completed, stop a trial whose best accuracy so far is below the median, over the
  completed trials, of each one's running average of accuracy up to s. It never pauses a trial:
  a trial it lets through trains on.
- ``asha`` (asynchronous successive halving, Li et al. 2020, as a stopping rule): every
  evaluation step from ``min_step`` on, except the last, is a rung; a trial reaching a rung
  goes on only if its accuracy there is among the top ``1/eta`` of all values recorded at that
  rung so far (its own included; at least the best one), once the rung holds ``min_trials``
  values. A trial it stops is not resumed later (promotion by continuation, not by restart).

The last step never stops anything: the child has already paid for it.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal

Decision = Literal["continue", "stop"]
CONTINUE: Decision = "continue"
STOP: Decision = "stop"


class StoppingError(ValueError):
    """Bad early-stopping options: names the field and what is allowed."""


@dataclass(frozen=True)
class Trial:
    """One other trial as the rule sees it: its reported accuracies (one per step reached) and
    whether it ran to the end (a stopped or failed trial did not)."""

    curve: tuple[float | None, ...]
    complete: bool


def _int(name: str, value: object, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise StoppingError(f"early_stopping.{name} must be an integer >= {minimum}; "
                            f"got {value!r}")


@dataclass(frozen=True)
class MedianRule:
    """Katib's median stopping rule (see the module)."""

    min_trials: int = 3
    start_step: int = 0

    def __post_init__(self) -> None:
        _int("min_trials", self.min_trials, 1)
        _int("start_step", self.start_step, 0)

    def decide(self, steps: Sequence[int], history: Sequence[Trial],
               curve: Sequence[float | None]) -> Decision:
        k = len(curve) - 1
        if k < 0 or k >= len(steps) - 1 or steps[k] < self.start_step:
            return CONTINUE
        if curve[k] is None:
            return STOP  # diverged: nothing left to learn from it
        done = [t.curve for t in history if t.complete and len(t.curve) > k]
        averages = [_mean(c[: k + 1]) for c in done]
        usable = [a for a in averages if a is not None]
        if len(usable) < self.min_trials:
            return CONTINUE
        best = max(v for v in curve if v is not None)
        return STOP if best < statistics.median(usable) else CONTINUE


@dataclass(frozen=True)
class AshaRule:
    """Successive halving as an asynchronous stopping rule (see the module)."""

    eta: int = 3
    min_step: int = 0
    min_trials: int = 3

    def __post_init__(self) -> None:
        _int("eta", self.eta, 2)
        _int("min_step", self.min_step, 0)
        _int("min_trials", self.min_trials, 1)

    def decide(self, steps: Sequence[int], history: Sequence[Trial],
               curve: Sequence[float | None]) -> Decision:
        k = len(curve) - 1
        if k < 0 or k >= len(steps) - 1 or steps[k] < self.min_step:
            return CONTINUE
        value = curve[k]
        if value is None:
            return STOP
        rung = [v for t in history if len(t.curve) > k and (v := t.curve[k]) is not None]
        rung.append(value)
        if len(rung) < self.min_trials:
            return CONTINUE
        keep = max(1, len(rung) // self.eta)
        cutoff = sorted(rung, reverse=True)[keep - 1]
        return CONTINUE if value >= cutoff else STOP


Rule = MedianRule | AshaRule
RULES: dict[str, type[MedianRule] | type[AshaRule]] = {"median": MedianRule, "asha": AshaRule}


def make_rule(options: Mapping[str, Any]) -> Rule:
    """The rule an ``early_stopping`` mapping names (``{"rule": "median", ...}``), validated."""
    options = dict(options)
    name = options.pop("rule", None)
    if name not in RULES:
        raise StoppingError(f"early_stopping.rule must be one of {', '.join(RULES)}; "
                            f"got {name!r}")
    cls = RULES[name]
    allowed = [f.name for f in fields(cls)]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise StoppingError(f"unknown early_stopping option(s) {', '.join(map(repr, unknown))} "
                            f"for rule {name!r}; allowed: rule, {', '.join(allowed)}")
    return cls(**options)


def _mean(values: Sequence[float | None]) -> float | None:
    """Mean of the values, None if any is missing (a diverged curve has no running average)."""
    if any(v is None for v in values):
        return None
    return math.fsum(v for v in values if v is not None) / len(values)
