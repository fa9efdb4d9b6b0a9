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
