"""A search's checkpoint, ``controller.pt`` in its store: everything a controller needs to resume.

Version 2 holds the search's name, the spec in force (so an edit can be checked against it), the
strategy's state, the trials (``Trial.as_dict``) and how many generations were logged. Older
checkpoints without a spec still load. Version 3 adds ``owner``, the identity of the search
that wrote it (``orchestrator.identity``): a search never resumes another's checkpoint (another
uid), and adopts one written before checkpoints had an owner (a search running during the
upgrade goes on).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.adapters.storage import Store, dump_state, load_state
from orchestrator.errors import ConfigError
from orchestrator.identity import SearchIdentity, claim
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
    owner: SearchIdentity | None = None


def encode(spec: SearchSpec, strategy: dict[str, Any], trials: Sequence[Trial],
           generations_logged: int, owner: SearchIdentity | None = None) -> bytes:
    return dump_state({
        "version": 3,
        "search": spec.name,
        "owner": owner.as_dict() if owner is not None else None,
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
    return Saved(spec_in(state, name), state["strategy"],
                 [Trial.from_dict(t) for t in state["trials"]],
                 int(state.get("generations_logged", 0)), owner)


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
