"""Every op of the table: the torch forms (``torch_ops``) agree with the NumPy forms (``ops``),
and every torch form's gradient passes gradcheck in float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from orchestrator.space.ops import (
    BINARY_NAMES,
    BINARY_OPS,
    EPS,
    GROWTH_LIMIT,
    UNARY_NAMES,
    UNARY_OPS,
)
from orchestrator.space.torch_ops import BINARY_TORCH, UNARY_TORCH

TORCH = {**UNARY_TORCH, **BINARY_TORCH}

PAPER_UNARY = [
    "id", "neg", "abs", "square", "cube", "sqrt", "mul_beta", "add_beta", "log_abs", "exp", "sin",
    "cos", "sinh", "cosh", "tanh", "asinh", "atan", "sinc", "relu", "min0", "sigmoid",
    "softplus", "gauss", "erf", "beta",
]
PAPER_BINARY = [
    "add", "mul", "sub", "div", "max", "min", "sigmul", "gauss_dist", "laplace_dist", "beta_mix",
]

finite = st.floats(-60.0, 60.0, allow_nan=False, allow_infinity=False)
vectors = arrays(np.float64, st.integers(1, 16), elements=finite)
betas = st.floats(-3.0, 3.0, allow_nan=False)


def test_the_table_has_the_papers_25_unary_and_10_binary_functions_in_order() -> None:
    assert list(UNARY_NAMES) == PAPER_UNARY
    assert list(BINARY_NAMES) == PAPER_BINARY


def _close(a: torch.Tensor, b: np.ndarray) -> None:
    np.testing.assert_allclose(a.numpy(), b, rtol=1e-10, atol=1e-12, equal_nan=True)


@pytest.mark.parametrize("op", UNARY_OPS, ids=lambda o: o.name)
@settings(max_examples=40, deadline=None)
@given(x=vectors, beta=betas)
def test_unary_torch_forms_match_numpy_references(op, x: np.ndarray, beta: float) -> None:
    t = torch.from_numpy(x)
    b = torch.tensor(beta, dtype=torch.float64)
    with np.errstate(all="ignore"):
        _close(TORCH[op.name].safe(t, b), op.numpy_safe(x, np.float64(beta)))
        _close(TORCH[op.name].paper(t, b), op.numpy_paper(x, np.float64(beta)))


@pytest.mark.parametrize("op", BINARY_OPS, ids=lambda o: o.name)
@settings(max_examples=40, deadline=None)
@given(data=st.data(), beta=betas)
def test_binary_torch_forms_match_numpy_references(op, data, beta: float) -> None:
    n = data.draw(st.integers(1, 16))
    a = data.draw(arrays(np.float64, n, elements=finite))
    c = data.draw(arrays(np.float64, n, elements=finite))
    ta, tc = torch.from_numpy(a), torch.from_numpy(c)
    b = torch.tensor(beta, dtype=torch.float64)
    with np.errstate(all="ignore"):
        _close(TORCH[op.name].safe(ta, tc, b), op.numpy_safe(a, c, np.float64(beta)))
        _close(TORCH[op.name].paper(ta, tc, b), op.numpy_paper(a, c, np.float64(beta)))


@pytest.mark.parametrize("op", UNARY_OPS + BINARY_OPS, ids=lambda o: o.name)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_safe_forms_are_finite_on_any_finite_input(op, data) -> None:
    huge = st.floats(-1e30, 1e30, allow_nan=False)
    args = [torch.tensor(data.draw(st.lists(huge, min_size=1, max_size=8)), dtype=torch.float64)
            for _ in range(op.arity)]
    args = [a[: min(len(x) for x in args)] for a in args]
    beta = torch.tensor(data.draw(st.floats(-10, 10, allow_nan=False)), dtype=torch.float64)
    out = TORCH[op.name].safe(*args, beta)
    assert torch.isfinite(out).all(), (op.name, args, out)


def test_paper_forms_are_raw_where_the_safe_forms_guard() -> None:
    x = torch.tensor([-4.0], dtype=torch.float64)
    one = torch.tensor(1.0, dtype=torch.float64)
    assert torch.isnan(TORCH["sqrt"].paper(x, one)).all()
    assert torch.isfinite(TORCH["sqrt"].safe(x, one)).all()
    big = torch.tensor([200.0], dtype=torch.float64)
    assert torch.isinf(TORCH["exp"].paper(big.float(), one.float())).all()
    assert float(TORCH["exp"].safe(big, one)) == pytest.approx(GROWTH_LIMIT, rel=1e-9)
    zero = torch.tensor([-EPS], dtype=torch.float64)
    assert torch.isinf(TORCH["div"].paper(one.view(1), zero, one)).all()
    assert torch.isfinite(TORCH["div"].safe(one.view(1), zero, one)).all()


def _avoiding_kinks(n: int, gen: torch.Generator) -> torch.Tensor:
    """Points in [-3, 3] at least 0.05 from 0 (kinks of abs, relu, min0, sqrt, log_abs)."""
    x = torch.rand(n, generator=gen, dtype=torch.float64) * 2.9 + 0.05
    sign = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0).double()
    return x * sign


@pytest.mark.parametrize("numerics", ["safe", "paper"])
@pytest.mark.parametrize("op", UNARY_OPS, ids=lambda o: o.name)
def test_unary_gradients_pass_gradcheck(op, numerics: str) -> None:
    gen = torch.Generator().manual_seed(0)
    x = _avoiding_kinks(12, gen)
    if op.name == "sqrt" and numerics == "paper":
        x = x.abs()
    x.requires_grad_()
    beta = torch.tensor([0.8], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: TORCH[op.name].fn(numerics)(a, b), (x, beta))


@pytest.mark.parametrize("numerics", ["safe", "paper"])
@pytest.mark.parametrize("op", BINARY_OPS, ids=lambda o: o.name)
def test_binary_gradients_pass_gradcheck(op, numerics: str) -> None:
    gen = torch.Generator().manual_seed(1)
    a = _avoiding_kinks(12, gen)
    c = a + torch.where(torch.rand(12, generator=gen) < 0.5, -0.7, 0.9).double()  # a != c
    if op.name == "div":
        c = c.abs() + 0.5  # away from the pole at -ε
    a.requires_grad_()
    c.requires_grad_()
    beta = torch.tensor([0.8], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda p, q, b: TORCH[op.name].fn(numerics)(p, q, b), (a, c, beta))


def test_docs_write_down_every_guarded_form() -> None:
    from pathlib import Path

    docs = (Path(__file__).parents[3] / "docs" / "space.md").read_text()
    for op in UNARY_OPS + BINARY_OPS:
        assert f"| `{op.name}` |" in docs
        assert op.guard.replace("|", "\\|") in docs
