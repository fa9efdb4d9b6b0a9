"""The whole one-shot method: supernet search(es), derivation of candidates, selection by retraining.

``restarts`` supernet searches (seeds ``child.seed + r``) rank every slot's ops; ``derive`` turns
the rankings into ``candidates`` distinct functions that pass the screen (never affine, never
non-finite); ``select`` retrains them beside the baseline and returns the best by validation
accuracy. With ``candidates: 0`` the argmax derivation of the first search is returned as is (the
method before selection, kept for comparison). No I/O: progress goes to ``Hooks``; restart r's
steps follow restart r−1's on the step axis.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from orchestrator.contract import TrainConfig
from orchestrator.oneshot.config import OneShotConfig
from orchestrator.oneshot.derive import Candidate, Rejected, derive, slot_ranking
from orchestrator.oneshot.search import SearchOutcome, search
from orchestrator.oneshot.select import Retrained, choose, retrain
from orchestrator.space.activation import Builtin, parse_activation
from orchestrator.trainer.data import Data
from orchestrator.trainer.errors import NonFiniteLoss
from orchestrator.trainer.loop import Hooks


@dataclass(frozen=True)
class Found:
    searches: list[SearchOutcome]
    candidates: list[Candidate]
    rejected: list[Rejected]
    retrained: list[Retrained]  # the baseline first, then the candidates in order; [] without selection
    expression: str  # the result: a candidate, the baseline, or (candidates: 0) the argmax derivation
    wall_time_s: float

    @property
    def chosen(self) -> Retrained | None:
        return next((r for r in self.retrained if r.expression == self.expression), None)

    @property
    def baseline(self) -> Retrained | None:
        return self.retrained[0] if self.retrained else None


class _Shifted:
    """Hooks that report at ``offset + step`` (restart r after restart r − 1)."""

    def __init__(self, hooks: Hooks, offset: int) -> None:
        self.hooks, self.offset = hooks, offset

    def on_metrics(self, step: int, metrics: dict[str, float]) -> None:
        self.hooks.on_metrics(self.offset + step, metrics)

    def on_checkpoint(self, step: int, state: dict[str, Any]) -> None:
        self.hooks.on_checkpoint(self.offset + step, state)


def find(cfg: TrainConfig, ocfg: OneShotConfig, data: Data, hooks: Hooks) -> Found:
    """Search, derive, select; raises NonFiniteLoss when a supernet or the baseline diverges."""
    t0 = time.perf_counter()
    searches: list[SearchOutcome] = []
    offset = 0
    for r in range(ocfg.restarts):
        outcome = search(cfg.model_copy(update={"seed": cfg.seed + r}), ocfg, data, _Shifted(hooks, offset))
        searches.append(outcome)
        offset += outcome.warmstart_steps + outcome.search_steps
    if ocfg.candidates == 0:
        return Found(searches, [], [], [], searches[0].expression, time.perf_counter() - t0)
    rankings = []
    for outcome in searches:
        dropped: dict[str, list[str]] = {}
        for d in outcome.drops:
            dropped.setdefault(d.slot, []).append(d.op)
        rankings.append(slot_ranking(outcome.arch, dropped))
    baseline = parse_activation(ocfg.baseline)
    exclude = [] if isinstance(baseline, Builtin) else [baseline]
    candidates, rejected = derive(rankings, ocfg.units, ocfg.candidates, cfg.numerics, exclude)
    entries = [ocfg.baseline, *(c.expression for c in candidates)]
    retrained = retrain(cfg, entries, data, ocfg.select_steps or cfg.steps, ocfg.select_seeds)
    if retrained[0].diverged:
        raise NonFiniteLoss(ocfg.select_steps or cfg.steps, float("nan"))
    best = retrained[choose(retrained)]
    return Found(searches, candidates, rejected, retrained, best.expression, time.perf_counter() - t0)
