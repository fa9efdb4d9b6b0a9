"""The NumPy derivative the screen uses equals torch's autograd on the training ops, at kinks,
clamp bounds and poles included, and the screen's verdicts equal those of a torch screen."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from orchestrator.space import BINARY_NAMES, UNARY_NAMES, SearchSpace, Unit, X, parse
from orchestrator.space.derivative import value_and_grad
from orchestrator.space.module import Activation
from orchestrator.space.ops import CUBE_CLAMP, EPS, EXP_CLAMP, SINH_CLAMP, SQUARE_CLAMP
from orchestrator.space.screen import ScreenConfig, ScreenResult, screen

SPECIAL = [0.0, EPS, -EPS, -2 * EPS, 1.0, -1.0, 20.0, 25.0, EXP_CLAMP, SINH_CLAMP, -SINH_CLAMP,
           SQUARE_CLAMP, -SQUARE_CLAMP, CUBE_CLAMP, -CUBE_CLAMP, 1e5, -1e5, 800.0, -800.0]
POINTS = np.concatenate([np.linspace(-6.0, 6.0, 241), SPECIAL])


def _torch_value_and_grad(expr: Unit, x: np.ndarray, beta: float, numerics: str):
    act = Activation(expr, beta_mode="scalar", beta_init=beta, numerics=numerics).double()
    xt = torch.from_numpy(x).requires_grad_()
    y = act(xt)
    (g,) = torch.autograd.grad(y.sum(), xt, allow_unused=True)
    g = torch.zeros_like(xt) if g is None else g
    return y.detach().numpy(), g.detach().numpy(), float(act.beta.item())


def _agree(expr: Unit, numerics: str, beta: float = 0.8) -> None:
    ty, tg, used = _torch_value_and_grad(expr, POINTS, beta, numerics)
    y, g = value_and_grad(expr, POINTS, used, numerics)  # type: ignore[arg-type]
    for name, got, want in (("value", y, ty), ("gradient", g, tg)):
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=f"{name} NaN")
        np.testing.assert_array_equal(np.isinf(got), np.isinf(want), err_msg=f"{name} inf")
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12, equal_nan=True,
                                   err_msg=name)


@pytest.mark.parametrize("numerics", ["safe", "paper"])
@pytest.mark.parametrize("name", UNARY_NAMES)
def test_each_unary_ops_numpy_gradient_equals_torch_autograd(name: str, numerics: str) -> None:
    _agree(Unit("add", name, X, "id", X), numerics)
    _agree(Unit("max", name, X, name, X), numerics)  # ties split the gradient


@pytest.mark.parametrize("numerics", ["safe", "paper"])
@pytest.mark.parametrize("name", BINARY_NAMES)
def test_each_binary_ops_numpy_gradient_equals_torch_autograd(name: str, numerics: str) -> None:
    for u1, u2 in (("id", "neg"), ("sin", "id"), ("id", "id"), ("square", "sqrt"), ("exp", "cube")):
        _agree(Unit(name, u1, X, u2, X), numerics)


@pytest.mark.parametrize("numerics", ["safe", "paper"])
def test_gradients_of_two_unit_functions_equal_torch_autograd(numerics: str) -> None:
    for expr in SearchSpace(units=2).sample_expressions(150, seed=5):
        _agree(expr, numerics)


def _torch_screen(expr: Unit, numerics: str, cfg: ScreenConfig) -> ScreenResult:
    """The screen as it was written with torch's autograd: the reference for the NumPy one."""
    half = cfg.points // 2
    x = torch.arange(-half, half + 1, dtype=torch.float64) * (cfg.domain / half)
    y, g, _ = _torch_value_and_grad(expr, x.numpy(), cfg.beta, numerics)
    xs = x.numpy()
    for values, what in ((y, "value"), (g, "gradient")):
        bad = ~np.isfinite(values)
        if bad.any():
            return ScreenResult(False, f"non-finite {what} at x={float(xs[bad.argmax()]):.4g}")
    if float(y.max() - y.min()) <= cfg.constant_tol * max(1.0, float(np.abs(y).max())):
        return ScreenResult(False, f"constant in x on [-{cfg.domain:g}, {cfg.domain:g}]")
    for values, label, limit, what in ((y, "|f(x)|", cfg.max_abs_value, "value"),
                                       (g, "|f'(x)|", cfg.max_abs_grad, "gradient")):
        peak = int(np.abs(values).argmax())
        if abs(float(values[peak])) > limit:
            return ScreenResult(False, f"{what} explodes: {label} = {abs(float(values[peak])):.3g} "
                                       f"at x={float(xs[peak]):.4g} (limit {limit:g})")
    return ScreenResult(True)


@pytest.mark.parametrize("numerics", ["safe", "paper"])
def test_screen_verdicts_equal_a_torch_autograd_screen_over_a_space_sample(numerics: str) -> None:
    configs = [ScreenConfig(), ScreenConfig(domain=3.0, points=501, beta=0.7, max_abs_value=50.0,
                                            max_abs_grad=50.0)]
    exprs = [*SearchSpace(units=1).sample_expressions(300, seed=2),
             *SearchSpace(units=2).sample_expressions(300, seed=3),
             parse("add(sqrt(max(abs(x), abs(x))), id(x))"), parse("div(id(x), id(x))")]
    for expr in exprs:
        for cfg in configs:
            got = screen(expr, numerics, cfg)  # type: ignore[arg-type]
            assert _same_verdict(got, _torch_screen(expr, numerics, cfg)), expr


def _same_verdict(a: ScreenResult, b: ScreenResult) -> bool:
    """Equal verdicts and reasons, but where |f| or |f'| peaks equally at several points (f(-5)
    and f(5) of an even function) the last bit of torch's or NumPy's sinh, cosh... picks which
    one the reason names: the reasons then differ only after "at x="."""
    if a == b:
        return True
    if a.ok or b.ok or a.reason is None or b.reason is None:
        return False
    head_a, head_b = a.reason.split(" at x=")[0], b.reason.split(" at x=")[0]
    return "explodes" in head_a and head_a == head_b
