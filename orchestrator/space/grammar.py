"""The search space as a grammar over token sequences: masks, counting, enumeration, sampling.

A space has a fixed number of core units and a subset of the unary and binary ops. Valid
sequences satisfy two rules, both enforced by ``mask`` one token at a time:

* inputs of unit ``k`` choose among ``x`` and units ``< k``;
* every unit but the last is read by some later unit (no dead units), so a sequence is exactly
  one function of ``x`` and ``tokens -> tree -> tokens`` round-trips.

The second rule is decided greedily: after an input choice, the units still unread must fit into
the input slots left, which is ``|unread| <= slots left in this unit + units still to come``
(Hall's condition for these nested choices).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache

import numpy as np

from orchestrator.space.expr import Expr
from orchestrator.space.ops import BINARY_NAMES, UNARY_NAMES
from orchestrator.space.tokens import SLOT_KINDS, TOKENS_PER_UNIT, decode, encode


class SpaceError(ValueError):
    """A search space configured with values outside what the grammar allows."""


@dataclass(frozen=True)
class SearchSpace:
    """Core units ``b(u1(in1), u2(in2))`` composed ``units`` times over the given op subsets."""

    units: int = 1
    unary: tuple[str, ...] = UNARY_NAMES
    binary: tuple[str, ...] = BINARY_NAMES
    _unary_mask: np.ndarray = field(init=False, repr=False, compare=False)
    _binary_mask: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.units, int) or self.units < 1:
            raise SpaceError(f"space.units must be an integer >= 1; got {self.units!r}")
        object.__setattr__(self, "unary", tuple(self.unary))
        object.__setattr__(self, "binary", tuple(self.binary))
        for what, chosen, allowed in (
            ("unary", self.unary, UNARY_NAMES),
            ("binary", self.binary, BINARY_NAMES),
        ):
            if not chosen:
                raise SpaceError(f"space.{what} must name at least one function")
            unknown = [n for n in chosen if n not in allowed]
            if unknown:
                raise SpaceError(
                    f"space.{what} has unknown function(s) {', '.join(map(repr, unknown))}; "
                    f"allowed: {', '.join(allowed)}"
                )
            if len(set(chosen)) != len(chosen):
                raise SpaceError(f"space.{what} lists a function twice")
        object.__setattr__(self, "_unary_mask", np.isin(UNARY_NAMES, self.unary))
        object.__setattr__(self, "_binary_mask", np.isin(BINARY_NAMES, self.binary))

    # -- shape --------------------------------------------------------------------------------

    @property
    def length(self) -> int:
        """Tokens in one sequence."""
        return TOKENS_PER_UNIT * self.units

    def kind(self, position: int) -> str:
        """``input``, ``unary`` or ``binary``."""
        return SLOT_KINDS[position % TOKENS_PER_UNIT]

    def vocab_size(self, kind: str) -> int:
        return {"input": self.units, "unary": len(UNARY_NAMES), "binary": len(BINARY_NAMES)}[kind]

    # -- masks --------------------------------------------------------------------------------

    def mask(self, prefix: Sequence[int]) -> np.ndarray:
        """Boolean mask over the vocabulary of the next token after ``prefix``."""
        pos = len(prefix)
        if pos >= self.length:
            raise SpaceError(f"a sequence of this space has {self.length} tokens; prefix is full")
        kind = self.kind(pos)
        if kind == "unary":
            return self._unary_mask.copy()
        if kind == "binary":
            return self._binary_mask.copy()
        k, slot = divmod(pos, TOKENS_PER_UNIT)
        unread = _unread(prefix, k)
        mask = np.zeros(self.units, dtype=bool)
        for choice in range(k + 1):
            after = len(unread - {choice - 1})
            mask[choice] = after <= (1 - slot) + (self.units - 1 - k)
        return mask

    def is_valid(self, tokens: Sequence[int]) -> bool:
        if len(tokens) != self.length:
            return False
        for pos, t in enumerate(tokens):
            m = self.mask(tokens[:pos])
            if not 0 <= t < len(m) or not m[t]:
                return False
        return True

    # -- counting, enumeration, sampling -----------------------------------------------------

    def count(self) -> int:
        """The number of valid token sequences (one unit over all ops: 25·25·10 = 6,250)."""
        per_unit = len(self.unary) ** 2 * len(self.binary)
        return _input_patterns(self.units, 0, 0, 0) * int(per_unit**self.units)

    def enumerate(self) -> Iterator[tuple[int, ...]]:
        """Every valid sequence, in lexicographic token order (deterministic)."""
        prefix: list[int] = []

        def walk() -> Iterator[tuple[int, ...]]:
            if len(prefix) == self.length:
                yield tuple(prefix)
                return
            for t in np.flatnonzero(self.mask(prefix)):
                prefix.append(int(t))
                yield from walk()
                prefix.pop()

        yield from walk()

    def sample(self, rng: np.random.Generator) -> tuple[int, ...]:
        """One sequence drawn uniformly from all valid sequences."""
        tokens: list[int] = []
        unary = np.flatnonzero(self._unary_mask)
        binary = np.flatnonzero(self._binary_mask)
        for k in range(self.units):
            for slot in (0, 1):
                unread = _unread(tokens, k)
                choices = np.arange(k + 1)
                weights = np.array(
                    [_completions(self.units, k, slot, len(unread - {c - 1})) for c in choices],
                    dtype=float,
                )
                tokens.append(int(rng.choice(choices, p=weights / weights.sum())))
            tokens += [int(rng.choice(unary)), int(rng.choice(unary)), int(rng.choice(binary))]
        return tuple(tokens)

    def sample_expressions(self, n: int, seed: int) -> list[Expr]:
        rng = np.random.default_rng(seed)
        return [decode(self.sample(rng)) for _ in range(n)]

    def contains(self, expr: Expr) -> bool:
        """Whether ``expr`` is a function of exactly this space's shape and ops."""
        return self.is_valid(encode(expr))


def _unread(prefix: Sequence[int], k: int) -> set[int]:
    """Units < k that no input token in ``prefix`` has read yet."""
    read = {
        t - 1 for pos, t in enumerate(prefix) if SLOT_KINDS[pos % TOKENS_PER_UNIT] == "input" and t
    }
    return set(range(k)) - read


@cache
def _completions(n_units: int, k: int, slot: int, unread_after: int) -> int:
    """Input patterns completing a sequence, once input ``slot`` of unit ``k`` is chosen."""
    if unread_after > (1 - slot) + (n_units - 1 - k):
        return 0
    if slot == 0:
        return _input_patterns(n_units, k, 1, unread_after)
    if k == n_units - 1:
        return 1 if unread_after == 0 else 0
    return _input_patterns(n_units, k + 1, 0, unread_after + 1)


@cache
def _input_patterns(n_units: int, k: int, slot: int, unread: int) -> int:
    """Number of ways to fill the input slots from (unit k, slot) on, with ``unread`` pending."""
    read_before = k - unread
    keep = 1 + read_before  # x or an already-read unit: the unread count stays
    total = keep * _completions(n_units, k, slot, unread)
    if unread:  # read one of the pending units
        total += unread * _completions(n_units, k, slot, unread - 1)
    return total
