"""Parse the canonical text form into a tree. A small recursive-descent parser: never ``eval``.

Grammar::

    expr  := unit
    unit  := BINARY "(" UNARY "(" input ")" "," UNARY "(" input ")" ")"
    input := "x" | unit

Whitespace between tokens is ignored; printing gives the canonical spacing back.

Limits: an expression is at most ``MAX_LENGTH`` characters and nests core units at most
``MAX_DEPTH`` deep (a search space has at most 6 units; hand-written expressions get room to
spare). Longer or deeper input is refused with a ParseError naming the limit, before any
recursion, so no input can exhaust Python's stack or memory here or in the code that walks the
tree (printing, evaluating, fingerprinting). Errors quote at most a window of the input
(``orchestrator.echo``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from orchestrator.echo import MAX_ECHO, clip_repr
from orchestrator.space.expr import Expr, Node, Unit, X
from orchestrator.space.ops import BINARY, BINARY_NAMES, UNARY, UNARY_NAMES

MAX_LENGTH = 4096
"""Characters of an expression, whitespace included (a 6-unit function takes about 200)."""
MAX_DEPTH = 32
"""Core units nested inside one another along any path (``add(id(x), id(x))`` is depth 1)."""

_TOKEN = re.compile(r"\s*(?:(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<punct>[(),])|(?P<bad>\S))")


class ParseError(ValueError):
    """A bad expression string: names the offending token and its 0-based position."""

    def __init__(self, message: str, text: str, position: int, token: str) -> None:
        self.text = text
        self.position = position
        self.token = token
        self.reason = message
        super().__init__(f"position {position}: {message}")

    def pointer(self) -> str:
        """The expression with a caret under the offending token, for terminals: a window of
        at most ``MAX_ECHO`` characters around the token when the expression is longer."""
        if len(self.text) <= MAX_ECHO:
            return f"{self.text}\n{' ' * self.position}^"
        start = max(0, min(self.position - MAX_ECHO // 2, len(self.text) - MAX_ECHO))
        lead = "…" if start else ""
        window = self.text[start:start + MAX_ECHO]
        trail = "…" if start + MAX_ECHO < len(self.text) else ""
        return f"{lead}{window}{trail}\n{' ' * (len(lead) + self.position - start)}^"


@dataclass(frozen=True)
class _Tok:
    kind: str  # "name", "punct", "bad", "end"
    text: str
    pos: int


def _tokenize(text: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:  # only trailing whitespace is left
            break
        kind = m.lastgroup or "bad"
        tokens.append(_Tok(kind, m.group(kind), m.start(kind)))
        pos = m.end()
    tokens.append(_Tok("end", "", len(text.rstrip()) if text.strip() else 0))
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0
        self.depth = 0

    def peek(self) -> _Tok:
        return self.tokens[self.i]

    def fail(self, message: str, tok: _Tok | None = None) -> ParseError:
        tok = tok or self.peek()
        shown = clip_repr(tok.text) if tok.kind != "end" else "end of input"
        return ParseError(f"{message}, got {shown}", self.text, tok.pos, tok.text)

    def expect(self, punct: str) -> None:
        tok = self.peek()
        if tok.kind != "punct" or tok.text != punct:
            raise self.fail(f"expected {punct!r}")
        self.i += 1

    def name(self, table: Mapping[str, object], what: str, allowed: tuple[str, ...]) -> str:
        tok = self.peek()
        if tok.kind != "name":
            raise self.fail(f"expected a {what} function")
        if tok.text not in table:
            hint = ""
            if tok.text in UNARY and what == "binary":
                hint = " (that is a unary function)"
            elif tok.text in BINARY and what == "unary":
                hint = " (that is a binary function)"
            elif tok.text == X:
                hint = " (x must be wrapped in a unary function, e.g. id(x))"
            raise ParseError(
                f"unknown {what} function {clip_repr(tok.text)}{hint}; allowed: {', '.join(allowed)}",
                self.text,
                tok.pos,
                tok.text,
            )
        self.i += 1
        return tok.text

    def unit(self) -> Unit:
        if self.depth == MAX_DEPTH:
            raise self.fail(f"core units nest at most {MAX_DEPTH} deep")
        self.depth += 1
        binary = self.name(BINARY, "binary", BINARY_NAMES)
        self.expect("(")
        u1 = self.name(UNARY, "unary", UNARY_NAMES)
        self.expect("(")
        in1 = self.input()
        self.expect(")")
        self.expect(",")
        u2 = self.name(UNARY, "unary", UNARY_NAMES)
        self.expect("(")
        in2 = self.input()
        self.expect(")")
        self.expect(")")
        self.depth -= 1
        return Unit(binary, u1, in1, u2, in2)

    def input(self) -> Node:
        tok = self.peek()
        if tok.kind == "name" and tok.text == X:
            self.i += 1
            return X
        if tok.kind == "name" and tok.text in BINARY:
            return self.unit()
        raise self.fail("expected 'x' or a core unit binary(unary(...), unary(...))")


def parse(text: str) -> Expr:
    """Parse an expression in canonical text form; raises ParseError on bad input."""
    if len(text) > MAX_LENGTH:
        raise ParseError(
            f"expression too long: {len(text)} characters, at most {MAX_LENGTH} allowed "
            f"({clip_repr(text, 40)})", text, MAX_LENGTH, text[MAX_LENGTH:MAX_LENGTH + 1])
    p = _Parser(text)
    tok = p.peek()
    if tok.kind == "end":
        raise ParseError("empty expression", text, 0, "")
    expr = p.unit()
    if p.peek().kind != "end":
        raise p.fail("expected end of expression")
    return expr
