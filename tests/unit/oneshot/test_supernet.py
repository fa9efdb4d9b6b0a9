"""The supernet's mixed cell: one-hot mixtures, shrinking, discretisation, per-site sampling."""

from __future__ import annotations

import itertools

import pytest
import torch

from orchestrator.oneshot.search import ops_kept
from orchestrator.oneshot.supernet import (
    VARIANTS,
    Architecture,
    MixedActivation,
    mix,
    template_slots,
)
from orchestrator.space import BINARY_NAMES, UNARY_NAMES, SearchSpace, parse, to_text
from orchestrator.space.module import Activation
from orchestrator.space.torch_ops import BINARY_TORCH, UNARY_TORCH

X = torch.linspace(-5, 5, 201, dtype=torch.float64).reshape(3, 67)
X2 = torch.linspace(4, -3, 201, dtype=torch.float64).reshape(3, 67)
BETA = torch.full((1, 67), 0.7, dtype=torch.float64)


def _one_hot(n: int, i: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.tensor(i), n).to(torch.float64)


@pytest.mark.parametrize("name", UNARY_NAMES)
def test_a_unary_mixture_with_one_hot_weights_is_exactly_that_op(name: str) -> None:
    fns = [UNARY_TORCH[n].fn("safe") for n in UNARY_NAMES]
    i = UNARY_NAMES.index(name)
    got = mix(fns, _one_hot(len(fns), i), range(len(fns)), (X,), BETA, clamp=None)
    torch.testing.assert_close(got, UNARY_TORCH[name].fn("safe")(X, BETA), rtol=0, atol=0)


@pytest.mark.parametrize("name", BINARY_NAMES)
def test_a_binary_mixture_with_one_hot_weights_is_exactly_that_op(name: str) -> None:
    fns = [BINARY_TORCH[n].fn("safe") for n in BINARY_NAMES]
    i = BINARY_NAMES.index(name)
    got = mix(fns, _one_hot(len(fns), i), range(len(fns)), (X, X2), BETA, clamp=None)
    torch.testing.assert_close(got, BINARY_TORCH[name].fn("safe")(X, X2, BETA), rtol=0, atol=0)


def test_clamping_bounds_every_op_of_a_mixture() -> None:
    fns = [UNARY_TORCH["exp"].fn("safe"), UNARY_TORCH["cube"].fn("safe")]
    out = mix(fns, torch.tensor([0.5, 0.5], dtype=torch.float64), [0, 1], (X,), BETA, clamp=10.0)
    assert float(out.abs().max()) <= 10.0


def _shrunk(arch: Architecture) -> None:
    for s in arch.slots:
        while len(arch.active(s.name)) > 1:
            arch.drop_weakest(s.name)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("units", [1, 2])
def test_a_fully_shrunk_cell_computes_the_discretised_function(variant: str, units: int) -> None:
    torch.manual_seed(units)
    arch = Architecture(units, variant, clamp=None).double()  # type: ignore[arg-type]
    with torch.no_grad():
        for a in arch.alpha.values():
            a.normal_()
    _shrunk(arch)
    site = MixedActivation(arch, 67, "channel", 0.7).double()
    reference = Activation(arch.discretise(), 67, "channel", 0.7).double()
    for training in (True, False):  # sampling or expected weights: one op left is one op
        site.train(training)
        torch.testing.assert_close(site(X), reference(X), rtol=0, atol=0)


def test_shrinking_removes_the_weakest_op_and_only_it() -> None:
    arch = Architecture(1, "darts")
    with torch.no_grad():
        arch.alpha["u1"].copy_(torch.linspace(1, -1, len(UNARY_NAMES)))  # the last op is weakest
    before = arch.weights("u1", sample=False).detach()
    assert arch.drop_weakest("u1") == UNARY_NAMES[-1]
    after = arch.weights("u1", sample=False).detach()
    assert arch.active("u1") == list(range(len(UNARY_NAMES) - 1))
    assert float(after[-1]) == 0.0 and float(after.sum()) == pytest.approx(1.0)
    assert after[:-1].argsort().tolist() == before[:-1].argsort().tolist()  # the ranking is kept
    assert len(arch.active("u2")) == len(UNARY_NAMES)  # other slots untouched


def test_shrinking_stops_at_one_op_per_slot() -> None:
    arch = Architecture(1, "drnas", binary=("add", "max"))
    assert arch.drop_weakest("b1") in ("add", "max")
    with pytest.raises(ValueError, match="one op left"):
        arch.drop_weakest("b1")


def test_the_shrinking_schedule_is_logarithmic_from_every_op_to_one() -> None:
    kept = [ops_kept(25, s, 100) for s in range(101)]
    assert kept[0] == 25 and kept[99] == 2 and kept[100] == 1
    assert all(a >= b for a, b in itertools.pairwise(kept))
    assert kept[50] == 5  # 25 ** 0.5: half the time, a fifth of the ops
    assert 25 - kept[25] > kept[75] - 1  # most ops go early, the last few slowly


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("units", [1, 2, 3])
def test_discretisation_is_a_canonical_expression_of_the_template_space(seed: int, units: int) -> None:
    torch.manual_seed(seed)
    unary, binary = ("id", "relu", "sin", "beta", "exp"), ("add", "mul", "max")
    arch = Architecture(units, "drnas", unary, binary)
    with torch.no_grad():
        for a in arch.alpha.values():
            a.normal_()
    text = to_text(arch.discretise())
    assert to_text(parse(text)) == text
    assert SearchSpace(units=units, unary=unary, binary=binary).contains(parse(text))


def test_two_units_follow_the_papers_figure_one_template() -> None:
    assert [s.name for s in template_slots(2)] == ["u1", "u2", "b1", "u3", "u4", "b2"]
    arch = Architecture(2, "darts", ("id", "relu"), ("add", "max"))
    with torch.no_grad():
        for name, op in (("u1", 1), ("u2", 0), ("u3", 1), ("u4", 0), ("b1", 0), ("b2", 1)):
            arch.alpha[name][op] = 1.0
    assert to_text(arch.discretise()) == "max(relu(add(relu(x), id(x))), id(x))"


def test_drnas_draws_independent_weights_per_site_and_darts_shares_them() -> None:
    torch.manual_seed(0)
    for variant, same in (("drnas", False), ("darts", True)):
        arch = Architecture(1, variant)  # type: ignore[arg-type]
        a, b = arch.weights("u1", sample=True).detach(), arch.weights("u1", sample=True).detach()
        assert float(a.sum()) == pytest.approx(1.0) and float(b.sum()) == pytest.approx(1.0)
        assert torch.equal(a, b) is same


def test_gdas_samples_one_op_and_still_passes_gradients_to_alpha() -> None:
    torch.manual_seed(0)
    arch = Architecture(1, "gdas")
    w = arch.weights("u1", sample=True)
    assert sorted(w.tolist())[-1] == 1.0 and float(w.detach().sum()) == 1.0
    (w * torch.arange(len(w))).sum().backward()
    assert arch.alpha["u1"].grad is not None and float(arch.alpha["u1"].grad.abs().sum()) > 0


def test_a_warm_started_site_is_a_plain_relu() -> None:
    arch = Architecture(2, "drnas")
    arch.warm = True
    site = MixedActivation(arch, 67).double()
    assert torch.equal(site(X), torch.relu(X))


def test_alpha_belongs_to_the_architecture_not_to_every_site() -> None:
    arch = Architecture(2, "darts")
    net = torch.nn.Sequential(MixedActivation(arch, 4), MixedActivation(arch, 4))
    assert [n for n, _ in net.named_parameters()] == ["0.beta", "1.beta"]
