"""How well the surrogate's features rank real accuracies: leave-one-out on one half of a table.

Run: PYTHONPATH=. python bench/surrogate_features.py --table tables/fashion-mnist-mlp-1unit.jsonl.gz
         [--half development] [--neighbours 5]

For each function of the half with a finished seed (reward: mean final validation accuracy over
its finished seeds, as ``orchestrator.table.split.prior`` gives the surrogate), the
distance-weighted k-nearest-neighbour prediction (``surrogate.NearestNeighbours``) from every
other function of the half, and Spearman's ρ between predictions and accuracies: the rank
correlation the screen relies on, over all of them and over the better half (at or above the
median accuracy: where the top 1 % must be told apart). Also ρ of each single feature with accuracy, and of
``features`` extended by candidate additions that need no training (``EXTRA``). Prints JSON.
Choose features on the development half only; the held-out half is for the report.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np


def _extra(expr: Any) -> np.ndarray | None:
    """Candidate additions: second moments of f(z) and f'(z) (the signal and gradient gains a
    layer applies at initialisation), the share of z where f' ≈ 0 (dead units), and E[z·f(z)]
    (how much of the identity the function passes on), z ~ N(0, 1), by the same quadrature."""
    from orchestrator.search.surrogate import _NODES, _WEIGHTS, _squash
    from orchestrator.space.derivative import value_and_grad

    f, g = value_and_grad(expr, _NODES, 1.0, "safe")
    with np.errstate(all="ignore"):
        out = _squash(np.array([np.sum(_WEIGHTS * f * f), np.sum(_WEIGHTS * g * g),
                                np.sum(_WEIGHTS * (np.abs(g) < 1e-3)), np.sum(_WEIGHTS * _NODES * f)]))
    return out if np.all(np.isfinite(out)) else None


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr  # type: ignore[import-untyped]

    return float(spearmanr(a, b).statistic)


def _loo(x: np.ndarray, y: np.ndarray, k: int) -> np.ndarray:
    from orchestrator.search.surrogate import NearestNeighbours

    out = np.empty(len(y))
    for i in range(len(y)):
        rest = np.arange(len(y)) != i
        model = NearestNeighbours.fit(list(x[rest]), list(y[rest]), k=k)
        out[i] = model.predict([x[i]])[0]
    return out


def main() -> None:
    from orchestrator.search.surrogate import QUANTILES, features
    from orchestrator.space import parse
    from orchestrator.table.format import load
    from orchestrator.table.split import half, prior

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--table", required=True)
    ap.add_argument("--half", choices=["development", "heldout"], default="development")
    ap.add_argument("--neighbours", type=int, default=5)
    args = ap.parse_args()
    started = time.time()
    rows = []
    for expression, reward in prior(half(load(args.table), args.half)):
        expr = parse(expression)
        f, e = features(expr), _extra(expr)
        if f is not None and e is not None:
            rows.append((f, e, reward))
    base = np.stack([r[0] for r in rows])
    extra = np.stack([r[1] for r in rows])
    y = np.array([r[2] for r in rows])
    names = [f"f(q{q:g})" for q in QUANTILES] + ["mean f", "std f", "mean f'", "std f'"]
    extra_names = ["E f^2", "E f'^2", "P(|f'|<1e-3)", "E z f"]
    sets: dict[str, Callable[[], np.ndarray]] = {
        "features": lambda: base,
        "features + extra": lambda: np.hstack([base, extra]),
        "moments only (mean/std of f, f')": lambda: base[:, -4:],
        "moments + extra": lambda: np.hstack([base[:, -4:], extra]),
    }
    predictions = {name: _loo(x(), y, args.neighbours) for name, x in sets.items()}
    upper = y >= np.median(y)
    print(json.dumps({
        "table": args.table, "half": args.half, "functions": len(y), "neighbours": args.neighbours,
        "loo_spearman": {name: round(_spearman(p, y), 4) for name, p in predictions.items()},
        "loo_spearman_upper_half": {name: round(_spearman(p[upper], y[upper]), 4)
                                    for name, p in predictions.items()},
        "single_feature_spearman": {n: round(_spearman(col, y), 4)
                                    for n, col in zip(names + extra_names,
                                                      np.hstack([base, extra]).T, strict=True)},
        "seconds": round(time.time() - started, 1),
    }, indent=1))


if __name__ == "__main__":
    main()
