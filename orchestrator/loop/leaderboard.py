"""The leaderboard of a search: best distinct functions first, one row per fingerprint."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from orchestrator.space import parse, to_math


@dataclass(frozen=True)
class Entry:
    trial_id: str
    expression: str
    fingerprint: str
    reward: float


def rank(entries: Iterable[Entry], top: int = 10) -> list[Entry]:
    """The best entry of each fingerprint, highest reward first (ties: earliest trial)."""
    best: dict[str, Entry] = {}
    for e in entries:
        known = best.get(e.fingerprint)
        if known is None or (e.reward, known.trial_id) > (known.reward, e.trial_id):
            best[e.fingerprint] = e
    return sorted(best.values(), key=lambda e: (-e.reward, e.trial_id))[:top]


def to_markdown(rows: list[Entry]) -> str:
    lines = ["| rank | expression | math | val accuracy | fingerprint | trial |",
             "|---|---|---|---|---|---|"]
    for i, e in enumerate(rows, 1):
        lines.append(f"| {i} | `{e.expression}` | {to_math(parse(e.expression))} | "
                     f"{e.reward:.4f} | {e.fingerprint} | {e.trial_id} |")
    return "\n".join(lines) + "\n"
