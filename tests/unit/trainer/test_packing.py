"""Packing: K children fused into one network compute exactly what each computes alone.

The claims of packing.py, checked on CPU in float32: the packed forward and backward equal the
members' solo ones for every architecture; state converts both ways; a packed training run gives
each member the weights, metrics and accuracy its solo run gives; a diverging member fails alone.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from orchestrator.space import parse
from orchestrator.space.activation import Builtin
from orchestrator.space.module import build_site
from orchestrator.trainer import data as D
from orchestrator.trainer import loop
from orchestrator.trainer.errors import NonFiniteLoss
from orchestrator.trainer.models import build_model
from orchestrator.trainer.packing import build_packed_network, pack_state, unpack_state
from tests.unit.trainer.test_loop import EXPLODES, RELU, SWISH, Recorder, quick

ACTIVATIONS = [parse(SWISH), Builtin("prelu"), parse("max(id(x), sin(x))")]


def _solo_and_packed(name: str, shape: tuple[int, int, int], seeds: list[int]) -> tuple[list[nn.Module], nn.Module]:
    def make(a: Any):  # type: ignore[no-untyped-def]
        return lambda c: build_site(a, c, beta_init=1.3)

    solos = []
    for seed, a in zip(seeds, ACTIVATIONS, strict=True):
        torch.manual_seed(seed)
        solos.append(build_model(name, 10, shape, make(a)).double())
    packed = build_packed_network(name, 10, shape, [make(a) for a in ACTIVATIONS]).double()
    packed.load_state_dict(pack_state(list(packed.state_dict()), [m.state_dict() for m in solos]))
    return solos, packed


def _grad(p: torch.Tensor) -> torch.Tensor:
    """A parameter's gradient; zeros where nothing reads it (β of a function without β)."""
    return torch.zeros_like(p) if p.grad is None else p.grad


SMALL = {"resnet20": (3, 16, 16), "tiny_cnn": (1, 8, 8), "mlp": (1, 8, 8), "preact_resnet164": (3, 8, 8),
         "densenet100_12": (3, 8, 8), "wrn_28_10": (3, 8, 8)}


CASES = [(name, shared) for name in SMALL for shared in (True, False)
         if name != "wrn_28_10" or shared]  # 36M parameters: once is enough on CPU


@pytest.mark.parametrize(("name", "shared"), CASES,
                         ids=[f"{n}-{'shared' if s else 'own'}-input" for n, s in CASES])
def test_the_packed_forward_and_backward_equal_each_members_own(name: str, shared: bool) -> None:
    shape = SMALL[name]
    solos, packed = _solo_and_packed(name, shape, [1, 2, 3])
    for m in [*solos, packed]:
        m.train()
    torch.manual_seed(0)
    xs = [torch.randn(4, *shape, dtype=torch.float64) for _ in solos]
    if shared:
        xs = [xs[0]] * len(solos)
    ys = [torch.randint(0, 10, (4,)) for _ in solos]
    packed_out = packed(xs[0] if shared else torch.cat(xs, 1))
    assert packed_out.shape == (4, 10 * len(solos))
    losses, _ = loop.member_losses(packed_out, torch.stack(ys, 1), len(solos))
    losses.sum().backward()
    for k, (solo, x, y) in enumerate(zip(solos, xs, ys, strict=True)):
        out = solo(x)
        torch.testing.assert_close(packed_out[:, 10 * k : 10 * (k + 1)], out)
        torch.nn.functional.cross_entropy(out, y).backward()
        grads = {n: _grad(p) for n, p in packed.named_parameters()}
        mine = unpack_state(grads, len(solos), k)  # gradients convert like the parameters
        for n, p in solo.named_parameters():
            # float64, yet 164 layers of batch norm over 16 values amplify rounding to ~1e-7
            torch.testing.assert_close(mine[n], _grad(p), rtol=1e-5, atol=1e-6,
                                       msg=f"{name}: gradient of {n}, member {k}")
        # batch-norm running statistics too
        torch.testing.assert_close(unpack_state(packed.state_dict(), len(solos), k), solo.state_dict())


def test_state_converts_both_ways_and_every_member_keeps_its_own_activation() -> None:
    solos, packed = _solo_and_packed("resnet20", (3, 8, 8), [5, 5, 6])
    state = packed.state_dict()
    assert state["stem.0.weight"].shape == (3 * 16, 3, 3, 3)  # 3 members' convs, side by side
    assert state["blocks.0.conv2.weight"].shape == (3 * 16, 16, 3, 3)  # grouped: 16 inputs each
    assert state["head.weight"].shape == (3 * 10, 64)
    assert "stem.2.sites.1.alpha" in state and "stem.2.sites.0.beta" in state  # PReLU, Swish
    for k, solo in enumerate(solos):
        torch.testing.assert_close(unpack_state(state, 3, k), solo.state_dict())
    again = pack_state(list(state), [unpack_state(state, 3, k) for k in range(3)])
    torch.testing.assert_close(again, state)
    # the same seed gives the same initial weights, as it does alone
    torch.testing.assert_close(solos[0].state_dict()["stem.0.weight"], solos[1].state_dict()["stem.0.weight"])


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> D.Data:
    return D.load(quick(), tmp_path_factory.mktemp("cache"))


def _close_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    """Equal up to float32 rounding, which training amplifies (about 1e-5 after 20 steps, where
    a grouped convolution sums in another order than a plain one); a wrong member or a missed
    update is off by orders of magnitude more."""
    assert list(a) == list(b)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-3, atol=1e-4, msg=key)


@pytest.mark.parametrize("seeds", [[0, 0, 0], [0, 1, 2]], ids=["one-seed", "own-seeds"])
def test_a_packed_run_gives_every_member_its_solo_result(digits: D.Data, seeds: list[int]) -> None:
    exprs = [parse(RELU), parse(SWISH), Builtin("prelu")]
    cfgs = [quick(steps=20, log_every=10, eval_every=10, seed=s, optimizer="sgd") for s in seeds]
    packed_hooks = [Recorder() for _ in exprs]
    packed = loop.train_pack(cfgs, exprs, digits, packed_hooks)
    for k, (cfg, expr) in enumerate(zip(cfgs, exprs, strict=True)):
        solo_hooks = Recorder()
        solo = loop.train(cfg, expr, digits, solo_hooks)
        mine = packed[k]
        assert isinstance(mine, loop.Outcome) and mine.pack_size == 3
        assert mine.val_accuracy == pytest.approx(solo.val_accuracy, abs=1.01 / 150)  # at most 1 image
        assert mine.test_accuracy == pytest.approx(solo.test_accuracy, abs=1.01 / 297)
        _close_weights(mine.weights, solo.weights)
        assert [s for s, _ in packed_hooks[k].metrics] == [s for s, _ in solo_hooks.metrics]
        for (_, pm), (_, sm) in zip(packed_hooks[k].metrics, solo_hooks.metrics, strict=True):
            assert pm.keys() == sm.keys()
            for key in pm:
                assert pm[key] == pytest.approx(sm[key], rel=1e-4, abs=1e-6), key


def test_a_diverging_member_fails_alone_and_the_others_finish_as_they_would_alone(digits: D.Data) -> None:
    exprs = [parse(RELU), parse(EXPLODES), parse(SWISH)]
    cfg = quick(steps=30, log_every=10, numerics="paper")
    hooks = [Recorder() for _ in exprs]
    results = loop.train_pack([cfg] * 3, exprs, digits, hooks)
    failure = results[1]
    assert isinstance(failure, NonFiniteLoss) and failure.step == 1
    assert hooks[1].metrics[-1][0] == 1  # its own run hears of it at the exact step, then nothing
    for k in (0, 2):
        alone = loop.train(cfg, exprs[k], digits, Recorder())
        got = results[k]
        assert isinstance(got, loop.Outcome)
        _close_weights(got.weights, alone.weights)
        assert got.val_accuracy == pytest.approx(alone.val_accuracy, abs=1.01 / 150)


def test_a_pack_whose_members_all_diverge_stops_at_once(digits: D.Data) -> None:
    results = loop.train_pack([quick(steps=50, numerics="paper")] * 2, [parse(EXPLODES)] * 2, digits,
                              [Recorder(), Recorder()])
    assert all(isinstance(r, NonFiniteLoss) and r.step == 1 for r in results)


def test_members_checkpoint_as_solo_children_and_a_pack_resumes_from_them(digits: D.Data) -> None:
    exprs = [parse(RELU), parse(SWISH)]
    cfg = quick(steps=30, log_every=10, checkpoint_every=15, optimizer="adamw", lr=0.01)
    straight = loop.train_pack([cfg] * 2, exprs, digits, [Recorder(), Recorder()])
    hooks = [Recorder(), Recorder()]
    loop.train_pack([cfg] * 2, exprs, digits, hooks)
    states = [h.checkpoints[0][1] for h in hooks]
    assert all(s["step"] == 15 for s in states)
    # a member's checkpoint is a plain child's: the solo network loads it as it is
    torch.manual_seed(0)
    solo = build_model("tiny_cnn", 10, digits.image_shape, lambda c: build_site(exprs[1], c))
    solo.load_state_dict(states[1]["model"])
    resumed = loop.train_pack([cfg] * 2, exprs, digits, [Recorder(), Recorder()], states)
    for a, b in zip(straight, resumed, strict=True):
        assert isinstance(a, loop.Outcome) and isinstance(b, loop.Outcome) and b.start_step == 15
        _close_weights(a.weights, b.weights)
    # and a solo child resumes from a packed member's checkpoint
    alone = loop.train(cfg, exprs[1], digits, Recorder(), states[1])
    _close_weights(alone.weights, straight[1].weights)


def test_members_with_checkpoints_at_different_steps_start_the_pack_afresh(
        digits: D.Data, caplog: pytest.LogCaptureFixture) -> None:
    cfg = quick(steps=20, log_every=10, checkpoint_every=10)
    hooks = [Recorder()]
    loop.train_pack([cfg], [parse(RELU)], digits, hooks)
    out = loop.train_pack([cfg] * 2, [parse(RELU), parse(SWISH)], digits, [Recorder(), Recorder()],
                          [hooks[0].checkpoints[0][1], None])
    assert all(isinstance(o, loop.Outcome) and o.start_step == 0 for o in out)
    assert "different steps" in caplog.text


def test_a_pack_of_one_is_the_plain_child(digits: D.Data) -> None:
    cfg = quick(steps=20)
    (packed,) = loop.train_pack([cfg], [parse(SWISH)], digits, [Recorder()])
    alone = loop.train(cfg, parse(SWISH), digits, Recorder())
    assert isinstance(packed, loop.Outcome)
    assert list(packed.weights) == list(alone.weights)
    for key in packed.weights:
        assert torch.equal(packed.weights[key], alone.weights[key]), key


def test_packed_members_train_their_activation_parameters_without_weight_decay(digits: D.Data) -> None:
    cfgs = [quick(steps=5)] * 2
    rt = loop.resolve(cfgs[0])
    child = loop.build(cfgs, [parse(SWISH), Builtin("prelu")], digits, rt)
    no_decay = next(g for g in child.optimizer.param_groups if g["weight_decay"] == 0.0)
    own = {n for n, p in child.model.named_parameters() if any(p is q for q in no_decay["params"])}
    assert own and all(".sites." in n and n.rsplit(".", 1)[1] in ("beta", "alpha") for n in own)
    assert child.k == 2 and len(child.activations(0)) == 2 and child.activations(1) == []
