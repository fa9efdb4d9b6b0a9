"""Which functions a table trains: the distinct functions of a space, one per fingerprint, that
pass the numeric screen; all of them, or a uniform seeded sample plus functions always included
(the paper's baselines). NumPy only.

The representative of a fingerprint is its first expression in the space's enumeration order
(deterministic), unless an included expression shares the fingerprint: then that one, so ReLU is
written ``max(relu(x), relu(x))`` as everywhere else in the project.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from orchestrator.space import Numerics, SearchSpace, decode, parse, to_text
from orchestrator.space.fingerprint import fingerprint
from orchestrator.space.screen import ScreenConfig, screen


@dataclass(frozen=True)
class Function:
    expression: str
    fingerprint: str


@dataclass(frozen=True)
class Census:
    """What a space holds: sequences, distinct functions, and those that pass the screen."""

    sequences: int
    distinct: int
    functions: tuple[Function, ...]  # distinct and passing the screen, in enumeration order


def census(space: SearchSpace, numerics: Numerics = "safe",
           screen_config: ScreenConfig | None = None) -> Census:
    """Every distinct function of ``space`` (by fingerprint) that passes the screen. Enumerates
    the whole space: meant for 1-unit spaces (6,250 sequences, a few seconds)."""
    first: dict[str, str] = {}
    passed: list[Function] = []
    n = 0
    for tokens in space.enumerate():
        n += 1
        expr = decode(tokens)
        fp = fingerprint(expr, numerics)
        if fp in first:
            continue
        first[fp] = to_text(expr)
        if screen(expr, numerics, screen_config).ok:
            passed.append(Function(first[fp], fp))
    return Census(n, len(first), tuple(passed))


def select(census: Census, sample: int | None, seed: int, include: Sequence[str],
           space: SearchSpace, numerics: Numerics = "safe") -> list[Function]:
    """The included functions first, then ``sample`` others drawn uniformly without replacement
    (seeded; ``sample=None``: all the others), in a seeded random order: every prefix of the
    list is a uniform sample too, so a build cut short is still an unbiased table.

    Raises ValueError when an included expression is not in ``space`` or fails the screen, or
    the sample is larger than what is left.
    """
    known = {f.fingerprint for f in census.functions}
    chosen: list[Function] = []
    taken: set[str] = set()
    for text in include:
        expr = parse(text)
        if not space.contains(expr):
            raise ValueError(f"{text!r} is not in the table's space ({space.units} unit(s) over "
                             "its op lists)")
        fp = fingerprint(expr, numerics)
        if fp not in known:
            raise ValueError(f"{text!r} fails the numeric screen")
        if fp in taken:
            raise ValueError(f"{text!r} computes the same function as another included one")
        taken.add(fp)
        chosen.append(Function(to_text(expr), fp))
    rest = [f for f in census.functions if f.fingerprint not in taken]
    n = len(rest) if sample is None else sample
    if n > len(rest):
        raise ValueError(f"a sample of {sample} is more than the {len(rest)} distinct functions "
                         "left after the included ones")
    picked = np.random.default_rng(seed).choice(len(rest), size=n, replace=False)
    return chosen + [rest[int(i)] for i in picked]
