"""What a child can train: a grammar expression, or a built-in the grammar cannot express.

The paper validates found functions against nine baselines (docs/benchmark.md). Four of them are
grammar expressions exactly: ReLU ``max(relu(x), relu(x))``, Softplus
``max(softplus(x), softplus(x))``, Swish-1 ``sigmul(id(x), id(x))`` and Swish
``sigmul(mul_beta(x), id(x))``. The other five need constants or parameters the grammar lacks,
so they are built-ins, written ``builtin:<name>`` wherever an expression is accepted:

| name | function | parameters |
|---|---|---|
| ``builtin:lrelu`` | ``max(x, 0.01x)`` | none |
| ``builtin:prelu`` | ``max(x, 0) + α·min(x, 0)`` | α per channel, initialised to 0.25 |
| ``builtin:elu`` | ``x`` if ``x > 0`` else ``exp(x) − 1`` (α = 1) | none |
| ``builtin:selu`` | ``λ·(x`` if ``x > 0`` else ``α(exp(x) − 1))`` | none (α ≈ 1.6733, λ ≈ 1.0507) |
| ``builtin:gelu`` | ``x·Φ(x)`` (exact, with erf) | none |

A built-in's fingerprint hashes its name: built-ins never collide with grammar functions or
with each other, and the key is stable across versions.

This module is what the child's configuration reads, so it imports no torch; the modules that
train an activation are built by ``orchestrator.space.module``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

from orchestrator.echo import clip_repr
from orchestrator.space.expr import Expr, to_math, to_text
from orchestrator.space.fingerprint import fingerprint
from orchestrator.space.ops import Numerics
from orchestrator.space.parse import ParseError, parse

BUILTIN_PREFIX = "builtin:"
LRELU_SLOPE = 0.01
PRELU_INIT = 0.25
ELU_ALPHA = 1.0

BUILTIN_MATH: dict[str, str] = {
    "lrelu": "LReLU(x) = max(x, 0.01x)",
    "prelu": "PReLU(x) = max(x, 0) + α·min(x, 0)",
    "elu": "ELU(x)",
    "selu": "SELU(x)",
    "gelu": "GELU(x) = x·Φ(x)",
}
BUILTIN_NAMES: tuple[str, ...] = tuple(BUILTIN_MATH)

BetaMode = Literal["channel", "scalar"]
"""β of a searched activation: one per channel of its site, or one for the site."""


@dataclass(frozen=True)
class Builtin:
    """A built-in activation, by name (one of ``BUILTIN_NAMES``)."""

    name: str

    def __post_init__(self) -> None:
        if self.name not in BUILTIN_MATH:
            raise ValueError(f"unknown built-in activation {self.name!r}; "
                             f"allowed: {', '.join(BUILTIN_NAMES)}")

    def __str__(self) -> str:
        return BUILTIN_PREFIX + self.name


ActivationRef = Expr | Builtin
"""An activation as a child trains it."""


def parse_activation(text: str) -> ActivationRef:
    """``builtin:<name>`` or a canonical expression; raises ParseError naming the problem."""
    stripped = text.strip()
    if stripped.startswith(BUILTIN_PREFIX):
        name = stripped[len(BUILTIN_PREFIX):].strip().lower()
        if name not in BUILTIN_MATH:
            raise ParseError(f"unknown built-in activation {clip_repr(name)}; allowed: "
                             f"{', '.join(BUILTIN_PREFIX + n for n in BUILTIN_NAMES)}",
                             text, text.index(BUILTIN_PREFIX) + len(BUILTIN_PREFIX), name)
        return Builtin(name)
    return parse(text)


def activation_text(a: ActivationRef) -> str:
    return str(a) if isinstance(a, Builtin) else to_text(a)


def activation_math(a: ActivationRef) -> str:
    return BUILTIN_MATH[a.name] if isinstance(a, Builtin) else to_math(a)


def activation_fingerprint(a: ActivationRef, numerics: Numerics = "safe") -> str:
    """The function's fingerprint; for a built-in, a hash of its name."""
    if isinstance(a, Builtin):
        return hashlib.sha256(str(a).encode()).hexdigest()[:16]
    return fingerprint(a, numerics)
