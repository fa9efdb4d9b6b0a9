"""PPO (Schulman et al. 2017) for the controller, as the paper trains it.

Each token's importance ratio against the behaviour policy that drew it is clipped to
``[1 − clip, 1 + clip]``; the pessimistic surrogate is maximised for ``epochs`` steps per batch.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torch
from torch import Tensor

from orchestrator.search.options import build_config
from orchestrator.search.policy_gradient import PolicyGradient
from orchestrator.search.policy_options import PPOConfig
from orchestrator.space import SearchSpace


def clipped_objective(
    new_log_probs: Tensor, old_log_probs: Tensor, advantages: Tensor, clip: float
) -> Tensor:
    """PPO's clipped surrogate (to maximise): per token, summed over tokens, mean over the batch.

    ``new_log_probs`` and ``old_log_probs`` are (B, L) per-token log-probs under the current and
    the behaviour policy; ``advantages`` is (B,), shared by every token of a sequence.
    Each token contributes ``min(r·A, clip(r, 1 − ε, 1 + ε)·A)`` with ``r = exp(new − old)``.
    """
    ratio = torch.exp(new_log_probs - old_log_probs)
    adv = advantages[:, None]
    surrogate = torch.minimum(ratio * adv, ratio.clamp(1.0 - clip, 1.0 + clip) * adv)
    return surrogate.sum(dim=1).mean()


def make_ppo(space: SearchSpace, seed: int, **options: Any) -> PolicyGradient:
    cfg = build_config(PPOConfig, "ppo", options)
    return PolicyGradient(
        space, seed, cfg, name="ppo",
        objective=partial(clipped_objective, clip=cfg.clip), epochs=cfg.epochs,
    )
