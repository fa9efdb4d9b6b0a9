"""The policy-gradient losses, checked against numbers worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch

from orchestrator.search.ppo import clipped_objective
from orchestrator.search.reinforce import policy_gradient_objective


def test_ppo_clipped_objective_matches_a_hand_computed_example() -> None:
    # Two sequences of two tokens, clip 0.2.
    # Sequence 0, A = +2: ratios 1.5 (clipped to 1.2 → 2.4) and 0.5 (min(1.0, 1.6) → 1.0).
    # Sequence 1, A = −1: ratios 1.5 (min(−1.5, −1.2) → −1.5) and 0.5 (min(−0.5, −0.8) → −0.8).
    old = torch.zeros(2, 2)
    new = torch.log(torch.tensor([[1.5, 0.5], [1.5, 0.5]]))
    adv = torch.tensor([2.0, -1.0])
    got = clipped_objective(new, old, adv, clip=0.2)
    expected = ((2.4 + 1.0) + (-1.5 - 0.8)) / 2
    assert float(got) == pytest.approx(expected, abs=1e-6)


def test_ppo_gradient_vanishes_once_the_ratio_leaves_the_clip_range_in_the_advantage_direction() -> None:
    old = torch.zeros(1, 1)
    new = torch.tensor([[math.log(1.5)]], requires_grad=True)
    clipped_objective(new, old, torch.tensor([1.0]), clip=0.2).backward()
    assert float(new.grad) == 0.0  # type: ignore[arg-type]
    new2 = torch.tensor([[math.log(1.1)]], requires_grad=True)
    clipped_objective(new2, old, torch.tensor([1.0]), clip=0.2).backward()
    assert float(new2.grad) == pytest.approx(1.1)  # type: ignore[arg-type]  # d(r·A)/d log r = r·A


def test_reinforce_objective_is_the_advantage_weighted_sequence_log_probability() -> None:
    new = torch.tensor([[-1.0, -2.0], [-0.5, -0.5]])
    adv = torch.tensor([0.5, -2.0])
    got = policy_gradient_objective(new, torch.zeros(2, 2), adv)
    assert float(got) == pytest.approx((0.5 * -3.0 + -2.0 * -1.0) / 2)
