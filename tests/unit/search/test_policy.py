"""The controller network: masks, sampling and log-probabilities."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.search.policy import Controller
from orchestrator.space import BINARY_NAMES, UNARY_NAMES, SearchSpace


@settings(max_examples=25, deadline=None)
@given(
    units=st.integers(1, 4),
    unary=st.lists(st.sampled_from(UNARY_NAMES), min_size=1, max_size=4, unique=True),
    binary=st.lists(st.sampled_from(BINARY_NAMES), min_size=1, max_size=3, unique=True),
    seed=st.integers(0, 2**16),
)
def test_masks_never_let_an_invalid_sequence_through(units, unary, binary, seed) -> None:
    space = SearchSpace(units=units, unary=tuple(unary), binary=tuple(binary))
    controller = Controller(space, hidden=16, init_range=3.0, seed=seed)  # peaked logits
    rollout = controller.sample(32, np.random.default_rng(seed))
    assert all(space.is_valid(tuple(int(t) for t in row)) for row in rollout.tokens)
    assert np.all(np.isfinite(rollout.token_log_probs))


def test_a_network_that_prefers_an_invalid_token_still_never_samples_it() -> None:
    space = SearchSpace(units=3, unary=("id", "sin"), binary=("add",))
    controller = Controller(space, hidden=8, init_range=0.1, seed=0)
    with torch.no_grad():
        controller.heads[2].bias[UNARY_NAMES.index("exp")] = 100.0  # exp is not in this space
        controller.heads[0].bias[2] = 100.0  # unit 0 cannot read unit 1
    rollout = controller.sample(200, np.random.default_rng(0))
    assert not np.any(rollout.tokens[:, 2] == UNARY_NAMES.index("exp"))
    assert not np.any(rollout.tokens[:, 0] == 2)
    assert all(space.is_valid(tuple(row)) for row in rollout.tokens.tolist())


@pytest.mark.parametrize("tanh_constant", [0.0, 2.5])
def test_log_probs_of_sampled_tokens_match_a_recomputation(tanh_constant: float) -> None:
    space = SearchSpace(units=2)
    controller = Controller(space, hidden=32, init_range=0.5, seed=1, tanh_constant=tanh_constant,
                            temperature=2.0)
    rollout = controller.sample(64, np.random.default_rng(1))
    with torch.no_grad():
        logps, ents = controller.score(rollout.tokens)
    np.testing.assert_allclose(logps.double().numpy(), rollout.token_log_probs, atol=1e-5)
    np.testing.assert_allclose(ents.sum(1).double().numpy(), rollout.entropy, atol=1e-4)


def test_sampling_follows_the_policy_probabilities() -> None:
    """With one unit over two unary ops and one binary op, the first unary token is a coin whose
    bias the head sets; the empirical frequency must match the softmax."""
    space = SearchSpace(units=1, unary=("id", "sin"), binary=("add",))
    controller = Controller(space, hidden=4, init_range=1e-6, seed=0)
    with torch.no_grad():
        controller.heads[2].bias[UNARY_NAMES.index("sin")] = float(np.log(3.0))  # p(sin) = 3/4
    rollout = controller.sample(4000, np.random.default_rng(0))
    freq = float(np.mean(rollout.tokens[:, 2] == UNARY_NAMES.index("sin")))
    assert freq == pytest.approx(0.75, abs=0.03)


def test_the_tanh_squash_keeps_every_valid_token_possible() -> None:
    space = SearchSpace(units=1)
    controller = Controller(space, hidden=8, init_range=0.1, seed=0, tanh_constant=2.5,
                            temperature=5.0)
    with torch.no_grad():
        controller.heads[2].bias[0] = 1e4
        logps, _ = controller.score(np.array([[0, 0, 1, 0, 0]]))
    # the largest logit gap is 2·2.5 = 5, so no token falls below e^-5 / 25 in probability
    assert float(logps[0, 2]) > -5.0 - np.log(25.0)


def _score_step_by_step(controller: Controller, tokens: np.ndarray) -> torch.Tensor:
    """Reference: per-token log-probs computed one position at a time, as ``sample`` does."""
    t = torch.from_numpy(tokens)
    state, inp, out = None, controller.start.expand(len(tokens), -1), []
    for p in range(controller.space.length):
        h, c = controller.cell(inp, state)
        state = (h, c)
        logits = controller.logits(p, h).masked_fill(~controller.masks_at(p, tokens), float("-inf"))
        out.append(torch.log_softmax(logits, -1).gather(1, t[:, p : p + 1]).squeeze(1))
        inp = controller.embed[p](t[:, p])
    return torch.stack(out, 1)


@settings(max_examples=10, deadline=None)
@given(units=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_the_one_pass_score_is_the_step_by_step_function_with_its_gradients(units, seed) -> None:
    space = SearchSpace(units=units)
    controller = Controller(space, hidden=16, init_range=0.5, seed=seed, tanh_constant=2.5,
                            temperature=5.0)
    tokens = controller.sample(12, np.random.default_rng(seed)).tokens
    fast, _ = controller.score(tokens)
    grads_fast = torch.autograd.grad(fast.sum(), list(controller.parameters()), allow_unused=True)
    slow = _score_step_by_step(controller, tokens)
    grads_slow = torch.autograd.grad(slow.sum(), list(controller.parameters()), allow_unused=True)
    np.testing.assert_allclose(fast.detach().numpy(), slow.detach().numpy(), atol=1e-5)
    for a, b in zip(grads_fast, grads_slow, strict=True):
        if a is None or b is None:  # a head no valid position uses
            assert (a is None or not a.any()) and (b is None or not b.any())
        else:
            np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-4)
    # rows are independent: the update scores its batch and its queue in one call
    halves = np.concatenate([controller.score(tokens[:5])[0].detach().numpy(),
                             controller.score(tokens[5:])[0].detach().numpy()])
    np.testing.assert_allclose(halves, fast.detach().numpy(), atol=1e-6)


def test_whole_sequences_are_drawn_with_the_probabilities_score_gives_them() -> None:
    """8 sequences (one unit, two unary ops, two binary ops): each one's empirical frequency over
    6,000 draws matches exp(sum of its scored log-probs)."""
    space = SearchSpace(units=1, unary=("id", "sin"), binary=("add", "mul"))
    controller = Controller(space, hidden=8, init_range=0.8, seed=3, tanh_constant=2.5,
                            temperature=1.0)
    draws = controller.sample(6000, np.random.default_rng(4)).tokens
    sequences = list(space.enumerate())
    with torch.no_grad():
        logps, _ = controller.score(np.array(sequences, dtype=np.int64))
    probability = np.exp(logps.sum(1).double().numpy())
    assert probability.sum() == pytest.approx(1.0, abs=1e-5)
    for seq, p in zip(sequences, probability, strict=True):
        freq = float(np.mean(np.all(draws == np.array(seq), axis=1)))
        assert freq == pytest.approx(p, abs=4 * np.sqrt(p * (1 - p) / 6000) + 1e-3)
