"""The grammar over token sequences: counting, masks, enumeration, uniform sampling and the
tokens <-> tree round-trips."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.space import (
    SearchSpace,
    SpaceError,
    TokenError,
    Unit,
    decode,
    encode,
    is_canonical,
    num_units,
)

from .strategies import trees

SMALL = {"unary": ("id", "sin"), "binary": ("add", "max")}


def test_one_unit_over_all_ops_has_6250_sequences() -> None:
    assert SearchSpace(units=1).count() == 25 * 25 * 10 == 6250


@pytest.mark.parametrize("units", [1, 2, 3])
def test_count_equals_the_number_of_enumerated_sequences(units: int) -> None:
    space = SearchSpace(units=units, **SMALL)
    seqs = list(space.enumerate())
    assert len(seqs) == space.count()
    assert len(set(seqs)) == len(seqs)
    assert seqs == sorted(seqs)  # lexicographic, hence deterministic


def test_two_units_count_follows_from_the_no_dead_unit_rule() -> None:
    # unit 1 reads unit 0 in one or both inputs: 3 input patterns of 4
    assert SearchSpace(units=2).count() == 3 * 6250**2


def test_enumeration_yields_only_valid_sequences_that_decode() -> None:
    space = SearchSpace(units=3, unary=("id",), binary=("add", "mul"))
    for t in space.enumerate():
        assert space.is_valid(t)
        assert decode(t) is not None


@settings(max_examples=200, deadline=None)
@given(units=st.integers(1, 5), seed=st.integers(0, 2**32 - 1))
def test_sampling_only_yields_valid_sequences_with_every_unit_used(units: int, seed: int) -> None:
    space = SearchSpace(units=units)
    tokens = space.sample(np.random.default_rng(seed))
    assert space.is_valid(tokens)
    assert num_units(decode(tokens)) == units  # no dead unit
    if units <= 2:
        assert is_canonical(tokens)


def test_masks_reject_inputs_from_later_units_and_dead_units() -> None:
    space = SearchSpace(units=2)
    assert space.mask([]).tolist() == [True, False]  # unit 0 reads only x
    prefix = list(encode(Unit("add", "id", "x", "id", "x")))
    assert space.mask(prefix).tolist() == [True, True]
    assert space.mask(prefix + [0]).tolist() == [False, True]  # unit 0 must be read
    assert not space.is_valid(tuple(prefix) + (0, 0, 0, 0, 0))


def test_masks_restrict_ops_to_the_chosen_subsets() -> None:
    space = SearchSpace(units=1, **SMALL)
    assert np.flatnonzero(space.mask([0, 0])).tolist() == [0, 10]  # id, sin
    assert np.flatnonzero(space.mask([0, 0, 0, 0])).tolist() == [0, 4]  # add, max


def test_sampling_is_uniform_over_sequences() -> None:
    space = SearchSpace(units=3, unary=("id",), binary=("add",))
    n_seq = space.count()
    rng = np.random.default_rng(7)
    draws = 200 * n_seq
    counts = Counter(space.sample(rng) for _ in range(draws))
    assert len(counts) == n_seq
    chi2 = sum((c - 200) ** 2 / 200 for c in counts.values())
    assert chi2 < 45  # chi-square, 16 degrees of freedom: p < 0.001 above 39.3


def test_sampling_is_reproducible_from_its_seed() -> None:
    space = SearchSpace(units=2)
    assert space.sample_expressions(5, 3) == space.sample_expressions(5, 3)
    assert space.sample_expressions(5, 3) != space.sample_expressions(5, 4)


@given(trees)
def test_tree_to_tokens_to_tree_is_identity(tree: Unit) -> None:
    assert decode(encode(tree)) == tree


@settings(max_examples=200, deadline=None)
@given(units=st.integers(1, 4), seed=st.integers(0, 2**32 - 1))
def test_tokens_to_tree_to_tokens_round_trips(units: int, seed: int) -> None:
    space = SearchSpace(units=units)
    tokens = space.sample(np.random.default_rng(seed))
    again = encode(decode(tokens))
    assert decode(again) == decode(tokens)
    if is_canonical(tokens):
        assert again == tokens


def test_malformed_token_sequences_fail_with_the_position() -> None:
    with pytest.raises(TokenError, match="5 tokens per unit"):
        decode([0, 0, 0])
    with pytest.raises(TokenError, match=r"token 0 .*allowed 0 \(x\) to 0"):
        decode([1, 0, 0, 0, 0])
    with pytest.raises(TokenError, match=r"token 4 .*binary"):
        decode([0, 0, 0, 0, 10])


def test_bad_space_settings_name_the_field_and_the_allowed_values() -> None:
    with pytest.raises(SpaceError, match=r"space\.units"):
        SearchSpace(units=0)
    with pytest.raises(SpaceError, match=r"space\.unary .*'tan'.*allowed: id, neg"):
        SearchSpace(unary=("id", "tan"))
    with pytest.raises(SpaceError, match=r"space\.binary must name"):
        SearchSpace(binary=())
