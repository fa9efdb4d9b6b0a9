"""The torch forms of the ops of ``orchestrator.space.ops``, keyed by op name: what training runs.

Signatures: unary ``f(x, beta)``, binary ``f(a, b, beta)``; β is a trainable tensor broadcast
against x. Each form computes the same function as the op's NumPy form (tests hold them to
1e-10); the guards, clamps and ε are the ones ``ops`` defines.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from orchestrator.space.ops import (
    BINARY_NAMES,
    CUBE_CLAMP,
    EPS,
    EXP_CLAMP,
    GROWTH_LIMIT,
    SINH_CLAMP,
    SQUARE_CLAMP,
    UNARY_NAMES,
    Numerics,
)


@dataclass(frozen=True)
class TorchForms:
    """The guarded (``safe``) and raw (``paper``) torch form of one op."""

    safe: Callable[..., Tensor]
    paper: Callable[..., Tensor]

    def fn(self, numerics: Numerics) -> Callable[..., Tensor]:
        return self.safe if numerics == "safe" else self.paper


def _forms(paper: Callable[..., Tensor], safe: Callable[..., Tensor] | None = None) -> TorchForms:
    return TorchForms(safe=safe or paper, paper=paper)


def _div_safe(a: Tensor, b: Tensor, beta: Tensor) -> Tensor:
    d = b + EPS
    d = torch.where(d >= 0, d.clamp(min=EPS), d.clamp(max=-EPS))
    return (a / d).clamp(-GROWTH_LIMIT, GROWTH_LIMIT)


def _gauss_dist_safe(a: Tensor, b: Tensor, beta: Tensor) -> Tensor:
    return torch.exp((-beta * torch.square(a - b)).clamp(max=EXP_CLAMP))


def _laplace_dist_safe(a: Tensor, b: Tensor, beta: Tensor) -> Tensor:
    return torch.exp((-beta * torch.abs(a - b)).clamp(max=EXP_CLAMP))


def _sinc(x: Tensor, beta: Tensor) -> Tensor:
    # torch.sinc is the normalised sin(pi t)/(pi t); the paper's sinc is sin(x)/x.
    return torch.sinc(x / math.pi)


def _beta(x: Tensor, beta: Tensor) -> Tensor:
    return torch.zeros_like(x) + beta


G = GROWTH_LIMIT

UNARY_TORCH: dict[str, TorchForms] = {
    "id": _forms(lambda x, b: x),
    "neg": _forms(lambda x, b: -x),
    "abs": _forms(lambda x, b: torch.abs(x)),
    "square": _forms(lambda x, b: torch.square(x),
                     lambda x, b: torch.square(x.clamp(-SQUARE_CLAMP, SQUARE_CLAMP))),
    "cube": _forms(lambda x, b: x * x * x,
                   lambda x, b: torch.pow(x.clamp(-CUBE_CLAMP, CUBE_CLAMP), 3)),
    "sqrt": _forms(lambda x, b: torch.sqrt(x), lambda x, b: torch.sqrt(x.clamp(min=0.0) + EPS)),
    "mul_beta": _forms(lambda x, b: b * x),
    "add_beta": _forms(lambda x, b: x + b),
    "log_abs": _forms(lambda x, b: torch.log(torch.abs(x) + EPS)),
    "exp": _forms(lambda x, b: torch.exp(x), lambda x, b: torch.exp(x.clamp(max=EXP_CLAMP))),
    "sin": _forms(lambda x, b: torch.sin(x)),
    "cos": _forms(lambda x, b: torch.cos(x)),
    "sinh": _forms(lambda x, b: torch.sinh(x),
                   lambda x, b: torch.sinh(x.clamp(-SINH_CLAMP, SINH_CLAMP))),
    "cosh": _forms(lambda x, b: torch.cosh(x),
                   lambda x, b: torch.cosh(x.clamp(-SINH_CLAMP, SINH_CLAMP))),
    "tanh": _forms(lambda x, b: torch.tanh(x)),
    "asinh": _forms(lambda x, b: torch.asinh(x)),
    "atan": _forms(lambda x, b: torch.atan(x)),
    "sinc": _forms(_sinc),
    "relu": _forms(lambda x, b: torch.relu(x)),
    "min0": _forms(lambda x, b: torch.clamp(x, max=0.0)),
    "sigmoid": _forms(lambda x, b: torch.sigmoid(x)),
    "softplus": _forms(lambda x, b: torch.nn.functional.softplus(x)),
    "gauss": _forms(lambda x, b: torch.exp(-torch.square(x))),
    "erf": _forms(lambda x, b: torch.erf(x)),
    "beta": _forms(_beta),
}

BINARY_TORCH: dict[str, TorchForms] = {
    "add": _forms(lambda a, c, b: a + c),
    "mul": _forms(lambda a, c, b: a * c, lambda a, c, b: (a * c).clamp(-G, G)),
    "sub": _forms(lambda a, c, b: a - c),
    "div": _forms(lambda a, c, b: a / (c + EPS), _div_safe),
    "max": _forms(lambda a, c, b: torch.maximum(a, c)),
    "min": _forms(lambda a, c, b: torch.minimum(a, c)),
    "sigmul": _forms(lambda a, c, b: torch.sigmoid(a) * c),
    "gauss_dist": _forms(lambda a, c, b: torch.exp(-b * torch.square(a - c)), _gauss_dist_safe),
    "laplace_dist": _forms(lambda a, c, b: torch.exp(-b * torch.abs(a - c)), _laplace_dist_safe),
    "beta_mix": _forms(lambda a, c, b: b * a + (1 - b) * c),
}

assert tuple(UNARY_TORCH) == UNARY_NAMES and tuple(BINARY_TORCH) == BINARY_NAMES
