"""The one-shot search on digits: it logs the architecture, shrinks to one op per slot, and the
function it finds trains as well as ReLU (the poster's DARTS results collapsed to 50 %)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch
from pydantic import ValidationError

from orchestrator.contract import TrainConfig
from orchestrator.oneshot.config import OneShotConfig
from orchestrator.oneshot.search import search
from orchestrator.space import BINARY_NAMES, UNARY_NAMES, parse, to_text
from orchestrator.trainer import data as data_mod
from orchestrator.trainer import loop

CHILD = TrainConfig(model="mlp", dataset="digits", steps=300, batch_size=64, lr=0.05,
                    crop_padding=0, flip=False, device="cpu", log_every=50, seed=0)
RELU = "max(relu(x), relu(x))"


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
def test_the_function_drnas_finds_on_digits_trains_as_well_as_relu(digits: data_mod.Data, one_thread: None) -> None:
    hooks = Recorded()
    found = search(CHILD, OneShotConfig(variant="drnas", units=2, search_steps=300), digits, hooks)

    assert found.warmstart_steps == len(digits.train) // 2 // CHILD.batch_size  # one epoch of ReLU
    assert to_text(parse(found.expression)) == found.expression
    steps = [s for s, _ in hooks.metrics]
    assert steps == sorted(steps) and steps[-1] == found.warmstart_steps + 300
    last = hooks.metrics[-1][1]
    assert last["active_ops"] == 6  # one op per slot
    assert {f"alpha.u1.{op}" for op in UNARY_NAMES} | {f"alpha.b2.{op}" for op in BINARY_NAMES} <= set(last)
    assert len(found.drops) == 4 * (len(UNARY_NAMES) - 1) + 2 * (len(BINARY_NAMES) - 1)

    accuracy = {}
    for expr in (found.expression, RELU):
        accuracy[expr] = loop.train(CHILD, parse(expr), digits, Recorded()).test_accuracy
    assert accuracy[found.expression] > 0.9, accuracy  # never the 50 % collapse
    assert accuracy[found.expression] >= accuracy[RELU] - 0.03, accuracy


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
