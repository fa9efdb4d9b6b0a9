"""The torch modules of activation sites: an expression compiled with β as a trainable parameter,
and the built-ins the grammar cannot express.

The tree is flattened once into a straight-line program over its distinct units (canonical
order), so ``forward`` is a fixed sequence of elementwise ops: no data-dependent control flow,
which ``torch.compile`` fuses into one kernel without graph breaks. β is per channel (dim 1 of
the input) by default, or a scalar; one β is shared by every op of the expression that reads it.
Under autocast β is cast to the input's dtype so a bf16 activation stays bf16.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from orchestrator.space.activation import (
    ELU_ALPHA,
    LRELU_SLOPE,
    PRELU_INIT,
    ActivationRef,
    BetaMode,
    Builtin,
)
from orchestrator.space.expr import Expr, Node, X, to_text, units
from orchestrator.space.ops import Numerics
from orchestrator.space.torch_ops import BINARY_TORCH, UNARY_TORCH

__all__ = [
    "Activation", "BetaMode", "BuiltinActivation", "build_activation", "build_site",
    "is_activation_site",
]


@dataclass(frozen=True)
class _Step:
    unary1: Callable[[Tensor, Tensor], Tensor]
    input1: int  # index into the value list: 0 is x, i + 1 is unit i
    unary2: Callable[[Tensor, Tensor], Tensor]
    input2: int
    binary: Callable[[Tensor, Tensor, Tensor], Tensor]


def _program(expr: Expr, numerics: Numerics) -> tuple[_Step, ...]:
    order = units(expr)
    index = {u: i + 1 for i, u in enumerate(order)}

    def ref(node: Node) -> int:
        return 0 if node == X else index[node]

    return tuple(
        _Step(
            UNARY_TORCH[u.unary1].fn(numerics),
            ref(u.input1),
            UNARY_TORCH[u.unary2].fn(numerics),
            ref(u.input2),
            BINARY_TORCH[u.binary].fn(numerics),
        )
        for u in order
    )


class Activation(nn.Module):
    """A searched activation function; ``beta`` has shape ``(channels,)`` or ``(1,)``."""

    def __init__(
        self,
        expr: Expr,
        channels: int | None = None,
        beta_mode: BetaMode = "channel",
        beta_init: float = 1.0,
        numerics: Numerics = "safe",
    ) -> None:
        super().__init__()
        if beta_mode not in ("channel", "scalar"):
            raise ValueError(f"beta_mode must be 'channel' or 'scalar'; got {beta_mode!r}")
        if beta_mode == "channel" and channels is None:
            raise ValueError("beta_mode='channel' needs the number of channels of the site")
        self.expression = to_text(expr)
        self.numerics = numerics
        self.beta_mode = beta_mode
        size = channels if beta_mode == "channel" and channels is not None else 1
        self.beta = nn.Parameter(torch.full((size,), float(beta_init)))
        self._steps = _program(expr, numerics)

    def _beta_for(self, x: Tensor) -> Tensor:
        beta = self.beta.to(x.dtype)
        if self.beta_mode == "channel" and x.dim() > 1:
            return beta.view(1, -1, *([1] * (x.dim() - 2)))
        return beta.view(*([1] * x.dim())) if self.beta_mode == "scalar" else beta

    def forward(self, x: Tensor) -> Tensor:
        beta = self._beta_for(x)
        values = [x]
        for s in self._steps:
            values.append(
                s.binary(s.unary1(values[s.input1], beta), s.unary2(values[s.input2], beta), beta)
            )
        return values[-1]

    def extra_repr(self) -> str:
        return f"{self.expression}, beta={self.beta_mode}[{self.beta.numel()}], {self.numerics}"


def build_activation(
    expr: Expr,
    channels: int | None = None,
    beta_mode: BetaMode = "channel",
    beta_init: float = 1.0,
    numerics: Numerics = "safe",
) -> Activation:
    """The module for one activation site; pass the site's channel count for per-channel β."""
    return Activation(expr, channels, beta_mode, beta_init, numerics)


class BuiltinActivation(nn.Module):
    """One site of a built-in activation; PReLU owns a per-channel α (one α without channels)."""

    def __init__(self, builtin: Builtin, channels: int | None = None) -> None:
        super().__init__()
        self.builtin = builtin
        self.alpha: nn.Parameter | None = None
        if builtin.name == "prelu":
            self.alpha = nn.Parameter(torch.full((channels or 1,), PRELU_INIT))

    def forward(self, x: Tensor) -> Tensor:
        name = self.builtin.name
        if name == "lrelu":
            return F.leaky_relu(x, LRELU_SLOPE)
        if name == "prelu":
            assert self.alpha is not None
            return F.prelu(x, self.alpha.to(x.dtype))
        if name == "elu":
            return F.elu(x, ELU_ALPHA)
        if name == "selu":
            return F.selu(x)
        return F.gelu(x)

    def extra_repr(self) -> str:
        alpha = "" if self.alpha is None else f", alpha[{self.alpha.numel()}]"
        return f"{self.builtin}{alpha}"


def build_site(
    a: ActivationRef,
    channels: int | None = None,
    beta_mode: BetaMode = "channel",
    beta_init: float = 1.0,
    numerics: Numerics = "safe",
) -> nn.Module:
    """The module of one activation site (the single place every site is built)."""
    if isinstance(a, Builtin):
        return BuiltinActivation(a, channels)
    return Activation(a, channels, beta_mode, beta_init, numerics)


def is_activation_site(m: nn.Module) -> bool:
    """Whether ``m`` is an activation site; its parameters (β, PReLU's α) get no weight decay."""
    return isinstance(m, (Activation, BuiltinActivation))
