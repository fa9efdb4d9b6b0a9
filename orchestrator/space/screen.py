"""Numeric screen: reject, before any training, functions that cannot make a useful activation.

The function is evaluated with the torch ops actually used in training (float64, autograd for
f') on realistic pre-activations: ``points`` evenly spaced on ``[-domain, domain]`` (BatchNorm
keeps pre-activations near N(0, 1); ±5 covers all but 6e-7 of them) at β = ``beta``.
A function is rejected, with a reason, when it gives a non-finite value or gradient, is constant
in x, or its value or gradient exceeds the configured limits anywhere on the domain.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from orchestrator.space.expr import Expr
from orchestrator.space.module import Activation
from orchestrator.space.ops import Numerics


@dataclass(frozen=True)
class ScreenConfig:
    domain: float = 5.0
    points: int = 1001
    beta: float = 1.0
    max_abs_value: float = 1e3
    max_abs_grad: float = 1e3
    constant_tol: float = 1e-6


@dataclass(frozen=True)
class ScreenResult:
    ok: bool
    reason: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {"ok": self.ok, "reason": self.reason}


def screen(
    expr: Expr, numerics: Numerics = "safe", config: ScreenConfig | None = None
) -> ScreenResult:
    cfg = config or ScreenConfig()
    half = cfg.points // 2  # symmetric grid with 0 exactly on it
    x = (torch.arange(-half, half + 1, dtype=torch.float64) * (cfg.domain / half)).requires_grad_()
    act = Activation(expr, beta_mode="scalar", beta_init=cfg.beta, numerics=numerics).double()
    y = act(x)
    (grad,) = torch.autograd.grad(y.sum(), x, allow_unused=True)
    grad = torch.zeros_like(x) if grad is None else grad
    y, grad, xs = y.detach(), grad.detach(), x.detach()

    def at(mask: torch.Tensor) -> float:
        return float(xs[mask.nonzero()[0, 0]])

    bad = ~torch.isfinite(y)
    if bad.any():
        return ScreenResult(False, f"non-finite value at x={at(bad):.4g}")
    bad = ~torch.isfinite(grad)
    if bad.any():
        return ScreenResult(False, f"non-finite gradient at x={at(bad):.4g}")
    if float(y.max() - y.min()) <= cfg.constant_tol * max(1.0, float(y.abs().max())):
        return ScreenResult(False, f"constant in x on [-{cfg.domain:g}, {cfg.domain:g}]")
    peak = int(y.abs().argmax())
    if float(y.abs()[peak]) > cfg.max_abs_value:
        return ScreenResult(
            False,
            f"value explodes: |f(x)| = {float(y.abs()[peak]):.3g} at x={float(xs[peak]):.4g} "
            f"(limit {cfg.max_abs_value:g})",
        )
    peak = int(grad.abs().argmax())
    if float(grad.abs()[peak]) > cfg.max_abs_grad:
        return ScreenResult(
            False,
            f"gradient explodes: |f'(x)| = {float(grad.abs()[peak]):.3g} at x={float(xs[peak]):.4g} "
            f"(limit {cfg.max_abs_grad:g})",
        )
    return ScreenResult(True)
