"""Choose among derived candidates by retraining them, beside a baseline, as real children.

The supernet's weights rank functions by how useful they were inside a mixture, which is not how
well they train alone. So every candidate and the baseline (ReLU by default) is trained from
scratch as an ordinary child (the child's network, optimiser and schedule, ``steps`` steps) on
``seeds`` seeds, all in one pack (``trainer.packing``: members with one seed share their batches),
and the one with the best mean validation accuracy wins (lower mean validation loss breaks ties,
then the earlier entry: the baseline comes first). A candidate whose loss turns non-finite on any
seed is never chosen. The baseline is an entry like the others, so the function returned never
retrains worse than it, on the validation split, in the same run.

The selection seeds are ``child.seed + 1000·(i + 1)``, never the seed the evaluation child or a
benchmark's seeds 0–999 use, so the choice is not fitted to the seeds it is judged on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.contract import TrainConfig
from orchestrator.space.activation import parse_activation
from orchestrator.trainer import loop
from orchestrator.trainer.data import Data
from orchestrator.trainer.errors import NonFiniteLoss

SEED_STRIDE = 1000


@dataclass(frozen=True)
class Retrained:
    expression: str
    val_accuracy: float  # mean over the seeds; nan when it diverged
    val_loss: float
    val_accuracies: tuple[float, ...]  # per seed
    diverged: bool

    def key(self) -> tuple[float, float]:
        """Larger is better: (mean val accuracy, −mean val loss); diverged: −∞."""
        if self.diverged:
            return (-math.inf, -math.inf)
        return (self.val_accuracy, -self.val_loss)


class _Quiet:
    def on_metrics(self, step: int, metrics: dict[str, float]) -> None: ...

    def on_checkpoint(self, step: int, state: dict[str, Any]) -> None: ...


def selection_seeds(cfg: TrainConfig, n: int) -> list[int]:
    return [cfg.seed + SEED_STRIDE * (i + 1) for i in range(n)]


def retrain(cfg: TrainConfig, expressions: Sequence[str], data: Data, steps: int, seeds: int) -> list[Retrained]:
    """Train every expression on ``seeds`` seeds for ``steps`` steps in one pack; in order."""
    base = cfg.model_copy(update={"steps": steps, "log_every": steps, "eval_every": 0, "checkpoint_every": 0,
                                  "warmup_steps": min(cfg.warmup_steps, steps - 1)})
    members = [(e, s) for e in expressions for s in selection_seeds(cfg, seeds)]
    results = loop.train_pack([base.model_copy(update={"seed": s}) for _, s in members],
                              [parse_activation(e) for e, _ in members], data, [_Quiet() for _ in members])
    out = []
    for i, expression in enumerate(expressions):
        mine = results[i * seeds:(i + 1) * seeds]
        done = [r for r in mine if not isinstance(r, NonFiniteLoss)]
        if len(done) < seeds:
            out.append(Retrained(expression, math.nan, math.nan, (), True))
            continue
        accs = tuple(r.val_accuracy for r in done)
        out.append(Retrained(expression, sum(accs) / seeds, sum(r.val_loss for r in done) / seeds, accs, False))
    return out


def choose(retrained: Sequence[Retrained]) -> int:
    """Index of the best entry by ``Retrained.key``; the first of equals (the baseline, first)."""
    if not retrained:
        raise ValueError("nothing to choose from")
    best = 0
    for i, r in enumerate(retrained):
        if r.key() > retrained[best].key():
            best = i
    return best
