"""The torch module builder: equals the NumPy tree evaluator, trains β per channel or as a
scalar, runs under bf16 autocast and compiles without graph breaks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.space import SearchSpace, Unit, parse
from orchestrator.space.evaluate import evaluate
from orchestrator.space.module import Activation, build_activation

from .strategies import trees

SWISH = parse("sigmul(mul_beta(x), id(x))")


@settings(max_examples=150, deadline=None)
@given(tree=trees, beta=st.floats(0.2, 2.0), seed=st.integers(0, 1000))
def test_builder_output_equals_the_tree_evaluator_on_random_input(
    tree: Unit, beta: float, seed: int
) -> None:
    x = np.random.default_rng(seed).normal(0, 2, size=64)
    act = build_activation(tree, beta_mode="scalar", beta_init=beta).double()
    got = act(torch.from_numpy(x)).detach().numpy()
    used = float(act.beta.item())  # β was stored as float32 before .double()
    np.testing.assert_allclose(got, evaluate(tree, x, beta=used), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("numerics", ["safe", "paper"])
def test_builder_agrees_in_both_numerics_over_a_space_sample(numerics: str) -> None:
    x = np.linspace(-6, 6, 97)
    for expr in SearchSpace(units=2).sample_expressions(60, seed=11):
        act = Activation(expr, beta_mode="scalar", numerics=numerics).double()
        got = act(torch.from_numpy(x)).detach().numpy()
        np.testing.assert_allclose(got, evaluate(expr, x, numerics=numerics),
                                   rtol=1e-9, atol=1e-9, equal_nan=True)


def test_beta_is_one_trainable_parameter_per_channel_of_the_site() -> None:
    act = Activation(SWISH, channels=3)
    assert [n for n, _ in act.named_parameters()] == ["beta"]
    assert act.beta.shape == (3,)
    assert torch.equal(act.beta.detach(), torch.ones(3))
    x = torch.randn(2, 3, 4, 4)
    with torch.no_grad():
        act.beta[1] = 2.0
    y = act(x)
    assert torch.allclose(y[:, 1], x[:, 1] * torch.sigmoid(2 * x[:, 1]))
    assert torch.allclose(y[:, 0], x[:, 0] * torch.sigmoid(x[:, 0]))
    y.sum().backward()
    assert act.beta.grad is not None and act.beta.grad.shape == (3,)


def test_scalar_beta_broadcasts_over_any_shape() -> None:
    act = Activation(SWISH, beta_mode="scalar", beta_init=0.5)
    for shape in [(5,), (2, 7), (2, 3, 4, 4)]:
        x = torch.randn(shape)
        assert torch.allclose(act(x), x * torch.sigmoid(0.5 * x))


def test_per_channel_beta_needs_the_channel_count() -> None:
    with pytest.raises(ValueError, match="channels"):
        Activation(SWISH)
    with pytest.raises(ValueError, match="beta_mode"):
        Activation(SWISH, channels=3, beta_mode="row")  # type: ignore[arg-type]


def test_constant_beta_op_fills_the_input_shape_and_trains_beta() -> None:
    act = Activation(parse("add(beta(x), id(x))"), channels=2)
    x = torch.zeros(4, 2, 3)
    y = act(x)
    assert y.shape == x.shape and torch.all(y == 1)
    y.sum().backward()
    assert torch.all(act.beta.grad == 12)


def test_bf16_autocast_keeps_the_activation_in_bf16() -> None:
    act = Activation(parse("sub(square(max(atan(x), atan(x))), id(x))"), channels=4)
    x = torch.randn(2, 4, 3, 3, dtype=torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = act(x)
    assert y.dtype == torch.bfloat16
    ref = act.float()(x.float())
    assert torch.allclose(y.float(), ref, atol=0.1, rtol=0.05)


@pytest.mark.parametrize(
    "expr", ["sigmul(mul_beta(x), id(x))", "div(sin(x), add_beta(max(exp(x), gauss(x))))"]
)
def test_compiles_to_one_graph_without_breaks(expr: str) -> None:
    act = Activation(parse(expr), channels=4)
    compiled = torch.compile(act, fullgraph=True, backend="aot_eager")
    x = torch.randn(2, 4, 3, 3)
    assert torch.allclose(compiled(x), act(x))


def test_extra_repr_names_the_expression() -> None:
    assert "sigmul(mul_beta(x), id(x))" in repr(Activation(SWISH, channels=2))
