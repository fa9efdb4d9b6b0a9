"""The paper's 25 unary and 10 binary functions: one row per op, every pure form of the op in its row.

Each op carries its NumPy form (the guarded ``safe`` form and the raw ``paper`` form), a readable
math template and a LaTeX template. This module imports NumPy only, so the grammar, parser,
fingerprint and screen load without torch; the torch forms that training runs live in
``orchestrator.space.torch_ops``, keyed by op name, and are tested against these. β broadcasts
against the input; ops that do not use it ignore it.

Guarded ("safe") forms, written out in docs/space.md: every op whose value can grow without bound
is bounded to about ``GROWTH_LIMIT`` (1e8), partial ops (√, division) are made total, so a finite
input never yields inf or NaN. ``paper`` numerics apply the formulas raw, as the original did.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]
UnaryFn = Callable[[Array, Array], Array]
"""``f(x, beta)``; beta broadcasts against x."""
BinaryFn = Callable[[Array, Array, Array], Array]
"""``f(a, b, beta)``."""

Numerics = Literal["safe", "paper"]
NUMERICS: tuple[Numerics, ...] = ("safe", "paper")

EPS = 1e-7
"""ε of log(|x|+ε) and x1/(x2+ε), and the smallest magnitude a guarded denominator takes."""
GROWTH_LIMIT = 1e8
"""Bound on the magnitude of every growing op's output in the safe form (far from float overflow)."""
EXP_CLAMP = math.log(GROWTH_LIMIT)  # exp(x) <= 1e8
SINH_CLAMP = math.asinh(GROWTH_LIMIT)  # |sinh(x)|, cosh(x) <= 1e8
SQUARE_CLAMP = math.sqrt(GROWTH_LIMIT)  # x^2 <= 1e8
CUBE_CLAMP = GROWTH_LIMIT ** (1.0 / 3.0)  # |x^3| <= 1e8

# Operator precedence for readable rendering: an argument is parenthesised when its own
# precedence is lower than what its slot in the template needs.
ADD, MUL, POW, ATOM = 1, 2, 3, 4
PASS = 0  # the result takes its argument's precedence (identity)


@dataclass(frozen=True)
class Op:
    """One function of the search space: its NumPy forms and how it is written."""

    name: str
    arity: int
    numpy_safe: Callable[..., Array]
    numpy_paper: Callable[..., Array]
    math: str  # "$0"/"$1" mark the arguments
    latex: str
    prec: int
    needs: tuple[int, ...]
    guard: str = ""  # the guarded form, when it differs from the paper's formula
    uses_beta: bool = False

    def numpy_fn(self, numerics: Numerics) -> Callable[..., Array]:
        return self.numpy_safe if numerics == "safe" else self.numpy_paper


# ---------------------------------------------------------------------------------------------
# NumPy forms, written independently of the torch forms, which are tested against them.
# ---------------------------------------------------------------------------------------------


def _expit_scalar(v: float) -> float:
    try:
        return 1.0 / (1.0 + math.exp(-v))
    except OverflowError:  # exp(-v) beyond the float range: the value is 0
        return 0.0


_expit = np.vectorize(_expit_scalar, otypes=[np.float64])


def sigmoid(x: Array) -> Array:
    """σ(x) = 1/(1 + e^-x) with the C library's exp, as SciPy's ``expit`` computes it (the same
    bits, so fingerprints did not move when SciPy left this module)."""
    return np.asarray(_expit(x), dtype=np.float64)


def erf(x: Array) -> Array:
    """The error function, from SciPy (loaded on first use: it is slow to import, and only this
    op needs it)."""
    from scipy import special  # type: ignore[import-untyped]

    return np.asarray(special.erf(x), dtype=np.float64)


def _n_div_safe(a: Array, b: Array, beta: Array) -> Array:
    d = b + EPS
    d = np.where(d >= 0, np.maximum(d, EPS), np.minimum(d, -EPS))
    return np.clip(a / d, -GROWTH_LIMIT, GROWTH_LIMIT)


def _n_beta(x: Array, beta: Array) -> Array:
    return np.zeros_like(x) + beta


def _unary(
    name: str,
    numpy_paper: UnaryFn,
    math_t: str,
    latex: str,
    prec: int,
    need: int,
    *,
    numpy_safe: UnaryFn | None = None,
    guard: str = "",
    uses_beta: bool = False,
) -> Op:
    return Op(
        name=name,
        arity=1,
        numpy_safe=numpy_safe or numpy_paper,
        numpy_paper=numpy_paper,
        math=math_t,
        latex=latex,
        prec=prec,
        needs=(need,),
        guard=guard,
        uses_beta=uses_beta,
    )


def _binary(
    name: str,
    numpy_paper: BinaryFn,
    math_t: str,
    latex: str,
    prec: int,
    needs: tuple[int, int],
    *,
    numpy_safe: BinaryFn | None = None,
    guard: str = "",
    uses_beta: bool = False,
) -> Op:
    return Op(
        name=name,
        arity=2,
        numpy_safe=numpy_safe or numpy_paper,
        numpy_paper=numpy_paper,
        math=math_t,
        latex=latex,
        prec=prec,
        needs=needs,
        guard=guard,
        uses_beta=uses_beta,
    )


G = GROWTH_LIMIT

UNARY_OPS: tuple[Op, ...] = (
    _unary("id", lambda x, b: x, "$0", "$0", PASS, PASS),
    _unary("neg", lambda x, b: -x, "-$0", "-$0", ADD, POW),
    _unary("abs", lambda x, b: np.abs(x), "|$0|", r"\left|$0\right|", ATOM, 0),
    _unary("square", lambda x, b: np.square(x), "$0²", "$0^{2}", POW, ATOM,
           numpy_safe=lambda x, b: np.square(np.clip(x, -SQUARE_CLAMP, SQUARE_CLAMP)),
           guard="clip(x, ±1e4)²"),
    _unary("cube", lambda x, b: x**3, "$0³", "$0^{3}", POW, ATOM,
           numpy_safe=lambda x, b: np.power(np.clip(x, -CUBE_CLAMP, CUBE_CLAMP), 3),
           guard="clip(x, ±464.16)³"),
    _unary("sqrt", lambda x, b: np.sqrt(x), "√$0", r"\sqrt{$0}", POW, ATOM,
           numpy_safe=lambda x, b: np.sqrt(np.maximum(x, 0.0) + EPS),
           guard="√(max(x, 0) + ε)"),
    _unary("mul_beta", lambda x, b: b * x, "β·$0", r"\beta $0", MUL, POW, uses_beta=True),
    _unary("add_beta", lambda x, b: x + b, "$0 + β", r"$0 + \beta", ADD, ADD, uses_beta=True),
    _unary("log_abs", lambda x, b: np.log(np.abs(x) + EPS),
           "log(|$0| + ε)", r"\log\left(\left|$0\right| + \epsilon\right)", ATOM, 0),
    _unary("exp", lambda x, b: np.exp(x), "exp($0)", r"e^{$0}", ATOM, 0,
           numpy_safe=lambda x, b: np.exp(np.minimum(x, EXP_CLAMP)),
           guard="exp(min(x, 18.42))"),
    _unary("sin", lambda x, b: np.sin(x), "sin($0)", r"\sin\left($0\right)", ATOM, 0),
    _unary("cos", lambda x, b: np.cos(x), "cos($0)", r"\cos\left($0\right)", ATOM, 0),
    _unary("sinh", lambda x, b: np.sinh(x), "sinh($0)", r"\sinh\left($0\right)", ATOM, 0,
           numpy_safe=lambda x, b: np.sinh(np.clip(x, -SINH_CLAMP, SINH_CLAMP)),
           guard="sinh(clip(x, ±19.11))"),
    _unary("cosh", lambda x, b: np.cosh(x), "cosh($0)", r"\cosh\left($0\right)", ATOM, 0,
           numpy_safe=lambda x, b: np.cosh(np.clip(x, -SINH_CLAMP, SINH_CLAMP)),
           guard="cosh(clip(x, ±19.11))"),
    _unary("tanh", lambda x, b: np.tanh(x), "tanh($0)", r"\tanh\left($0\right)", ATOM, 0),
    _unary("asinh", lambda x, b: np.arcsinh(x), "sinh⁻¹($0)", r"\sinh^{-1}\left($0\right)",
           ATOM, 0),
    _unary("atan", lambda x, b: np.arctan(x), "tan⁻¹($0)", r"\tan^{-1}\left($0\right)", ATOM, 0),
    _unary("sinc", lambda x, b: np.sinc(x / np.pi), "sinc($0)",
           r"\operatorname{sinc}\left($0\right)", ATOM, 0),
    _unary("relu", lambda x, b: np.maximum(x, 0.0), "max($0, 0)", r"\max\left($0, 0\right)",
           ATOM, 0),
    _unary("min0", lambda x, b: np.minimum(x, 0.0), "min($0, 0)", r"\min\left($0, 0\right)",
           ATOM, 0),
    _unary("sigmoid", lambda x, b: sigmoid(x), "σ($0)", r"\sigma\left($0\right)", ATOM, 0),
    _unary("softplus", lambda x, b: np.logaddexp(0.0, x),
           "log(1 + exp($0))", r"\log\left(1 + e^{$0}\right)", ATOM, 0),
    _unary("gauss", lambda x, b: np.exp(-np.square(x)), "exp(-$0²)", r"e^{-$0^{2}}", ATOM, ATOM),
    _unary("erf", lambda x, b: erf(x), "erf($0)", r"\operatorname{erf}\left($0\right)", ATOM, 0),
    _unary("beta", _n_beta, "β", r"\beta", ATOM, 0, uses_beta=True),
)

BINARY_OPS: tuple[Op, ...] = (
    _binary("add", lambda a, c, b: a + c, "$0 + $1", "$0 + $1", ADD, (ADD, MUL)),
    _binary("mul", lambda a, c, b: a * c, "$0·$1", r"$0 \cdot $1", MUL, (MUL, POW),
            numpy_safe=lambda a, c, b: np.clip(a * c, -G, G),
            guard="clip(x1·x2, ±1e8)"),
    _binary("sub", lambda a, c, b: a - c, "$0 - $1", "$0 - $1", ADD, (ADD, MUL)),
    _binary("div", lambda a, c, b: a / (c + EPS),
            "$0/($1 + ε)", r"\frac{$0}{$1 + \epsilon}", MUL, (POW, ADD),
            numpy_safe=_n_div_safe,
            guard="clip(x1/d, ±1e8) with d = x2+ε pushed out of (−ε, ε) to ±ε"),
    _binary("max", lambda a, c, b: np.maximum(a, c),
            "max($0, $1)", r"\max\left($0, $1\right)", ATOM, (0, 0)),
    _binary("min", lambda a, c, b: np.minimum(a, c),
            "min($0, $1)", r"\min\left($0, $1\right)", ATOM, (0, 0)),
    _binary("sigmul", lambda a, c, b: sigmoid(a) * c,
            "σ($0)·$1", r"\sigma\left($0\right) \cdot $1", MUL, (0, POW)),
    _binary("gauss_dist", lambda a, c, b: np.exp(-b * np.square(a - c)),
            "exp(-β·($0 - $1)²)", r"e^{-\beta \left($0 - $1\right)^{2}}", ATOM, (ADD, MUL),
            numpy_safe=lambda a, c, b: np.exp(np.minimum(-b * np.square(a - c), EXP_CLAMP)),
            guard="exp(min(−β(x1−x2)², 18.42))", uses_beta=True),
    _binary("laplace_dist", lambda a, c, b: np.exp(-b * np.abs(a - c)),
            "exp(-β·|$0 - $1|)", r"e^{-\beta \left|$0 - $1\right|}", ATOM, (ADD, MUL),
            numpy_safe=lambda a, c, b: np.exp(np.minimum(-b * np.abs(a - c), EXP_CLAMP)),
            guard="exp(min(−β|x1−x2|, 18.42))", uses_beta=True),
    _binary("beta_mix", lambda a, c, b: b * a + (1 - b) * c,
            "β·$0 + (1 - β)·$1", r"\beta $0 + \left(1 - \beta\right) $1", ADD, (POW, POW),
            uses_beta=True),
)

UNARY: dict[str, Op] = {op.name: op for op in UNARY_OPS}
BINARY: dict[str, Op] = {op.name: op for op in BINARY_OPS}
UNARY_NAMES: tuple[str, ...] = tuple(UNARY)
BINARY_NAMES: tuple[str, ...] = tuple(BINARY)
