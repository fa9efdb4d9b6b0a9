"""Activation expressions as trees of core units ``b(u1(in1), u2(in2))``.

An input is the pre-activation ``x`` or an earlier unit. Units are frozen dataclasses, so equal
subtrees are equal values: a unit used twice (``max(atan(u), atan(u))``) is one unit, printed twice.

Canonical text form: ``binary(unary(input), unary(input))``, e.g. Swish is
``sigmul(mul_beta(x), id(x))``. ``to_text(parse(s)) == s`` for every canonical string.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from orchestrator.space.ops import ATOM, BINARY, PASS, UNARY, Op

X: Final = "x"
"""The leaf: the pre-activation."""


@dataclass(frozen=True, slots=True)
class Unit:
    """One core unit ``binary(unary1(input1), unary2(input2))``."""

    binary: str
    unary1: str
    input1: Node
    unary2: str
    input2: Node

    def __str__(self) -> str:
        return to_text(self)


Node = Literal["x"] | Unit
Expr = Unit
"""An activation function: the root unit of its tree."""


def to_text(node: Node) -> str:
    """The canonical text form."""
    if node == X:
        return X
    assert isinstance(node, Unit)
    return (
        f"{node.binary}({node.unary1}({to_text(node.input1)}), "
        f"{node.unary2}({to_text(node.input2)}))"
    )


def units(expr: Expr) -> list[Unit]:
    """The distinct units of ``expr`` in canonical order: post-order, input1 before input2.

    This order is the token order: unit k may only read ``x`` and units < k, and the root is last.
    """
    order: list[Unit] = []
    seen: set[Unit] = set()

    def visit(node: Node) -> None:
        if node == X or node in seen:
            return
        assert isinstance(node, Unit)
        visit(node.input1)
        visit(node.input2)
        seen.add(node)
        order.append(node)

    visit(expr)
    return order


def num_units(expr: Expr) -> int:
    return len(units(expr))


def uses_beta(expr: Expr) -> bool:
    """Whether any op of ``expr`` reads β (so β is a parameter worth training)."""
    return any(
        UNARY[u.unary1].uses_beta or UNARY[u.unary2].uses_beta or BINARY[u.binary].uses_beta
        for u in units(expr)
    )


def _render(node: Node, latex: bool) -> tuple[str, int]:
    """Render with the ops' templates; returns (text, precedence of the result)."""
    if node == X:
        return X, ATOM
    assert isinstance(node, Unit)
    a = _apply(UNARY[node.unary1], [_render(node.input1, latex)], latex)
    b = _apply(UNARY[node.unary2], [_render(node.input2, latex)], latex)
    if node.binary in ("max", "min") and a == b:  # max(a, a) = a: how the paper writes (tan⁻¹x)²
        return a
    return _apply(BINARY[node.binary], [a, b], latex)


def _apply(op: Op, args: list[tuple[str, int]], latex: bool) -> tuple[str, int]:
    template = op.latex if latex else op.math
    if op.prec == PASS:  # identity: the argument as it is
        return args[0]
    for i, ((text, prec), need) in enumerate(zip(args, op.needs, strict=True)):
        if prec < need:
            text = rf"\left({text}\right)" if latex else f"({text})"
        template = template.replace(f"${i}", text)
    return template, op.prec


def to_math(expr: Expr) -> str:
    """Readable math, e.g. ``σ(β·x)·x`` for Swish."""
    return _render(expr, latex=False)[0]


def to_latex(expr: Expr) -> str:
    return _render(expr, latex=True)[0]
