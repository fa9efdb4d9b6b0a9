"""A search's checkpoint, ``controller.pt`` in its store: everything a controller needs to resume.

Version 3 holds the search's name, ``owner`` (the identity of the search that wrote it:
``orchestrator.identity``), the spec in force (so an edit can be checked against it), the
strategy's state, how many generations were logged and the trials (``Trial.as_dict``), written
so that a checkpoint's cost follows what changes rather than the search's total: trials come in
blocks of ``SEGMENT`` by index, and a block whose trials are all done (with their runs) is
written once, as JSON under ``controller.pt.d/``, and named by the checkpoint; the checkpoint
itself carries the other trials. A block is written before any checkpoint that names it, so a
reader never finds a name without its block. A search never resumes another's checkpoint
(another uid), and adopts one written before checkpoints had an owner (a search running during
the upgrade goes on). Versions 1 and 2 (every trial in the checkpoint, no owner) still load.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from orchestrator.adapters.storage import Store, dump_state, load_state
from orchestrator.errors import ConfigError
from orchestrator.identity import SearchIdentity, claim
from orchestrator.loop.ledger import DONE
from orchestrator.loop.trials import Trial
from orchestrator.spec import SearchSpec

log = logging.getLogger(__name__)

CHECKPOINT_KEY = "controller.pt"
SEGMENT = 256
"""Trials per block: a checkpoint re-writes at most the blocks that still change (those with a
trial in flight, queued or held), about ``parallelism + generation`` trials, plus one block."""


@dataclass
class Segments:
    """The blocks of done trials already in the store: first index -> key."""

    keys: dict[int, str] = field(default_factory=dict)


@dataclass
class Saved:
    """A checkpoint as read back."""

    spec: SearchSpec | None
    strategy: dict[str, Any]
    trials: list[Trial]
    generations_logged: int
    owner: SearchIdentity | None = None
    segments: Segments = field(default_factory=Segments)


def _json(trials: Sequence[Trial]) -> str:
    return json.dumps([t.as_dict() for t in trials], default=_plain)


def _plain(value: Any) -> Any:
    """NumPy scalars (a strategy's token ids, log-probabilities) as Python numbers."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} in a trial cannot be checkpointed")


def segment_key(start: int) -> str:
    return f"{CHECKPOINT_KEY}.d/trials-{start:06d}.json"


def sealable(block: Sequence[Trial]) -> bool:
    """A full block whose trials are all done and have their runs: it will not change again."""
    return len(block) == SEGMENT and all(t.state == DONE and t.run_id is not None
                                         for t in block)


def write(store: Store, spec: SearchSpec, strategy: dict[str, Any], trials: Sequence[Trial],
          generations_logged: int, sealed: Segments, owner: SearchIdentity | None = None) -> None:
    """Write the checkpoint of ``trials`` (in index order), first the blocks that became
    sealable since the last one (``sealed`` is updated), then ``controller.pt``."""
    live: list[Trial] = []
    for start in range(0, len(trials), SEGMENT):
        if start in sealed.keys:
            continue
        block = trials[start:start + SEGMENT]
        if sealable(block):
            store.put(segment_key(start), _json(block).encode())
            sealed.keys[start] = segment_key(start)
        else:
            live += block
    store.put(CHECKPOINT_KEY, dump_state({
        "version": 3,
        "search": spec.name,
        "owner": owner.as_dict() if owner is not None else None,
        "spec": spec.model_dump(mode="json"),
        "strategy": strategy,
        "segments": [sealed.keys[s] for s in sorted(sealed.keys)],
        "trials_json": _json(live),
        "generations_logged": generations_logged,
    }))


def encode(spec: SearchSpec, strategy: dict[str, Any], trials: Sequence[Trial],
           generations_logged: int) -> bytes:
    """A version-2 checkpoint, every trial in it and no owner (what earlier versions wrote)."""
    return dump_state({
        "version": 2,
        "search": spec.name,
        "spec": spec.model_dump(mode="json"),
        "strategy": strategy,
        "trials": [t.as_dict() for t in trials],
        "generations_logged": generations_logged,
    })


def read(store: Store, name: str, me: SearchIdentity | None = None) -> Saved | None:
    """The last checkpoint of search ``name``; None when it has none yet. With ``me``, a
    checkpoint another search wrote (``owner_of``) is a ConfigError, never resumed."""
    data = store.get(CHECKPOINT_KEY)
    if data is None:
        return None
    state = load_state(data)
    owner = owner_of(state)
    if me is not None and claim(owner, me) == "foreign":
        assert owner is not None
        raise ConfigError(f"the checkpoint at {store.describe(CHECKPOINT_KEY)} belongs to "
                          f"another search (uid {owner.uid}), not to {me.describe()}; it is "
                          "not resumed")
    segments = Segments()
    raw: list[Mapping[str, Any]] = list(state.get("trials") or [])
    if "trials_json" in state:
        raw += json.loads(state["trials_json"])
    for key in state.get("segments") or []:
        block = store.get(key)
        if block is None:
            raise FileNotFoundError(f"checkpoint of search {name!r} names {store.describe(key)}, "
                                    "which is missing")
        trials = json.loads(block)
        segments.keys[int(trials[0]["index"])] = key
        raw += trials
    return Saved(spec_in(state, name), state["strategy"],
                 sorted((Trial.from_dict(t) for t in raw), key=lambda t: t.index),
                 int(state.get("generations_logged", 0)), owner, segments)


def owner_of(state: Mapping[str, Any] | None) -> SearchIdentity | None:
    """The search that wrote a checkpoint (None before version 3)."""
    return SearchIdentity.from_dict((state or {}).get("owner"))


def stored_owner(store: Store) -> tuple[bool, SearchIdentity | None]:
    """Whether the store holds a checkpoint, and whose it is (None: written before owners)."""
    data = store.get(CHECKPOINT_KEY)
    return (False, None) if data is None else (True, owner_of(load_state(data)))


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


def stored_spec(store: Store, name: str, me: SearchIdentity | None = None) -> SearchSpec | None:
    """The spec in force for a search, from its checkpoint (None when it has none, or, with
    ``me``, when another search wrote it: its spec is none of this one's business)."""
    data = store.get(CHECKPOINT_KEY)
    if data is None:
        return None
    state = load_state(data)
    if me is not None and claim(owner_of(state), me) == "foreign":
        return None
    return spec_in(state, name)
