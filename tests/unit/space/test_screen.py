"""The numeric screen rejects, with a reason, functions that cannot be useful activations."""

from __future__ import annotations

import pytest

from orchestrator.space import parse
from orchestrator.space.screen import ScreenConfig, screen


@pytest.mark.parametrize(
    "expr",
    ["sigmul(mul_beta(x), id(x))", "max(relu(x), relu(x))", "sub(cos(x), id(x))",
     "sub(square(max(atan(x), atan(x))), id(x))", "add(sinc(x), id(x))", "max(cube(x), id(x))"],
)
def test_good_activations_pass(expr: str) -> None:
    assert screen(parse(expr)).ok


@pytest.mark.parametrize(
    ("expr", "numerics", "reason"),
    [
        ("add(beta(x), beta(x))", "safe", "constant in x"),
        ("mul(cos(x), beta(x))", "safe", None),  # not constant: passes
        ("mul(sqrt(x), id(x))", "paper", "non-finite value at x=-5"),
        ("div(id(x), id(x))", "safe", "gradient explodes"),
        ("mul(sinh(x), cosh(x))", "safe", "value explodes"),
        ("mul(exp(x), exp(x))", "paper", "value explodes"),
        ("add(sqrt(x), id(x))", "safe", None),  # guarded √ is usable
    ],
)
def test_bad_functions_are_rejected_with_a_reason(expr: str, numerics: str, reason: str | None) -> None:
    result = screen(parse(expr), numerics=numerics)
    if reason is None:
        assert result.ok
    else:
        assert not result.ok
        assert reason in (result.reason or "")


def test_limits_are_configurable() -> None:
    expr = parse("max(cube(x), id(x))")  # 125 at x = 5
    assert screen(expr).ok
    verdict = screen(expr, config=ScreenConfig(max_abs_value=100.0))
    assert not verdict.ok and "limit 100" in (verdict.reason or "")
    assert screen(expr, config=ScreenConfig(domain=4.0, max_abs_value=100.0)).ok


def test_non_finite_gradients_are_caught_in_paper_numerics() -> None:
    # √|x| is finite everywhere but its derivative is not at 0
    result = screen(parse("add(sqrt(max(abs(x), abs(x))), id(x))"), numerics="paper")
    assert not result.ok
    assert result.reason == "non-finite gradient at x=0"


AFFINE = ["max(mul_beta(x), mul_beta(x))", "add(id(x), beta(x))", "sub(mul_beta(x), neg(x))",
          "min(abs(x), id(x))"]


@pytest.mark.parametrize("expr", AFFINE)
def test_affine_functions_are_rejected_only_when_asked(expr: str) -> None:
    text = parse(expr)
    assert screen(text).ok  # the search loop's default screen lets them through
    result = screen(text, config=ScreenConfig(reject_affine=True))
    assert not result.ok and "affine in x" in (result.reason or "")


@pytest.mark.parametrize("expr", ["max(relu(x), relu(x))", "sigmul(mul_beta(x), id(x))",
                                  "add(sin(x), id(x))", "max(cube(x), id(x))",
                                  "max(id(x), neg(x))"])  # |x|: one kink is enough
def test_nonlinear_functions_pass_the_affine_check(expr: str) -> None:
    assert screen(parse(expr), config=ScreenConfig(reject_affine=True)).ok
