"""The derivation: slot rankings, enumeration by rank, and the screen that keeps degenerate
functions (affine, non-finite, duplicates) out of the candidates. No training: fixed α."""

from __future__ import annotations

import pytest
import torch

from orchestrator.oneshot.derive import DERIVATION_SCREEN, derive, ranked_choices, slot_ranking
from orchestrator.oneshot.supernet import Architecture
from orchestrator.space import SearchSpace, parse, to_text
from orchestrator.space.fingerprint import fingerprint
from orchestrator.space.screen import screen

RELU = parse("max(relu(x), relu(x))")


def _random_arch(seed: int, units: int = 2) -> tuple[Architecture, dict[str, list[str]]]:
    """An architecture with random α, shrunk to one op per slot as the search does it."""
    torch.manual_seed(seed)
    arch = Architecture(units, "drnas")
    with torch.no_grad():
        for a in arch.alpha.values():
            a.normal_()
    dropped: dict[str, list[str]] = {}
    for s in arch.slots:
        while len(arch.active(s.name)) > 1:
            dropped.setdefault(s.name, []).append(arch.drop_weakest(s.name))
    return arch, dropped


def _forced(units: int, ops: dict[str, str]) -> Architecture:
    """An unshrunk architecture whose argmax op of every slot is ``ops[slot]``."""
    arch = Architecture(units, "darts")
    with torch.no_grad():
        for s in arch.slots:
            arch.alpha[s.name].copy_(torch.linspace(0, -1, len(s.ops)))  # op order breaks the rest
            arch.alpha[s.name][s.ops.index(ops[s.name])] = 5.0
    return arch


def test_a_ranking_lists_active_ops_by_weight_then_dropped_ones_last_dropped_first() -> None:
    arch, dropped = _random_arch(0, units=1)
    ranking = slot_ranking(arch, dropped)
    for s in arch.slots:
        assert ranking[s.name][0] == arch.choice(s.name)
        assert list(ranking[s.name][1:]) == dropped[s.name][::-1]
        assert sorted(ranking[s.name]) == sorted(s.ops)
    unshrunk = _forced(1, {"u1": "sin", "u2": "id", "b1": "mul"})
    ranking = slot_ranking(unshrunk, {})
    probs = unshrunk.probabilities("u1").tolist()
    assert [probs[unshrunk.slot("u1").ops.index(op)] for op in ranking["u1"]] == sorted(probs, reverse=True)


def test_rankings_that_miss_an_op_are_refused() -> None:
    arch, dropped = _random_arch(1, units=1)
    dropped["u1"] = dropped["u1"][1:]
    with pytest.raises(ValueError, match="do not cover"):
        slot_ranking(arch, dropped)


def test_combinations_come_by_rank_sum_starting_with_the_argmax_and_each_once() -> None:
    ranking = {"u1": ("a", "b", "c"), "u2": ("d", "e"), "b1": ("f", "g", "h")}
    got = list(ranked_choices(ranking))
    assert got[0] == (0, {"u1": "a", "u2": "d", "b1": "f"})
    assert [r for r, _ in got] == sorted(r for r, _ in got)
    combos = [tuple(ops.values()) for _, ops in got]
    assert len(combos) == len(set(combos)) == 3 * 2 * 3
    for rank, ops in got:
        assert rank == sum(ranking[slot].index(op) for slot, op in ops.items())


@pytest.mark.parametrize("seed", range(6))
def test_no_candidate_is_one_the_screen_rejects_or_a_duplicate_or_the_baseline(seed: int) -> None:
    arch, dropped = _random_arch(seed)
    candidates, rejected = derive([slot_ranking(arch, dropped)], 2, 6, "safe", [RELU])
    assert len(candidates) == 6
    prints = [fingerprint(c.expr) for c in candidates]
    assert len(set(prints)) == len(prints) and fingerprint(RELU) not in prints
    space = SearchSpace(units=2)
    for c in candidates:
        assert screen(c.expr, "safe", DERIVATION_SCREEN).ok, c.expression
        assert space.contains(c.expr) and to_text(parse(c.expression)) == c.expression
    assert [c.rank for c in candidates] == sorted(c.rank for c in candidates)
    assert all(r.reason for r in rejected)


def test_a_linear_argmax_derivation_is_passed_over_for_the_next_ranked_function() -> None:
    ops = {"u1": "mul_beta", "u2": "mul_beta", "b1": "max"}  # max(βx, βx) = βx: the DARTS collapse
    arch = _forced(1, ops)
    assert to_text(arch.discretise()) == "max(mul_beta(x), mul_beta(x))"
    candidates, rejected = derive([slot_ranking(arch, {})], 1, 3, "safe")
    assert rejected[0].expression == "max(mul_beta(x), mul_beta(x))" and "affine" in rejected[0].reason
    assert all("affine" not in c.expression for c in candidates) and len(candidates) == 3
    # its rank-1 neighbours (id for one β·x, add for max) are affine too at β = 1
    assert candidates[0].rank == 2
    before = [r for r in rejected if r.rank < 2]
    assert {r.rank for r in before} == {0, 1} and all("affine" in r.reason for r in before)


def test_the_derivation_is_a_function_of_the_architecture_weights_alone() -> None:
    arch, dropped = _random_arch(3)
    copy = Architecture(2, "drnas")
    copy.load_state_dict(arch.state_dict())  # α and the masks, nothing else
    first = derive([slot_ranking(arch, dropped)], 2, 5, "safe", [RELU])
    again = derive([slot_ranking(copy, dropped)], 2, 5, "safe", [RELU])
    assert first == again


def test_restarts_take_turns_and_share_one_set_of_functions() -> None:
    rankings = [slot_ranking(*_random_arch(seed)) for seed in (4, 5)]
    candidates, _ = derive(rankings, 2, 6, "safe")
    assert {c.restart for c in candidates} == {0, 1}
    assert len({fingerprint(c.expr) for c in candidates}) == 6
    alone, _ = derive(rankings[:1], 2, 1, "safe")
    assert candidates[0] == alone[0]  # restart 0's best comes first
