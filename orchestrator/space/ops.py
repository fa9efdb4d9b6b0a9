"""The paper's 25 unary and 10 binary functions: one row per op, every form of the op in its row.

Each op carries a torch implementation (the guarded ``safe`` form and the raw ``paper`` form), an
independent NumPy reference of both forms, a readable math template and a LaTeX template. β is a
trainable tensor broadcast against the input; ops that do not use it ignore it.

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
import torch
from scipy import special as sp
from torch import Tensor

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
    """One function of the search space, in every form the project needs."""

    name: str
    arity: int
    torch_safe: Callable[..., Tensor]
    torch_paper: Callable[..., Tensor]
    numpy_safe: Callable[..., np.ndarray]
    numpy_paper: Callable[..., np.ndarray]
    math: str  # "$0"/"$1" mark the arguments
    latex: str
    prec: int
    needs: tuple[int, ...]
    guard: str = ""  # the guarded form, when it differs from the paper's formula
    uses_beta: bool = False

    def torch_fn(self, numerics: Numerics) -> Callable[..., Tensor]:
        return self.torch_safe if numerics == "safe" else self.torch_paper

    def numpy_fn(self, numerics: Numerics) -> Callable[..., np.ndarray]:
        return self.numpy_safe if numerics == "safe" else self.numpy_paper


# ---------------------------------------------------------------------------------------------
# torch forms. Signatures: unary f(x, beta), binary f(a, b, beta); beta broadcasts against x.
# ---------------------------------------------------------------------------------------------


def _t_div_safe(a: Tensor, b: Tensor, beta: Tensor) -> Tensor:
    d = b + EPS
    d = torch.where(d >= 0, d.clamp(min=EPS), d.clamp(max=-EPS))
    return (a / d).clamp(-GROWTH_LIMIT, GROWTH_LIMIT)


def _t_gauss_dist_safe(a: Tensor, b: Tensor, beta: Tensor) -> Tensor:
    return torch.exp((-beta * torch.square(a - b)).clamp(max=EXP_CLAMP))


def _t_laplace_dist_safe(a: Tensor, b: Tensor, beta: Tensor) -> Tensor:
    return torch.exp((-beta * torch.abs(a - b)).clamp(max=EXP_CLAMP))


def _t_sinc(x: Tensor, beta: Tensor) -> Tensor:
    # torch.sinc is the normalised sin(pi t)/(pi t); the paper's sinc is sin(x)/x.
    return torch.sinc(x / math.pi)


def _t_beta(x: Tensor, beta: Tensor) -> Tensor:
    return torch.zeros_like(x) + beta


# ---------------------------------------------------------------------------------------------
# NumPy references: written independently of the torch forms, used to test them.
# ---------------------------------------------------------------------------------------------


def _n_div_safe(a: np.ndarray, b: np.ndarray, beta: np.ndarray) -> np.ndarray:
    d = b + EPS
    d = np.where(d >= 0, np.maximum(d, EPS), np.minimum(d, -EPS))
    return np.clip(a / d, -GROWTH_LIMIT, GROWTH_LIMIT)


def _n_beta(x: np.ndarray, beta: np.ndarray) -> np.ndarray:
    return np.zeros_like(x) + beta


def _unary(
    name: str,
    torch_paper: Callable[[Tensor, Tensor], Tensor],
    numpy_paper: Callable[[np.ndarray, np.ndarray], np.ndarray],
    math_t: str,
    latex: str,
    prec: int,
    need: int,
    *,
    torch_safe: Callable[[Tensor, Tensor], Tensor] | None = None,
    numpy_safe: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    guard: str = "",
    uses_beta: bool = False,
) -> Op:
    return Op(
        name=name,
        arity=1,
        torch_safe=torch_safe or torch_paper,
        torch_paper=torch_paper,
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
    torch_paper: Callable[[Tensor, Tensor, Tensor], Tensor],
    numpy_paper: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray],
    math_t: str,
    latex: str,
    prec: int,
    needs: tuple[int, int],
    *,
    torch_safe: Callable[[Tensor, Tensor, Tensor], Tensor] | None = None,
    numpy_safe: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] | None = None,
    guard: str = "",
    uses_beta: bool = False,
) -> Op:
    return Op(
        name=name,
        arity=2,
        torch_safe=torch_safe or torch_paper,
        torch_paper=torch_paper,
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
    _unary("id", lambda x, b: x, lambda x, b: x, "$0", "$0", PASS, PASS),
    _unary("neg", lambda x, b: -x, lambda x, b: -x, "-$0", "-$0", ADD, POW),
    _unary("abs", lambda x, b: torch.abs(x), lambda x, b: np.abs(x),
           "|$0|", r"\left|$0\right|", ATOM, 0),
    _unary("square", lambda x, b: torch.square(x), lambda x, b: np.square(x),
           "$0²", "$0^{2}", POW, ATOM,
           torch_safe=lambda x, b: torch.square(x.clamp(-SQUARE_CLAMP, SQUARE_CLAMP)),
           numpy_safe=lambda x, b: np.square(np.clip(x, -SQUARE_CLAMP, SQUARE_CLAMP)),
           guard="clip(x, ±1e4)²"),
    _unary("cube", lambda x, b: x * x * x, lambda x, b: x**3,
           "$0³", "$0^{3}", POW, ATOM,
           torch_safe=lambda x, b: torch.pow(x.clamp(-CUBE_CLAMP, CUBE_CLAMP), 3),
           numpy_safe=lambda x, b: np.power(np.clip(x, -CUBE_CLAMP, CUBE_CLAMP), 3),
           guard="clip(x, ±464.16)³"),
    _unary("sqrt", lambda x, b: torch.sqrt(x), lambda x, b: np.sqrt(x),
           "√$0", r"\sqrt{$0}", POW, ATOM,
           torch_safe=lambda x, b: torch.sqrt(x.clamp(min=0.0) + EPS),
           numpy_safe=lambda x, b: np.sqrt(np.maximum(x, 0.0) + EPS),
           guard="√(max(x, 0) + ε)"),
    _unary("mul_beta", lambda x, b: b * x, lambda x, b: b * x,
           "β·$0", r"\beta $0", MUL, POW, uses_beta=True),
    _unary("add_beta", lambda x, b: x + b, lambda x, b: x + b,
           "$0 + β", r"$0 + \beta", ADD, ADD, uses_beta=True),
    _unary("log_abs", lambda x, b: torch.log(torch.abs(x) + EPS),
           lambda x, b: np.log(np.abs(x) + EPS),
           "log(|$0| + ε)", r"\log\left(\left|$0\right| + \epsilon\right)", ATOM, 0),
    _unary("exp", lambda x, b: torch.exp(x), lambda x, b: np.exp(x),
           "exp($0)", r"e^{$0}", ATOM, 0,
           torch_safe=lambda x, b: torch.exp(x.clamp(max=EXP_CLAMP)),
           numpy_safe=lambda x, b: np.exp(np.minimum(x, EXP_CLAMP)),
           guard="exp(min(x, 18.42))"),
    _unary("sin", lambda x, b: torch.sin(x), lambda x, b: np.sin(x),
           "sin($0)", r"\sin\left($0\right)", ATOM, 0),
    _unary("cos", lambda x, b: torch.cos(x), lambda x, b: np.cos(x),
           "cos($0)", r"\cos\left($0\right)", ATOM, 0),
    _unary("sinh", lambda x, b: torch.sinh(x), lambda x, b: np.sinh(x),
           "sinh($0)", r"\sinh\left($0\right)", ATOM, 0,
           torch_safe=lambda x, b: torch.sinh(x.clamp(-SINH_CLAMP, SINH_CLAMP)),
           numpy_safe=lambda x, b: np.sinh(np.clip(x, -SINH_CLAMP, SINH_CLAMP)),
           guard="sinh(clip(x, ±19.11))"),
    _unary("cosh", lambda x, b: torch.cosh(x), lambda x, b: np.cosh(x),
           "cosh($0)", r"\cosh\left($0\right)", ATOM, 0,
           torch_safe=lambda x, b: torch.cosh(x.clamp(-SINH_CLAMP, SINH_CLAMP)),
           numpy_safe=lambda x, b: np.cosh(np.clip(x, -SINH_CLAMP, SINH_CLAMP)),
           guard="cosh(clip(x, ±19.11))"),
    _unary("tanh", lambda x, b: torch.tanh(x), lambda x, b: np.tanh(x),
           "tanh($0)", r"\tanh\left($0\right)", ATOM, 0),
    _unary("asinh", lambda x, b: torch.asinh(x), lambda x, b: np.arcsinh(x),
           "sinh⁻¹($0)", r"\sinh^{-1}\left($0\right)", ATOM, 0),
    _unary("atan", lambda x, b: torch.atan(x), lambda x, b: np.arctan(x),
           "tan⁻¹($0)", r"\tan^{-1}\left($0\right)", ATOM, 0),
    _unary("sinc", _t_sinc, lambda x, b: np.sinc(x / np.pi),
           "sinc($0)", r"\operatorname{sinc}\left($0\right)", ATOM, 0),
    _unary("relu", lambda x, b: torch.relu(x), lambda x, b: np.maximum(x, 0.0),
           "max($0, 0)", r"\max\left($0, 0\right)", ATOM, 0),
    _unary("min0", lambda x, b: torch.clamp(x, max=0.0), lambda x, b: np.minimum(x, 0.0),
           "min($0, 0)", r"\min\left($0, 0\right)", ATOM, 0),
    _unary("sigmoid", lambda x, b: torch.sigmoid(x), lambda x, b: sp.expit(x),
           "σ($0)", r"\sigma\left($0\right)", ATOM, 0),
    _unary("softplus", lambda x, b: torch.nn.functional.softplus(x),
           lambda x, b: np.logaddexp(0.0, x),
           "log(1 + exp($0))", r"\log\left(1 + e^{$0}\right)", ATOM, 0),
    _unary("gauss", lambda x, b: torch.exp(-torch.square(x)), lambda x, b: np.exp(-np.square(x)),
           "exp(-$0²)", r"e^{-$0^{2}}", ATOM, ATOM),
    _unary("erf", lambda x, b: torch.erf(x), lambda x, b: sp.erf(x),
           "erf($0)", r"\operatorname{erf}\left($0\right)", ATOM, 0),
    _unary("beta", _t_beta, _n_beta, "β", r"\beta", ATOM, 0, uses_beta=True),
)

BINARY_OPS: tuple[Op, ...] = (
    _binary("add", lambda a, c, b: a + c, lambda a, c, b: a + c,
            "$0 + $1", "$0 + $1", ADD, (ADD, MUL)),
    _binary("mul", lambda a, c, b: a * c, lambda a, c, b: a * c,
            "$0·$1", r"$0 \cdot $1", MUL, (MUL, POW),
            torch_safe=lambda a, c, b: (a * c).clamp(-G, G),
            numpy_safe=lambda a, c, b: np.clip(a * c, -G, G),
            guard="clip(x1·x2, ±1e8)"),
    _binary("sub", lambda a, c, b: a - c, lambda a, c, b: a - c,
            "$0 - $1", "$0 - $1", ADD, (ADD, MUL)),
    _binary("div", lambda a, c, b: a / (c + EPS), lambda a, c, b: a / (c + EPS),
            "$0/($1 + ε)", r"\frac{$0}{$1 + \epsilon}", MUL, (POW, ADD),
            torch_safe=_t_div_safe, numpy_safe=_n_div_safe,
            guard="clip(x1/d, ±1e8) with d = x2+ε pushed out of (−ε, ε) to ±ε"),
    _binary("max", lambda a, c, b: torch.maximum(a, c), lambda a, c, b: np.maximum(a, c),
            "max($0, $1)", r"\max\left($0, $1\right)", ATOM, (0, 0)),
    _binary("min", lambda a, c, b: torch.minimum(a, c), lambda a, c, b: np.minimum(a, c),
            "min($0, $1)", r"\min\left($0, $1\right)", ATOM, (0, 0)),
    _binary("sigmul", lambda a, c, b: torch.sigmoid(a) * c, lambda a, c, b: sp.expit(a) * c,
            "σ($0)·$1", r"\sigma\left($0\right) \cdot $1", MUL, (0, POW)),
    _binary("gauss_dist", lambda a, c, b: torch.exp(-b * torch.square(a - c)),
            lambda a, c, b: np.exp(-b * np.square(a - c)),
            "exp(-β·($0 - $1)²)", r"e^{-\beta \left($0 - $1\right)^{2}}", ATOM, (ADD, MUL),
            torch_safe=_t_gauss_dist_safe,
            numpy_safe=lambda a, c, b: np.exp(np.minimum(-b * np.square(a - c), EXP_CLAMP)),
            guard="exp(min(−β(x1−x2)², 18.42))", uses_beta=True),
    _binary("laplace_dist", lambda a, c, b: torch.exp(-b * torch.abs(a - c)),
            lambda a, c, b: np.exp(-b * np.abs(a - c)),
            "exp(-β·|$0 - $1|)", r"e^{-\beta \left|$0 - $1\right|}", ATOM, (ADD, MUL),
            torch_safe=_t_laplace_dist_safe,
            numpy_safe=lambda a, c, b: np.exp(np.minimum(-b * np.abs(a - c), EXP_CLAMP)),
            guard="exp(min(−β|x1−x2|, 18.42))", uses_beta=True),
    _binary("beta_mix", lambda a, c, b: b * a + (1 - b) * c, lambda a, c, b: b * a + (1 - b) * c,
            "β·$0 + (1 - β)·$1", r"\beta $0 + \left(1 - \beta\right) $1", ADD, (POW, POW),
            uses_beta=True),
)

UNARY: dict[str, Op] = {op.name: op for op in UNARY_OPS}
BINARY: dict[str, Op] = {op.name: op for op in BINARY_OPS}
UNARY_NAMES: tuple[str, ...] = tuple(UNARY)
BINARY_NAMES: tuple[str, ...] = tuple(BINARY)
