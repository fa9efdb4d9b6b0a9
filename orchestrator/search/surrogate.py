"""A surrogate that ranks candidate activations before any training (in the spirit of AQuaSurF,
Bingham & Miikkulainen 2023): features computed from the function alone, a regressor fitted on
the rewards seen so far.

Features (``features``), all from the NumPy reference evaluator at β = 1, for z ~ N(0, 1), the
pre-activations BatchNorm feeds an activation: f at ``QUANTILES`` of N(0, 1) (the function's
shape where inputs fall), and the mean and standard deviation of f(z) and of f'(z) (how the
function scales the signal and the gradient, which decide whether a deep network trains;
computed by Gauss–Hermite quadrature, so they are exact for smooth f and identical on every
machine). Values are squashed by ``sign(v)·log1p(|v|)`` so that one huge output does not dominate
the distances. A function with a non-finite feature has none and ranks last.

Regressor (``NearestNeighbours``): the distance-weighted mean reward of the ``k`` nearest
evaluated functions in feature space, features standardised on the training set. It needs no
fitting, ranks well with a few dozen points, and cannot extrapolate beyond the rewards it has
seen, which is the conservative choice for a screen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.polynomial.hermite_e import hermegauss
from scipy.stats import norm  # type: ignore[import-untyped]

from orchestrator.space import Expr
from orchestrator.space.derivative import value_and_grad

QUANTILES: tuple[float, ...] = (0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)
_Z_AT_QUANTILES = norm.ppf(np.asarray(QUANTILES))
_NODES, _WEIGHTS = hermegauss(60)
_WEIGHTS = _WEIGHTS / _WEIGHTS.sum()  # E[g(z)] = Σ w_i g(z_i) for z ~ N(0, 1)
FEATURES = len(QUANTILES) + 4


def _squash(v: np.ndarray) -> np.ndarray:
    return np.sign(v) * np.log1p(np.abs(v))


def features(expr: Expr) -> np.ndarray | None:
    """The function's feature vector (length ``FEATURES``), or None where it is not finite."""
    f_q, _ = value_and_grad(expr, _Z_AT_QUANTILES, 1.0, "safe")
    f, g = value_and_grad(expr, _NODES, 1.0, "safe")
    with np.errstate(all="ignore"):
        moments = []
        for v in (f, g):
            mean = float(np.sum(_WEIGHTS * v))
            moments += [mean, float(np.sqrt(max(0.0, np.sum(_WEIGHTS * np.square(v - mean)))))]
        out = _squash(np.concatenate([f_q, np.asarray(moments)]))
    return out if np.all(np.isfinite(out)) else None


@dataclass(frozen=True)
class NearestNeighbours:
    """Distance-weighted k-nearest-neighbour regression on standardised features."""

    x: np.ndarray  # (n, FEATURES)
    y: np.ndarray  # (n,)
    k: int = 5

    @classmethod
    def fit(cls, x: Sequence[np.ndarray], y: Sequence[float], k: int = 5) -> NearestNeighbours:
        if len(x) != len(y) or not x:
            raise ValueError("fit needs as many rewards as feature vectors, at least one")
        return cls(np.stack(x), np.asarray(y, dtype=np.float64), k)

    def predict(self, x: Sequence[np.ndarray]) -> np.ndarray:
        """Predicted rewards of the rows of ``x``."""
        if not x:
            return np.zeros(0)
        mu, sd = self.x.mean(axis=0), self.x.std(axis=0)
        sd = np.where(sd > 1e-12, sd, 1.0)
        train, query = (self.x - mu) / sd, (np.stack(x) - mu) / sd
        d = np.sqrt(np.square(query[:, None, :] - train[None, :, :]).sum(axis=2))
        k = min(self.k, len(self.y))
        nearest = np.argsort(d, axis=1, kind="stable")[:, :k]
        w = 1.0 / (np.take_along_axis(d, nearest, axis=1) + 1e-9)
        return np.asarray((w * self.y[nearest]).sum(axis=1) / w.sum(axis=1))
