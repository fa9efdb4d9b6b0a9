"""Functional fingerprints: two expressions that compute the same function share one.

The function is evaluated (NumPy reference, float64) on ``PROBE_POINTS`` at each of
``PROBE_BETAS``; every value is rounded to ``SIGNIFICANT_DIGITS`` significant digits (magnitudes
below ``ZERO_BELOW`` count as 0, non-finite values keep their kind), and the rounded values are
hashed. Two β values separate functions that coincide at β = 1 (``mul_beta(x)`` and ``x``).

Tolerance: functions agreeing to about 1e-6 relative on all probes collide; functions that differ
by more anywhere on the probes do not. Exactly equal functions computed by different float
operations can, rarely, straddle a rounding boundary (odds of about 1e-10 per probe).
"""

from __future__ import annotations

import hashlib

import numpy as np

from orchestrator.space.evaluate import evaluate
from orchestrator.space.expr import Expr
from orchestrator.space.ops import Numerics

SIGNIFICANT_DIGITS = 6
ZERO_BELOW = 1e-9
PROBE_BETAS: tuple[float, ...] = (1.0, 0.61)
PROBE_POINTS: np.ndarray = np.concatenate(
    [
        np.linspace(-8.0, 8.0, 57),  # includes 0 and the integers
        # irrational-looking points break coincidences of periodic and polynomial forms
        np.array([-3.14159265, -1.41421356, -0.31830989, 0.05772157, 0.70710678, 1.61803399,
                  2.71828183, 12.5, -12.5, 20.0, -20.0]),
    ]
)


def _quantize(v: float) -> str:
    if np.isnan(v):
        return "nan"
    if np.isinf(v):
        return "inf" if v > 0 else "-inf"
    if abs(v) < ZERO_BELOW:
        return "0"
    return f"{v:.{SIGNIFICANT_DIGITS - 1}e}"


def fingerprint(expr: Expr, numerics: Numerics = "safe") -> str:
    """A 16-hex-digit hash of the function's rounded values on the fixed probes."""
    h = hashlib.sha256()
    for beta in PROBE_BETAS:
        values = evaluate(expr, PROBE_POINTS, beta=beta, numerics=numerics)
        h.update(",".join(_quantize(float(v)) for v in values).encode())
    return h.hexdigest()[:16]
