"""How a function is shown to people in MLflow: a short run name, its structure as flat params,
and whether it has a β worth showing.

MLflow's SQL stores keep a run name in a 250-character column and the runs table cuts long names,
so a run name is the trial index and the readable math, shortened with an ellipsis
(``RUN_NAME_LIMIT``); the full expression stays in the ``actsearch.expression`` tag.
The structure params (``unit1.binary``, ``unit1.unary1``, ``unit1.unary2``, ``unit1.inputs``,
... with the root unit last, as in the token order) are what parallel coordinates and group-by
in the compare view can use: they are equal for functions built alike.
"""

from __future__ import annotations

from typing import Final

from orchestrator.space.activation import ActivationRef, Builtin, activation_math
from orchestrator.space.expr import Expr, Node, Unit, X, units, uses_beta

RUN_NAME_LIMIT: Final = 60
"""Characters of a run name: short enough for the runs table (MLflow stores up to 250)."""


def shorten(text: str, limit: int = RUN_NAME_LIMIT) -> str:
    """``text`` cut to ``limit`` characters, an ellipsis marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def trial_run_name(index: int, activation: ActivationRef) -> str:
    """``t7 · x·σ(β·x)``: the trial index and the function in math form, short."""
    return shorten(f"t{index} · {activation_math(activation)}")


def has_beta(activation: ActivationRef) -> bool:
    """Whether the function reads a trainable β (built-ins do not)."""
    return not isinstance(activation, Builtin) and uses_beta(activation)


def structure_params(expr: Expr) -> dict[str, str]:
    """Each unit's ops and inputs as params (``unit<k>.binary`` ...; inputs ``x`` or ``u<j>``)."""
    order = units(expr)
    where = {u: k for k, u in enumerate(order, 1)}

    def name(node: Node) -> str:
        return f"u{where[node]}" if isinstance(node, Unit) else X

    out = {"units": str(len(order))}
    for k, u in enumerate(order, 1):
        out |= {f"unit{k}.binary": u.binary, f"unit{k}.unary1": u.unary1,
                f"unit{k}.unary2": u.unary2, f"unit{k}.inputs": f"{name(u.input1)},{name(u.input2)}"}
    return out
