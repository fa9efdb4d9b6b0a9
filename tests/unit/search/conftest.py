"""Shared pieces for the search tests: small spaces and a deterministic reward."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from orchestrator.search import Candidate, Result
from orchestrator.space import SearchSpace


@pytest.fixture(autouse=True)
def one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture
def small_space() -> SearchSpace:
    return SearchSpace(units=2, unary=("id", "neg", "sin", "relu", "sigmoid"), binary=("add", "max", "mul"))


def _token_reward(c: Candidate) -> Result:
    """A made-up but deterministic reward: the fraction of tokens equal to 1; some crash."""
    if sum(c.tokens) % 7 == 0:
        return Result.failed(c, "crashed")
    return Result.success(c, sum(t == 1 for t in c.tokens) / len(c.tokens))


@pytest.fixture
def token_reward() -> Callable[[Candidate], Result]:
    return _token_reward
