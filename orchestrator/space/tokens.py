"""Token sequences, the controller's view of an expression.

Per core unit, five tokens in this order: ``input1, input2, unary1, unary2, binary``.
An input token is 0 for ``x`` or ``i + 1`` for unit ``i`` (an earlier unit); unary and binary
tokens index ``UNARY_NAMES`` and ``BINARY_NAMES``. The last unit is the activation.

``encode`` writes the units in canonical order (see ``expr.units``), so
``decode(encode(e)) == e`` for every tree and ``encode(decode(t)) == t`` for every canonical
sequence; ``SearchSpace`` only lets the controller emit sequences whose every unit is read by a
later one, and for one or two units every such sequence is canonical.
"""

from __future__ import annotations

from collections.abc import Sequence

from orchestrator.space.expr import Expr, Node, Unit, X, units
from orchestrator.space.ops import BINARY_NAMES, UNARY_NAMES

TOKENS_PER_UNIT = 5
SLOT_KINDS: tuple[str, ...] = ("input", "input", "unary", "unary", "binary")


class TokenError(ValueError):
    """A token sequence that does not describe an expression."""


def encode(expr: Expr) -> tuple[int, ...]:
    order = units(expr)
    index = {u: i for i, u in enumerate(order)}

    def ref(node: Node) -> int:
        return 0 if node == X else index[node] + 1

    out: list[int] = []
    for u in order:
        out += [
            ref(u.input1),
            ref(u.input2),
            UNARY_NAMES.index(u.unary1),
            UNARY_NAMES.index(u.unary2),
            BINARY_NAMES.index(u.binary),
        ]
    return tuple(out)


def decode(tokens: Sequence[int]) -> Expr:
    """Build the tree of the last unit; raises TokenError on a malformed sequence."""
    if not tokens or len(tokens) % TOKENS_PER_UNIT:
        raise TokenError(
            f"a token sequence has 5 tokens per unit; got {len(tokens)} tokens"
        )
    built: list[Unit] = []
    for k in range(len(tokens) // TOKENS_PER_UNIT):
        i1, i2, u1, u2, b = (int(t) for t in tokens[k * 5 : k * 5 + 5])
        for pos, ref in ((k * 5, i1), (k * 5 + 1, i2)):
            if not 0 <= ref <= k:
                raise TokenError(
                    f"token {pos} (input of unit {k}) is {ref}; allowed 0 (x) to {k}"
                )
        for pos, t in ((k * 5 + 2, u1), (k * 5 + 3, u2)):
            if not 0 <= t < len(UNARY_NAMES):
                raise TokenError(f"token {pos} (unary) is {t}; allowed 0 to {len(UNARY_NAMES) - 1}")
        if not 0 <= b < len(BINARY_NAMES):
            raise TokenError(
                f"token {k * 5 + 4} (binary) is {b}; allowed 0 to {len(BINARY_NAMES) - 1}"
            )
        nodes: list[Node] = [X, *built]
        built.append(Unit(BINARY_NAMES[b], UNARY_NAMES[u1], nodes[i1], UNARY_NAMES[u2], nodes[i2]))
    return built[-1]


def is_canonical(tokens: Sequence[int]) -> bool:
    """Whether ``tokens`` is exactly the encoding of the tree it describes."""
    try:
        return encode(decode(tokens)) == tuple(int(t) for t in tokens)
    except TokenError:
        return False
