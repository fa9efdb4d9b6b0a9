"""Evaluate an expression tree with the NumPy reference ops (float64): the ground truth that the
torch builder, the fingerprint and the CLI's ``space eval`` agree with."""

from __future__ import annotations

import numpy as np

from orchestrator.space.expr import Expr, Node, Unit, X
from orchestrator.space.ops import BINARY, UNARY, Numerics


def evaluate(
    expr: Expr, x: np.ndarray | float, beta: float = 1.0, numerics: Numerics = "safe"
) -> np.ndarray:
    """f(x) elementwise. Shared subtrees are computed once."""
    xs = np.asarray(x, dtype=np.float64)
    b = np.float64(beta)
    memo: dict[Unit, np.ndarray] = {}

    def ev(node: Node) -> np.ndarray:
        if node == X:
            return xs
        assert isinstance(node, Unit)
        if node not in memo:
            a = UNARY[node.unary1].numpy_fn(numerics)(ev(node.input1), b)
            c = UNARY[node.unary2].numpy_fn(numerics)(ev(node.input2), b)
            memo[node] = BINARY[node.binary].numpy_fn(numerics)(a, c, b)
        return memo[node]

    with np.errstate(all="ignore"):  # paper numerics may produce NaN/inf on purpose
        return np.broadcast_to(ev(expr), xs.shape).astype(np.float64)
