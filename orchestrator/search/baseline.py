"""Exponential moving average of rewards: the baseline the paper subtracts from each reward."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass
class EmaBaseline:
    """``b ← decay·b + (1 − decay)·r`` for each reward in turn.

    Starts unset; the first batch's mean becomes its value, so the first update is not pushed
    towards whatever was sampled first just because every reward exceeds an arbitrary 0.
    """

    decay: float
    value: float | None = None

    def advantages(self, rewards: Sequence[float]) -> list[float]:
        """Rewards minus the baseline as it stands before this batch."""
        b = sum(rewards) / len(rewards) if self.value is None else self.value
        return [r - b for r in rewards]

    def update(self, rewards: Sequence[float]) -> None:
        if self.value is None:
            self.value = sum(rewards) / len(rewards)
            return
        for r in rewards:
            self.value = self.decay * self.value + (1.0 - self.decay) * r
