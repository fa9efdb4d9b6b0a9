"""A search's checkpoint, ``controller.pt`` in its store: everything a controller needs to resume.

Version 2 holds the search's name, the spec in force (so an edit can be checked against it), the
strategy's state, the trials (``Trial.as_dict``) and how many generations were logged. Older
checkpoints without a spec still load.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.adapters.storage import Store, dump_state, load_state
from orchestrator.loop.trials import Trial
from orchestrator.spec import SearchSpec

log = logging.getLogger(__name__)

CHECKPOINT_KEY = "controller.pt"


@dataclass
class Saved:
    """A checkpoint as read back."""

    spec: SearchSpec | None
    strategy: dict[str, Any]
    trials: list[Trial]
    generations_logged: int


def encode(spec: SearchSpec, strategy: dict[str, Any], trials: Sequence[Trial],
           generations_logged: int) -> bytes:
    return dump_state({
        "version": 2,
        "search": spec.name,
        "spec": spec.model_dump(mode="json"),
        "strategy": strategy,
        "trials": [t.as_dict() for t in trials],
        "generations_logged": generations_logged,
    })


def read(store: Store, name: str) -> Saved | None:
    """The last checkpoint of search ``name``; None when it has none yet."""
    data = store.get(CHECKPOINT_KEY)
    if data is None:
        return None
    state = load_state(data)
    return Saved(spec_in(state, name), state["strategy"],
                 [Trial.from_dict(t) for t in state["trials"]],
                 int(state.get("generations_logged", 0)))


def spec_in(state: Mapping[str, Any] | None, name: str) -> SearchSpec | None:
    """The spec a checkpoint was written under (None before checkpoints carried one, or when
    this version can no longer read it: then an edit cannot be checked, and is taken)."""
    raw = (state or {}).get("spec")
    if raw is None:
        return None
    try:
        return SearchSpec.model_validate(raw)
    except ValueError as e:
        log.warning("search %s: the spec stored in its checkpoint no longer validates, so an "
                    "edit cannot be checked against it: %s", name, e)
        return None


def stored_spec(store: Store, name: str) -> SearchSpec | None:
    """The spec in force for a search, from its checkpoint (None when it has none)."""
    data = store.get(CHECKPOINT_KEY)
    return spec_in(load_state(data), name) if data is not None else None
