"""From architecture weights to a short list of candidate functions, degenerate ones screened out.

The argmax of every slot is one function, and a fragile one: on some seeds and CPUs it is
linear (``max(β·x, β·x)``) or trains far below ReLU. So the derivation proposes several:

1. Every slot's ops are ranked: the ops still active at the end by expected weight, then the
   ops that progressive shrinking dropped, the last one dropped first (it survived longest).
2. Combinations of ops are enumerated by the sum of their ranks (0 is the argmax derivation),
   ties in lexicographic order of the slots, so the list depends on the rankings alone.
   Several restarts' enumerations are interleaved, restart by restart.
3. A combination is kept when its function passes the numeric screen with ``reject_affine``
   (finite, not constant, not affine, value and gradient bounded on [-5, 5]) and is not the
   same function (fingerprint) as one kept before or as an excluded one (the baseline).

Pure: NumPy and the architecture's α only, no training.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import torch

from orchestrator.oneshot.supernet import Architecture, template_expr
from orchestrator.space import Expr, Numerics, to_text
from orchestrator.space.fingerprint import fingerprint
from orchestrator.space.screen import ScreenConfig, screen

DERIVATION_SCREEN = ScreenConfig(reject_affine=True)
"""The search loop's default screen, plus: affine functions are degenerate, not candidates."""

EXAMINED_LIMIT = 5000
"""Combinations examined at most per derivation (the screen costs about a millisecond each)."""


@dataclass(frozen=True)
class Candidate:
    expr: Expr
    expression: str
    restart: int
    rank: int  # sum of its ops' ranks in their slots; 0 is the argmax derivation


@dataclass(frozen=True)
class Rejected:
    expression: str
    restart: int
    rank: int
    reason: str


def slot_ranking(arch: Architecture, dropped: Mapping[str, Sequence[str]]) -> dict[str, tuple[str, ...]]:
    """Every slot's ops, best first: active ones by expected weight (index breaks ties), then
    ``dropped[slot]`` (in the order they were dropped) reversed."""
    out: dict[str, tuple[str, ...]] = {}
    with torch.no_grad():
        for s in arch.slots:
            probs = arch.probabilities(s.name).tolist()
            active = sorted(arch.active(s.name), key=lambda i: (-probs[i], i))
            order = tuple(s.ops[i] for i in active) + tuple(reversed(dropped.get(s.name, ())))
            if sorted(order) != sorted(s.ops):
                raise ValueError(f"slot {s.name}: the active and dropped ops do not cover its ops")
            out[s.name] = order
    return out


def _compositions(total: int, sizes: Sequence[int]) -> Iterator[tuple[int, ...]]:
    """Tuples r with sum ``total`` and 0 ≤ r[i] < sizes[i], in lexicographic order."""
    if not sizes:
        if total == 0:
            yield ()
        return
    if total > sum(sizes) - len(sizes):
        return
    for first in range(min(total, sizes[0] - 1) + 1):
        for rest in _compositions(total - first, sizes[1:]):
            yield (first, *rest)


def ranked_choices(ranking: Mapping[str, Sequence[str]]) -> Iterator[tuple[int, dict[str, str]]]:
    """(rank sum, op per slot) of every combination, by rank sum, then lexicographically."""
    names = list(ranking)
    sizes = [len(ranking[n]) for n in names]
    for total in range(sum(sizes) - len(sizes) + 1):
        for ranks in _compositions(total, sizes):
            yield total, {n: ranking[n][r] for n, r in zip(names, ranks, strict=True)}


def derive(rankings: Sequence[Mapping[str, Sequence[str]]], units: int, k: int, numerics: Numerics,
           exclude: Sequence[Expr] = (), config: ScreenConfig = DERIVATION_SCREEN,
           limit: int = EXAMINED_LIMIT) -> tuple[list[Candidate], list[Rejected]]:
    """Up to ``k`` distinct candidates that pass ``config``'s screen, from one ranking per
    restart, and the combinations rejected on the way (with the reason)."""
    seen = {fingerprint(e, numerics): to_text(e) for e in exclude}
    streams = [(i, ranked_choices(r)) for i, r in enumerate(rankings)]
    kept: list[Candidate] = []
    rejected: list[Rejected] = []
    examined = 0
    while streams and len(kept) < k and examined < limit:
        for restart, stream in list(streams):
            nxt = next(stream, None)
            if nxt is None:
                streams.remove((restart, stream))
                continue
            examined += 1
            rank, ops = nxt
            expr = template_expr(units, ops)
            text = to_text(expr)
            verdict = screen(expr, numerics, config)
            if not verdict.ok:
                rejected.append(Rejected(text, restart, rank, f"screen: {verdict.reason}"))
                continue
            fp = fingerprint(expr, numerics)
            if fp in seen:
                if seen[fp] != text:
                    rejected.append(Rejected(text, restart, rank, f"the same function as {seen[fp]}"))
                continue
            seen[fp] = text
            kept.append(Candidate(expr, text, restart, rank))
            if len(kept) == k:
                break
    return kept, rejected
