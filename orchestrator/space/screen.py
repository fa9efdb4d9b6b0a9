"""Numeric screen: reject, before any training, functions that cannot make a useful activation.

The function and its derivative are evaluated in NumPy, float64, with the rules torch's autograd
applies to the training ops (``derivative``: the screen sees the gradient training would see, and
loads without torch), on realistic pre-activations: ``points`` evenly spaced on
``[-domain, domain]`` (BatchNorm keeps pre-activations near N(0, 1); ±5 covers all but 6e-7 of
them) at β = ``beta``. A function is rejected, with a reason, when it gives a non-finite value or
gradient, is constant in x, or its value or gradient exceeds the configured limits anywhere on
the domain; with ``reject_affine`` (the one-shot derivation's screen, docs/oneshot.md) also when
it is affine in x at that β (a network of affine activations is one linear map). The reason
names the first point where that happens; where |f| or |f'| peaks equally at several points
(f(-5) and f(5) of an even function), the last bit of the math library decides which one is named.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from orchestrator.space.derivative import value_and_grad
from orchestrator.space.expr import Expr
from orchestrator.space.ops import Array, Numerics


@dataclass(frozen=True)
class ScreenConfig:
    domain: float = 5.0
    points: int = 1001
    beta: float = 1.0
    max_abs_value: float = 1e3
    max_abs_grad: float = 1e3
    constant_tol: float = 1e-6
    reject_affine: bool = False
    affine_tol: float = 1e-3  # max |f - best affine fit| relative to f's range on the domain


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
    xs = np.arange(-half, half + 1, dtype=np.float64) * (cfg.domain / half)
    beta = float(np.float32(cfg.beta))  # training keeps β as a float32 parameter
    y, grad = value_and_grad(expr, xs, beta, numerics)

    def at(mask: Array) -> float:
        return float(xs[np.flatnonzero(mask)[0]])

    bad = ~np.isfinite(y)
    if bad.any():
        return ScreenResult(False, f"non-finite value at x={at(bad):.4g}")
    bad = ~np.isfinite(grad)
    if bad.any():
        return ScreenResult(False, f"non-finite gradient at x={at(bad):.4g}")
    if float(y.max() - y.min()) <= cfg.constant_tol * max(1.0, float(np.abs(y).max())):
        return ScreenResult(False, f"constant in x on [-{cfg.domain:g}, {cfg.domain:g}]")
    if cfg.reject_affine and _affine(xs, y, cfg.affine_tol):
        return ScreenResult(False, f"affine in x on [-{cfg.domain:g}, {cfg.domain:g}]")
    peak = int(np.abs(y).argmax())
    if float(np.abs(y)[peak]) > cfg.max_abs_value:
        return ScreenResult(
            False,
            f"value explodes: |f(x)| = {float(np.abs(y)[peak]):.3g} at x={float(xs[peak]):.4g} "
            f"(limit {cfg.max_abs_value:g})",
        )
    peak = int(np.abs(grad).argmax())
    if float(np.abs(grad)[peak]) > cfg.max_abs_grad:
        return ScreenResult(
            False,
            f"gradient explodes: |f'(x)| = {float(np.abs(grad)[peak]):.3g} at x={float(xs[peak]):.4g} "
            f"(limit {cfg.max_abs_grad:g})",
        )
    return ScreenResult(True)


def _affine(xs: Array, y: Array, tol: float) -> bool:
    """Whether the least-squares line through (xs, y) misses no point by more than ``tol`` of
    y's range."""
    design = np.stack([xs, np.ones_like(xs)], axis=1)
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    return float(np.abs(design @ coef - y).max()) <= tol * float(y.max() - y.min())
