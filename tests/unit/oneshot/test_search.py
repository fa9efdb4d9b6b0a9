"""The one-shot search on digits: it logs the architecture, shrinks to one op per slot, derives
screened candidates and returns the one that retrains best beside ReLU. Asserted: properties that
hold whatever the search finds on a given CPU, never one search's outcome."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from pydantic import ValidationError

from orchestrator.contract import TrainConfig
from orchestrator.oneshot.config import RELU, OneShotConfig
from orchestrator.oneshot.derive import DERIVATION_SCREEN
from orchestrator.oneshot.find import find
from orchestrator.oneshot.search import search
from orchestrator.oneshot.select import Retrained, choose
from orchestrator.space import BINARY_NAMES, UNARY_NAMES, SearchSpace, parse, to_text
from orchestrator.space.screen import screen
from orchestrator.trainer import data as data_mod

CHILD = TrainConfig(model="mlp", dataset="digits", steps=300, batch_size=64, lr=0.05,
                    crop_padding=0, flip=False, device="cpu", log_every=50, seed=0)


class Recorded:
    def __init__(self) -> None:
        self.metrics: list[tuple[int, dict[str, float]]] = []

    def on_metrics(self, step: int, metrics: dict[str, float]) -> None:
        self.metrics.append((step, metrics))

    def on_checkpoint(self, step: int, state: dict[str, Any]) -> None:
        raise AssertionError("a one-shot search writes no checkpoints")


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> data_mod.Data:
    return data_mod.load(CHILD, tmp_path_factory.mktemp("cache"))


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Deterministic and fast on a shared CPU: small tensors gain nothing from threads."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.slow
def test_drnas_on_digits_returns_a_screened_function_that_retrains_at_least_as_well_as_relu(
    digits: data_mod.Data, one_thread: None,
) -> None:
    """Properties that hold whatever function the (chaotic) search finds on this CPU."""
    hooks = Recorded()
    found = find(CHILD, OneShotConfig(variant="drnas", units=2, search_steps=300), digits, hooks)

    (outcome,) = found.searches
    assert outcome.warmstart_steps == len(digits.train) // 2 // CHILD.batch_size  # one epoch of ReLU
    assert to_text(parse(outcome.expression)) == outcome.expression
    steps = [s for s, _ in hooks.metrics]
    assert steps == sorted(steps) and steps[-1] == outcome.warmstart_steps + 300
    last = hooks.metrics[-1][1]
    assert last["active_ops"] == 6  # one op per slot
    assert {f"alpha.u1.{op}" for op in UNARY_NAMES} | {f"alpha.b2.{op}" for op in BINARY_NAMES} <= set(last)
    assert len(outcome.drops) == 4 * (len(UNARY_NAMES) - 1) + 2 * (len(BINARY_NAMES) - 1)

    assert len(found.candidates) == 4
    for c in found.candidates:  # never affine, non-finite, exploding or outside the template
        assert screen(c.expr, CHILD.numerics, DERIVATION_SCREEN).ok, c.expression
        assert SearchSpace(units=2).contains(c.expr)
    assert [r.expression for r in found.retrained] == [RELU, *(c.expression for c in found.candidates)]
    chosen, baseline = found.chosen, found.baseline
    assert chosen is not None and baseline is not None and not chosen.diverged
    assert len(chosen.val_accuracies) == 2  # select_seeds
    assert chosen.val_accuracy >= baseline.val_accuracy  # the selection's guarantee, on any machine
    assert all(chosen.key() >= r.key() for r in found.retrained)


def test_the_selection_retrains_real_children_and_returns_the_best_or_the_baseline(
    digits: data_mod.Data, one_thread: None,
) -> None:
    cfg = OneShotConfig(variant="drnas", units=1, search_steps=6, warmstart_steps=2, restarts=2,
                        unary=("id", "mul_beta", "relu", "tanh", "sin"), binary=("add", "max", "mul"),
                        candidates=3, select_steps=30)
    hooks = Recorded()
    found = find(CHILD.model_copy(update={"log_every": 4}), cfg, digits, hooks)
    assert len(found.searches) == 2
    steps = [s for s, _ in hooks.metrics]
    assert steps == sorted(set(steps)) and steps[-1] == 2 * (2 + 6)  # restart 1 follows restart 0
    assert found.retrained[0].expression == RELU and len(found.retrained) == 4
    assert min(found.retrained[0].val_accuracies) > 0.5  # ReLU really trained: chance is 10 %
    for r in found.retrained:
        assert r.diverged or (len(r.val_accuracies) == 2 and all(0 <= a <= 1 for a in r.val_accuracies)), r
    best = max(found.retrained, key=lambda r: r.key())
    assert found.chosen is not None and found.chosen.key() == best.key()
    assert found.expression == RELU or screen(parse(found.expression), config=DERIVATION_SCREEN).ok


def test_without_candidates_the_argmax_derivation_is_returned_untrained(digits: data_mod.Data) -> None:
    cfg = OneShotConfig(variant="darts", units=1, search_steps=3, warmstart="none", candidates=0,
                        unary=("id", "mul_beta"), binary=("add", "max"))
    found = find(CHILD, cfg, digits, Recorded())
    assert found.expression == found.searches[0].expression and found.retrained == []
    assert found.chosen is None and found.baseline is None


def test_the_first_of_equals_is_chosen_and_a_diverged_candidate_never_is() -> None:
    relu = Retrained(RELU, 0.9, 0.30, (0.9, 0.9), False)
    assert choose([relu, Retrained("sin", 0.9, 0.30, (0.9, 0.9), False)]) == 0
    assert choose([relu, Retrained("sin", 0.9, 0.29, (0.9, 0.9), False)]) == 1
    assert choose([relu, Retrained("exp", math.nan, math.nan, (), True)]) == 0
    with pytest.raises(ValueError):
        choose([])


def test_without_shrinking_darts_still_discretises_by_argmax(digits: data_mod.Data, one_thread: None) -> None:
    cfg = OneShotConfig(variant="darts", units=1, search_steps=5, shrink=False, warmstart="none",
                        unary=("id", "relu", "tanh"), binary=("add", "max"))
    found = search(CHILD.model_copy(update={"log_every": 5}), cfg, digits, Recorded())
    assert found.drops == [] and found.warmstart_steps == 0
    assert cfg.space().contains(found.expr)


def test_gdas_runs_and_ends_with_one_op_per_slot(digits: data_mod.Data, one_thread: None) -> None:
    cfg = OneShotConfig(variant="gdas", units=1, search_steps=8, warmstart_steps=2,
                        unary=("id", "relu", "tanh", "sin"), binary=("add", "max", "mul"))
    hooks = Recorded()
    found = search(CHILD.model_copy(update={"log_every": 5}), cfg, digits, hooks)
    assert hooks.metrics[-1][1]["active_ops"] == 3
    assert cfg.space().contains(found.expr)


def test_options_outside_the_space_or_the_ranges_are_refused_by_name() -> None:
    with pytest.raises(ValidationError, match=r"unknown function.*'swish'"):
        OneShotConfig(unary=("id", "swish"))
    with pytest.raises(ValidationError, match="variant"):
        OneShotConfig(variant="enas")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="shrink_end"):
        OneShotConfig(shrink_end=0)
    assert OneShotConfig(clamp=None).clamp is None
    with pytest.raises(ValidationError, match="baseline"):
        OneShotConfig(baseline="swish(x)")
    assert OneShotConfig(baseline="builtin:GELU").baseline == "builtin:gelu"
