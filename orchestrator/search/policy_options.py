"""Options of the controller-driven strategies (PPO, REINFORCE), apart from the torch code that
uses them: a spec's options are checked without building a policy."""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.search.base import StrategyError
from orchestrator.search.options import require_bool, require_int, require_number


@dataclass(frozen=True)
class ControllerConfig:
    """Controller, optimiser and baseline settings shared by PPO and REINFORCE.

    The paper gives no hyper-parameters; docs/architecture.md takes them from NASNet (lr 3.5e-4,
    entropy weight 1e-5, EMA decay 0.95, 20 children per update, clip 0.2), kept here except: lr
    1e-3, advantages divided by the batch's reward spread, logits squashed as in ENAS
    (``tanh_constant`` 2.5, ``temperature`` 5), and a priority queue (below). With the plain NASNet
    values the policy either barely moves within a few thousand evaluations or collapses onto the
    first good plateau it finds (docs/search.md). ``tanh_constant=0, temperature=1, lr=3.5e-4,
    normalize_advantages=False, top_k=0`` gives the paper's setting back. ``elite_fraction`` < 1
    trains only on the best fraction of each batch against its quantile (risk-seeking policy
    gradient, Petersen et al. 2021) instead of the EMA baseline; off by default.

    ``top_k`` (10) and ``top_k_weight`` (1.0): priority-queue training (Abolafia et al. 2018,
    whose queue also holds 10): the ``top_k`` best distinct sequences seen so far (by tokens;
    failures never enter) are kept, and every step also maximises ``top_k_weight`` × their mean
    log-probability, as if they were one more batch with advantage +1. On a deceptive landscape
    (Swish, docs/search.md) the policy gradient alone moves probability away from the target,
    towards the broad ReLU-like basin; the queue keeps the policy sampling around the best
    functions found, so the one- and two-token changes that lead on get tried. ``top_k=0``
    turns it off. ``rank_advantages`` replaces ``reward − baseline`` by the batch's centred
    ranks (fitness shaping of evolution strategies); off by default, it did not help.

    ``novelty`` (in [0, 1); 0 turns it off): the share of each proposal batch that should be
    sequences the strategy never proposed before. Repeats cost nothing (their outcome is
    reused) but teach nothing new either, and every 20 of them still make an update, so a
    policy that settles on the functions it has seen sharpens on them without end and stops
    finding new ones (docs/search.md). Below the target, the sampling heat doubles after the
    batch (the logits are divided by it, so the draw tends to uniform over valid tokens); at or
    above it, the heat halves, down to 1. While any sequence is unproposed, the search
    therefore cannot stall.
    """

    hidden: int = 100
    init_range: float = 0.1
    tanh_constant: float = 2.5
    temperature: float = 5.0
    lr: float = 1e-3
    entropy_weight: float = 1e-5
    baseline_decay: float = 0.95
    batch_size: int = 20
    normalize_advantages: bool = True
    elite_fraction: float = 1.0
    rank_advantages: bool = False
    top_k: int = 10
    top_k_weight: float = 1.0
    max_grad_norm: float = 0.0
    failure_reward: float = 0.0
    novelty: float = 0.0

    def __post_init__(self) -> None:
        require_int(self, "hidden", 1)
        require_int(self, "batch_size", 1)
        require_number(self, "init_range", 0.0, low_open=True, high=None)
        require_number(self, "lr", 0.0, low_open=True, high=None)
        require_number(self, "tanh_constant", 0.0, high=None)
        require_number(self, "temperature", 0.0, low_open=True, high=None)
        require_number(self, "entropy_weight", 0.0, high=None)
        require_number(self, "baseline_decay", 0.0, 1.0)
        require_bool(self, "normalize_advantages")
        require_number(self, "elite_fraction", 0.0, 1.0, low_open=True, high_open=False)
        require_bool(self, "rank_advantages")
        require_int(self, "top_k", 0)
        require_number(self, "top_k_weight", 0.0, high=None)
        if self.rank_advantages and self.elite_fraction < 1.0:
            raise StrategyError("options rank_advantages and elite_fraction < 1 exclude each other")
        require_number(self, "max_grad_norm", 0.0, high=None)
        require_number(self, "failure_reward", float("-inf"), high=None)
        require_number(self, "novelty", 0.0, 1.0, high_open=True)


@dataclass(frozen=True)
class PPOConfig(ControllerConfig):
    """PPO's options: the controller's, with ``novelty`` 0.75 by default (chosen on the
    development half of the shipped table, examples/table-tuning.yaml; docs/search.md), plus
    the clip and the epochs per batch. REINFORCE keeps ``novelty`` 0: it was not tuned."""

    novelty: float = 0.75
    clip: float = 0.2
    epochs: int = 4

    def __post_init__(self) -> None:
        super().__post_init__()
        require_number(self, "clip", 0.0, 1.0, low_open=True)
        require_int(self, "epochs", 1)
