"""REINFORCE (Williams 1992) with the EMA baseline: the controller's plain policy gradient.

One gradient step per batch. It is on-policy: results of candidates drawn by an older policy
version are used as if current (no importance correction), which is what plain REINFORCE does.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from orchestrator.search.options import build_config
from orchestrator.search.policy_gradient import PolicyGradient
from orchestrator.search.policy_options import ControllerConfig
from orchestrator.space import SearchSpace


def policy_gradient_objective(
    new_log_probs: Tensor, old_log_probs: Tensor, advantages: Tensor
) -> Tensor:
    """Mean over the batch of ``A · log π(sequence)`` (the behaviour log-probs are unused)."""
    return (new_log_probs.sum(dim=1) * advantages).mean()


def make_reinforce(space: SearchSpace, seed: int, **options: Any) -> PolicyGradient:
    cfg = build_config(ControllerConfig, "reinforce", options)
    return PolicyGradient(
        space, seed, cfg, name="reinforce", objective=policy_gradient_objective, epochs=1
    )
