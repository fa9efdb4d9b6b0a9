"""The training loop on digits, CPU: the reward separates good activations from useless ones."""

from __future__ import annotations

import io
from typing import Any

import pytest
import torch

from orchestrator.contract import TrainConfig
from orchestrator.space import parse
from orchestrator.trainer import data as D
from orchestrator.trainer import loop
from orchestrator.trainer.errors import NonFiniteLoss

RELU = "max(id(x), relu(x))"
SWISH = "sigmul(mul_beta(x), id(x))"
CONSTANT = "add(beta(x), beta(x))"
EXPLODES = "add(exp(mul(exp(x), exp(x))), id(x))"  # exp(exp(2x)) overflows float32 for x > 2.3


class Recorder:
    def __init__(self) -> None:
        self.metrics: list[tuple[int, dict[str, float]]] = []
        self.checkpoints: list[tuple[int, dict[str, Any]]] = []

    def on_metrics(self, step: int, metrics: dict[str, float]) -> None:
        self.metrics.append((step, metrics))

    def on_checkpoint(self, step: int, state: dict[str, Any]) -> None:
        # the state aliases live tensors: store it the way the MLflow adapter does, serialised
        buf = io.BytesIO()
        torch.save(state, buf)
        buf.seek(0)
        self.checkpoints.append((step, torch.load(buf, weights_only=True)))


def quick(**kw: Any) -> TrainConfig:
    base = {"model": "tiny_cnn", "dataset": "digits", "steps": 200, "batch_size": 64, "lr": 0.1, "crop_padding": 1,
                "flip": False, "log_every": 50, "device": "cpu"}
    return TrainConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> D.Data:
    return D.load(quick(), tmp_path_factory.mktemp("cache"))


def test_relu_and_swish_learn_digits_while_a_constant_function_stays_at_chance(digits: D.Data) -> None:
    rewards = {e: loop.train(quick(), parse(e), digits, Recorder()).val_accuracy for e in (RELU, SWISH, CONSTANT)}
    assert rewards[RELU] > 0.85, rewards
    assert rewards[SWISH] > 0.85, rewards
    assert rewards[CONSTANT] < 0.2, rewards  # 10 classes: chance is 0.1


def test_metrics_arrive_every_log_every_steps_with_step_numbers_from_one(digits: D.Data) -> None:
    rec = Recorder()
    out = loop.train(quick(steps=60, log_every=20, eval_every=30), parse(SWISH), digits, rec)
    assert [s for s, m in rec.metrics if "train_loss" in m] == [20, 40, 60]
    assert [s for s, m in rec.metrics if "val_accuracy" in m] == [30]
    assert out.steps == 60 and out.start_step == 0 and out.mode == "eager"
    assert 0 <= out.test_accuracy <= 1 and out.steps_per_s > 0


def test_a_loss_that_overflows_stops_training_at_the_first_bad_step(digits: D.Data) -> None:
    rec = Recorder()
    with pytest.raises(NonFiniteLoss) as info:
        loop.train(quick(numerics="paper"), parse(EXPLODES), digits, rec)
    assert info.value.step == 1
    assert rec.metrics[-1][0] == 1
    # the same function with guarded ops trains without diverging
    assert loop.train(quick(steps=20), parse(EXPLODES), digits, Recorder()).steps == 20


def test_resuming_from_a_checkpoint_gives_the_same_weights_as_an_unbroken_run(digits: D.Data) -> None:
    cfg = quick(steps=40, checkpoint_every=15, model="mlp", crop_padding=1)
    straight = loop.train(cfg, parse(SWISH), digits, rec := Recorder())
    (step, state), _ = rec.checkpoints
    assert step == 15
    resumed_rec = Recorder()
    resumed = loop.train(cfg, parse(SWISH), digits, resumed_rec, resume=state)
    assert resumed.start_step == 15
    assert min(s for s, _ in resumed_rec.metrics) > 15
    for a, b in zip(straight.weights.values(), resumed.weights.values(), strict=True):
        torch.testing.assert_close(a, b)


def test_the_compile_warm_up_step_is_undone(digits: D.Data, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = quick(steps=30, model="mlp")
    eager = loop.train(cfg, parse(SWISH), digits, Recorder())
    monkeypatch.setattr(torch, "compile", lambda model: model)  # compile's cost without its wait
    warmed = loop.train(quick(steps=30, model="mlp", compile="compile"), parse(SWISH), digits, Recorder())
    assert warmed.mode == "compile"
    for a, b in zip(eager.weights.values(), warmed.weights.values(), strict=True):
        torch.testing.assert_close(a, b)


def test_a_model_that_cannot_be_compiled_still_trains_eagerly(digits: D.Data, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(model: torch.nn.Module):  # type: ignore[no-untyped-def]
        def fail(x: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("Failed to find C compiler")
        return fail

    monkeypatch.setattr(torch, "compile", broken)
    out = loop.train(quick(steps=30, model="mlp", compile="compile"), parse(SWISH), digits, Recorder())
    assert out.mode == "eager" and out.val_accuracy > 0.5


def test_a_builtin_prelu_child_learns_digits_and_its_alphas_train_without_weight_decay(
    digits: D.Data,
) -> None:
    from orchestrator.space.activation import Builtin
    from orchestrator.space.module import BuiltinActivation

    cfg = quick(steps=60)
    child = loop.build(cfg, Builtin("prelu"), digits, loop.resolve(cfg))
    sites = [m for m in child.model.modules() if isinstance(m, BuiltinActivation)]
    assert [s.alpha.shape[0] for s in sites if s.alpha is not None] == [32, 64]  # per channel
    alphas = {id(s.alpha) for s in sites}
    no_decay = next(g for g in child.optimizer.param_groups if g["weight_decay"] == 0.0)
    assert {id(p) for p in no_decay["params"]} == alphas
    out = loop.train(cfg, Builtin("prelu"), digits, Recorder())
    assert out.val_accuracy > 0.5 and out.beta_mean != out.beta_mean  # no β: NaN
    trained = [v for k, v in out.weights.items() if k.endswith(".alpha")]
    assert len(trained) == 2
    assert any(not torch.all(a == 0.25) for a in trained)
