"""Edits to a search that already started: which fields may change, and what an edit becomes.

A search is a comparison: every child trains the same way, in the same space, under the same
strategy, logged to the same places. An edit may change how much is spent and where and how
fast it runs (the budget, ``parallelism``, ``packing``, the scheduling of Jobs and local
devices), and nothing else. ``amend`` is the one rule, used when a local search is resumed
with an edited spec and when an ActivationSearch is edited with kubectl, running or finished.

An edit that changes any other field is not applied at all (not in part), so what runs is
always a spec somebody wrote: the one stored in the search's checkpoint.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.spec import SearchSpec

# Dotted fields (and everything under them) that an edit may change.
LIVE_FIELDS: tuple[str, ...] = (
    "budget",
    "parallelism",
    "packing",
    "backend.local.gpus",
    *(f"backend.kubernetes.{f}" for f in (
        "resources", "node_selector", "tolerations", "priority_class", "queue_name",
        "service_account", "credentials_secret", "tracking_secret", "image_pull_policy",
        "backoff_limit", "active_deadline_seconds", "ttl_seconds_after_finished", "max_pending_seconds",
    )),
)


@dataclass(frozen=True)
class Change:
    field: str
    before: Any
    after: Any

    def __str__(self) -> str:
        return f"{self.field} {_show(self.before)} → {_show(self.after)}"


@dataclass(frozen=True)
class Amendment:
    """What to run after an edit: the edited spec when every change is live, else the old one."""

    spec: SearchSpec
    applied: tuple[Change, ...] = ()
    rejected: tuple[Change, ...] = ()


def is_live(field: str) -> bool:
    return any(field == f or field.startswith(f + ".") for f in LIVE_FIELDS)


def changes(old: SearchSpec, new: SearchSpec) -> list[Change]:
    """Leaf fields that differ, in a stable order (lists compare whole)."""
    return _diff(old.model_dump(mode="json"), new.model_dump(mode="json"), "")


def amend(old: SearchSpec | None, new: SearchSpec) -> Amendment:
    """The spec to run when a search that started with ``old`` is given ``new``."""
    if old is None:
        return Amendment(new)
    diff = changes(old, new)
    rejected = tuple(c for c in diff if not is_live(c.field))
    if rejected:
        return Amendment(old, rejected=rejected)
    return Amendment(new, applied=tuple(diff))


def describe(cs: tuple[Change, ...] | list[Change]) -> str:
    return "; ".join(str(c) for c in cs)


def rejection(subject: str, rejected: tuple[Change, ...] | list[Change]) -> str:
    """The error for an edit that touches fields a started search keeps."""
    return (
        f"{subject}: {describe(rejected)}: a started search keeps its space, strategy, "
        "children's training, screen, seed, tracking, storage and trainer image, so that its "
        "children stay comparable; an edit may change only budget.*, parallelism, packing and "
        "the scheduling fields of backend (resources, node_selector, tolerations, "
        "priority_class, queue_name, ...). Start a new search under another name to change "
        "the others"
    )


class _Unset:
    def __repr__(self) -> str:
        return "(unset)"


UNSET: Any = _Unset()  # a field one side of a change does not have (a key of a free-form map)


def _diff(a: Mapping[str, Any], b: Mapping[str, Any], prefix: str) -> list[Change]:
    out: list[Change] = []
    for key in sorted(a.keys() | b.keys()):
        before, after = a.get(key, UNSET), b.get(key, UNSET)
        if isinstance(before, Mapping) and isinstance(after, Mapping):
            out += _diff(before, after, f"{prefix}{key}.")
        elif before != after:
            out.append(Change(f"{prefix}{key}", before, after))
    return out


def _show(v: Any) -> str:
    if v is UNSET:
        return repr(v)
    return json.dumps(v, sort_keys=True) if not isinstance(v, str) else repr(v)
