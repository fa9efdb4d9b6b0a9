"""The paper's search space: ops, expression trees, grammar, fingerprint, screen, torch builder."""

from orchestrator.space.expr import X, Expr, Unit, num_units, to_latex, to_math, to_text, units
from orchestrator.space.grammar import SearchSpace, SpaceError
from orchestrator.space.ops import BINARY, BINARY_NAMES, EPS, NUMERICS, UNARY, UNARY_NAMES, Numerics
from orchestrator.space.parse import ParseError, parse
from orchestrator.space.tokens import TokenError, decode, encode, is_canonical

__all__ = [
    "BINARY", "BINARY_NAMES", "EPS", "NUMERICS", "UNARY", "UNARY_NAMES", "X",
    "Expr", "Numerics", "ParseError", "SearchSpace", "SpaceError", "TokenError", "Unit",
    "decode", "encode", "is_canonical", "num_units", "parse", "to_latex", "to_math",
    "to_text", "units",
]
