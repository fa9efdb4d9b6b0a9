"""The paper's search space: ops, expression trees, grammar, fingerprint and screen, in NumPy.

Nothing here imports torch; the torch forms of the ops (``torch_ops``), the module builder
(``module``) and the plots (``plot``) are imported by the code that trains or draws.
"""

from orchestrator.space.expr import (
    Expr,
    Unit,
    X,
    num_units,
    to_latex,
    to_math,
    to_text,
    units,
)
from orchestrator.space.grammar import SearchSpace, SpaceError
from orchestrator.space.ops import (
    BINARY,
    BINARY_NAMES,
    EPS,
    NUMERICS,
    UNARY,
    UNARY_NAMES,
    Numerics,
)
from orchestrator.space.parse import ParseError, parse
from orchestrator.space.tokens import TokenError, decode, encode, is_canonical

__all__ = [
    "BINARY",
    "BINARY_NAMES",
    "EPS",
    "NUMERICS",
    "UNARY",
    "UNARY_NAMES",
    "Expr",
    "Numerics",
    "ParseError",
    "SearchSpace",
    "SpaceError",
    "TokenError",
    "Unit",
    "X",
    "decode",
    "encode",
    "is_canonical",
    "num_units",
    "parse",
    "to_latex",
    "to_math",
    "to_text",
    "units",
]
