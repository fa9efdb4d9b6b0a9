"""A search strategy driven by the LSTM controller, trained by a policy-gradient objective.

Both algorithms share everything but the loss: proposals are batched samples of the controller;
results collect in a rollout buffer; every ``batch_size`` results make one update, with
advantages ``reward − EMA baseline`` (optionally divided by the batch's reward spread).
PPO takes ``epochs`` clipped steps over the batch, REINFORCE one plain gradient step; both
also raise the log-probability of the ``top_k`` best sequences seen (priority-queue training).
The behaviour log-probs come from the candidates themselves, never from a recomputation.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
import torch
from torch import Tensor

from orchestrator.search.base import (
    Candidate,
    Result,
    StrategyError,
    UpdateStats,
    check_count,
)
from orchestrator.search.baseline import EmaBaseline
from orchestrator.search.policy import Controller
from orchestrator.search.policy_options import ControllerConfig
from orchestrator.space import SearchSpace, decode, to_text

ADVANTAGE_SCALE_FLOOR = 1e-3
"""Smallest divisor when advantages are normalised, so a batch of equal rewards stays finite."""

MAX_HEAT = 2.0**20
"""Ceiling of the sampling heat (``novelty``): far past the point where every draw is uniform
over the valid tokens to float32 precision (logits of at most 2.5 in size, divided by 2^20)."""


def next_heat(heat: float, novel_share: float, target: float) -> float:
    """The sampling heat after a batch whose share of never-proposed sequences was
    ``novel_share``: doubled below ``target``, halved (down to 1) at or above it."""
    if novel_share < target:
        return min(heat * 2.0, MAX_HEAT)
    return max(heat / 2.0, 1.0)


def rank_advantages(rewards: Sequence[float]) -> np.ndarray:
    """Centred ranks in ``[−0.5, 0.5]`` (ties share their mean rank; one reward gives 0).

    The fitness shaping of evolution strategies (Wierstra et al. 2014, Salimans et al. 2017):
    only the order of the batch's rewards matters, not their gaps, so a few failures (reward 0)
    cannot shrink the push between a 0.91 and a 0.95 to nothing once rewards bunch near the top.
    """
    r = np.asarray(rewards, dtype=np.float64)
    if len(r) < 2:
        return np.zeros(len(r))
    order = np.argsort(r, kind="stable")
    ranks = np.empty(len(r))
    ranks[order] = np.arange(len(r), dtype=np.float64)
    for value in np.unique(r):  # ties: mean rank
        tied = r == value
        ranks[tied] = ranks[tied].mean()
    return ranks / (len(r) - 1) - 0.5


Objective = Callable[[Tensor, Tensor, Tensor], Tensor]
"""(new per-token log-probs (B, L), behaviour per-token log-probs (B, L), advantages (B,)) ->
the surrogate to maximise."""


class PolicyGradient:
    """Controller-driven strategy; ``objective`` and ``epochs`` make it PPO or REINFORCE."""

    def __init__(
        self,
        space: SearchSpace,
        seed: int,
        config: ControllerConfig,
        *,
        name: str,
        objective: Objective,
        epochs: int,
    ) -> None:
        self.name = name
        self.space = space
        self.config = config
        self.objective = objective
        self.epochs = epochs
        self.controller = Controller(
            space, config.hidden, config.init_range, seed,
            tanh_constant=config.tanh_constant, temperature=config.temperature,
        )
        self.optimizer = torch.optim.Adam(self.controller.parameters(), lr=config.lr, foreach=True)
        self.baseline = EmaBaseline(config.baseline_decay)
        self.rng = np.random.default_rng(seed)
        self.buffer: list[Result] = []
        self.best: dict[tuple[int, ...], float] = {}  # top_k best sequences seen, by reward
        self.version = 0
        self.updates: list[UpdateStats] = []
        self.heat = 1.0  # sampling heat (``novelty``); 1 leaves the policy as it is
        self.proposed: set[tuple[int, ...]] = set()  # every sequence proposed (``novelty`` > 0)

    # -- the strategy interface ----------------------------------------------------------------

    def propose(self, n: int) -> list[Candidate]:
        check_count(n)
        rollout = self.controller.sample(n, self.rng, self.heat)
        if self.config.novelty > 0 and n > 0:
            fresh = {tuple(int(t) for t in row) for row in rollout.tokens} - self.proposed
            self.proposed |= fresh
            self.heat = next_heat(self.heat, len(fresh) / n, self.config.novelty)
        out = []
        for tokens, logps in zip(rollout.tokens, rollout.token_log_probs, strict=True):
            seq = tuple(int(t) for t in tokens)
            out.append(Candidate(
                tokens=seq,
                expression=to_text(decode(seq)),
                log_prob=float(logps.sum()),
                policy_version=self.version,
                token_log_probs=tuple(float(v) for v in logps),
            ))
        return out

    def observe(self, results: Sequence[Result]) -> None:
        for r in results:
            if r.candidate.token_log_probs is None or len(r.candidate.tokens) != self.space.length:
                raise StrategyError(
                    f"{self.name} can only learn from its own candidates (per-token log-probs of "
                    f"{self.space.length} tokens); got {r.candidate.expression!r}"
                )
        self.buffer.extend(results)
        size = self.config.batch_size
        while len(self.buffer) >= size:
            batch, self.buffer = self.buffer[:size], self.buffer[size:]
            self._update(batch)

    # -- learning ------------------------------------------------------------------------------

    def _update(self, batch: list[Result]) -> None:
        cfg = self.config
        rewards = [r.value(cfg.failure_reward) for r in batch]
        if cfg.rank_advantages:
            baseline_used = float(np.median(rewards))
            keep = list(range(len(batch)))
            adv_list = list(rank_advantages(rewards))
        elif cfg.elite_fraction < 1.0:
            baseline_used = float(np.quantile(rewards, 1.0 - cfg.elite_fraction))
            keep = [i for i, r in enumerate(rewards) if r >= baseline_used]
            adv_list = [rewards[i] - baseline_used for i in keep]
        else:
            baseline_used = self.baseline.value if self.baseline.value is not None else float(np.mean(rewards))
            keep = list(range(len(batch)))
            adv_list = self.baseline.advantages(rewards)
        self.baseline.update(rewards)
        self._remember(batch, rewards)
        adv = torch.tensor(adv_list, dtype=torch.float32)
        if cfg.normalize_advantages:
            spread = np.std(adv_list) if cfg.rank_advantages else np.std(rewards)
            adv = adv / max(float(spread), ADVANTAGE_SCALE_FLOOR)
        tokens = np.array([batch[i].candidate.tokens for i in keep], dtype=np.int64)
        old = torch.tensor([batch[i].candidate.token_log_probs for i in keep], dtype=torch.float32)
        # The batch and the queue are scored in one pass (rows are independent), with masks
        # computed once for all epochs.
        queue = bool(self.best) and cfg.top_k_weight > 0
        rows = np.concatenate([tokens, np.array(list(self.best), dtype=np.int64)]) if queue else tokens
        masks = self.controller.masks_for(rows)
        entropy0 = loss0 = float("nan")
        for epoch in range(self.epochs):
            scored, ents = self.controller.score(rows, masks)
            new, ent = scored[: len(keep)], ents[: len(keep)]
            objective = self.objective(new, old, adv)
            entropy = ent.sum(dim=1).mean()
            loss = -(objective + cfg.entropy_weight * entropy)
            if queue:
                elite = scored[len(keep):]
                loss = loss - cfg.top_k_weight * elite.sum(dim=1).mean()
            self.optimizer.zero_grad()
            loss.backward()
            if cfg.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(self.controller.parameters(), cfg.max_grad_norm)
            self.optimizer.step()
            if epoch == 0:
                entropy0, loss0 = float(entropy.detach()), float(loss.detach())
        self.version += 1
        self.updates.append(UpdateStats(
            version=self.version, mean_reward=float(np.mean(rewards)), entropy=entropy0,
            loss=loss0, baseline=float(baseline_used),
        ))

    def _remember(self, batch: list[Result], rewards: list[float]) -> None:
        """Keep the ``top_k`` best distinct sequences seen (failures never enter)."""
        if self.config.top_k == 0:
            return
        for r, value in zip(batch, rewards, strict=True):
            if r.ok:
                self.best[r.candidate.tokens] = value
        if len(self.best) > self.config.top_k:
            ranked = sorted(self.best.items(), key=lambda kv: (-kv[1], kv[0]))
            self.best = dict(ranked[: self.config.top_k])

    # -- checkpoint ----------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {
            "strategy": self.name,
            "config": asdict(self.config),
            "controller": {k: v.detach().clone() for k, v in self.controller.state_dict().items()},
            "optimizer": copy.deepcopy(self.optimizer.state_dict()),
            "baseline": self.baseline.value,
            "rng": copy.deepcopy(self.rng.bit_generator.state),
            "buffer": [r.as_dict() for r in self.buffer],
            "best": [[list(t), v] for t, v in self.best.items()],
            "version": self.version,
            "updates": [asdict(u) for u in self.updates],
            "heat": self.heat,
            "proposed": sorted(list(t) for t in self.proposed),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state.get("strategy") != self.name:
            raise StrategyError(
                f"checkpoint is of strategy {state.get('strategy')!r}, not {self.name!r}"
            )
        self.controller.load_state_dict(state["controller"])
        self.optimizer.load_state_dict(copy.deepcopy(state["optimizer"]))
        self.baseline.value = state["baseline"]
        self.rng.bit_generator.state = copy.deepcopy(state["rng"])
        self.buffer = [Result.from_dict(d) for d in state["buffer"]]
        self.best = {tuple(int(x) for x in t): float(v) for t, v in state.get("best", [])}
        self.version = int(state["version"])
        self.updates = [UpdateStats(**u) for u in state["updates"]]
        self.heat = float(state.get("heat", 1.0))  # checkpoints from before ``novelty``: 1, none
        self.proposed = {tuple(int(x) for x in t) for t in state.get("proposed", [])}

