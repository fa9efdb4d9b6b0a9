"""The leaderboard of a search: best distinct functions first, one row per fingerprint.

Honest about what it cannot tell apart: rows whose validation accuracy equals another row's are
marked as ties (``tied``), and the test accuracy, when the child logged one, sits beside the
validation accuracy (the reward), so a tie broken by trial order is visible as such. Duplicates
(a function this search or another one already trained) are one row with their original: only
the best, then earliest, trial of a fingerprint is listed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace

from orchestrator.space import parse, to_math


@dataclass(frozen=True)
class Entry:
    trial_id: str
    expression: str
    fingerprint: str
    reward: float  # the validation accuracy (``REWARD``)
    test_accuracy: float | None = None
    tied: bool = False  # another row has the same reward
    run_id: str | None = None


def rank(entries: Iterable[Entry], top: int = 10) -> list[Entry]:
    """The best entry of each fingerprint, highest reward first (ties: earliest trial, and
    marked ``tied``)."""
    best: dict[str, Entry] = {}
    for e in entries:
        known = best.get(e.fingerprint)
        if known is None or (e.reward, known.trial_id) > (known.reward, e.trial_id):
            best[e.fingerprint] = e
    ordered = sorted(best.values(), key=lambda e: (-e.reward, e.trial_id))
    counts = Counter(e.reward for e in ordered)
    return [replace(e, tied=counts[e.reward] > 1) for e in ordered[:top]]


def escape_markdown(text: str) -> str:
    """Text safe in a Markdown table cell: ``|`` escaped (``|x|`` must not split a cell)."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def rank_labels(rows: list[Entry]) -> list[str]:
    """``1``, ``2``, ``=2`` ...: rows tied on reward share the rank of the first of them."""
    labels: list[str] = []
    for i, e in enumerate(rows):
        first = next(j for j, o in enumerate(rows) if o.reward == e.reward)
        labels.append(f"={first + 1}" if e.tied else str(i + 1))
    return labels


def accuracy_text(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def to_markdown(rows: list[Entry]) -> str:
    lines = ["| rank | expression | math | val accuracy | test accuracy | fingerprint | trial |",
             "|---|---|---|---|---|---|---|"]
    for label, e in zip(rank_labels(rows), rows, strict=True):
        math = escape_markdown(to_math(parse(e.expression)))
        lines.append(f"| {label} | `{escape_markdown(e.expression)}` | {math} | "
                     f"{e.reward:.4f} | {accuracy_text(e.test_accuracy)} | {e.fingerprint} | "
                     f"{e.trial_id} |")
    if any(e.tied for e in rows):
        lines += ["", "`=k`: tied on validation accuracy with rank k (the earlier trial is listed "
                      "first); the test accuracy tells them apart."]
    return "\n".join(lines) + "\n"
