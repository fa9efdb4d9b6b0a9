"""Who a search is, wherever something of it is stored: namespace + name + uid.

A name alone is not an identity: two searches named ``s1`` in different namespaces, two users
of one tracking server, or an object deleted and created again under the same name are
different searches. So the MLflow runs (tags ``actsearch.search_uid``, ``actsearch.namespace``),
the checkpoint (its ``owner``), and the Jobs (name and labels) carry the uid too. In a cluster
the uid is the ActivationSearch object's ``metadata.uid``; on one machine it is generated when a
search starts and kept in its checkpoint.

In a cluster a search's storage is also confined: under the operator's root, at
``<root>/<namespace>/<name>``, so no spec can point at another search's checkpoint.
Pure functions only: the callers do the I/O.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from orchestrator.echo import clip_repr
from orchestrator.errors import ConfigError

MAX_JOB_NAME = 63
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

Claim = Literal["own", "unclaimed", "foreign"]
"""What a checkpoint is to a search: written by it, written before checkpoints recorded their
owner (adopted: how searches running during an upgrade go on), or another search's."""


@dataclass(frozen=True)
class SearchIdentity:
    """A search: its name, its uid, and its namespace (None on one machine)."""

    name: str
    uid: str
    namespace: str | None = None

    @classmethod
    def generate(cls, name: str) -> SearchIdentity:
        """A new search on one machine: a fresh random uid."""
        return cls(name, str(uuid.uuid4()))

    @property
    def short(self) -> str:
        """8 hex digits of a hash of all three parts: short enough for a Job name."""
        text = f"{self.namespace or ''}/{self.name}/{self.uid}"
        return hashlib.sha256(text.encode()).hexdigest()[:8]

    def describe(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{where}{self.name} (uid {self.uid})"

    def as_dict(self) -> dict[str, str | None]:
        return {"namespace": self.namespace, "name": self.name, "uid": self.uid}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> SearchIdentity | None:
        """The identity stored in a checkpoint (None when it stores none: written before)."""
        if not isinstance(raw, Mapping) or not raw.get("uid") or not raw.get("name"):
            return None
        ns = raw.get("namespace")
        return cls(str(raw["name"]), str(raw["uid"]), str(ns) if ns else None)


def claim(recorded: SearchIdentity | None, me: SearchIdentity) -> Claim:
    """Whether ``me`` may resume a checkpoint whose owner is ``recorded``: the uid decides (a
    new object under an old name is another search)."""
    if recorded is None:
        return "unclaimed"
    return "own" if recorded.uid == me.uid else "foreign"


def job_name(identity: SearchIdentity, launch_id: str) -> str:
    """The Job of a launch (``<name>-t00003`` or ``<name>-p00016``): ``<name>-<short>-t00003``,
    a DNS label of at most 63 characters (names are at most 40)."""
    suffix = launch_id.removeprefix(f"{identity.name}-")
    name = f"{identity.name}-{identity.short}-{suffix}"
    if len(name) > MAX_JOB_NAME or not _DNS_LABEL.match(name):
        raise ValueError(f"Job name {name!r} of launch {launch_id!r} is not a DNS label of at "
                         f"most {MAX_JOB_NAME} characters")
    return name


# -- storage confined under the operator's root ---------------------------------------------------


def search_prefix(root: str, namespace: str, name: str) -> str:
    """Where a search of ``namespace``/``name`` keeps its checkpoints, under the operator's
    ``root`` (``s3://bucket/prefix``)."""
    return f"{root.rstrip('/')}/{namespace}/{name}"


def _segments(uri: str) -> tuple[str, list[str]] | None:
    """(scheme://bucket, path segments) of a storage URI; None when a segment is empty, ``.``
    or ``..`` (such a URI could name the same place as another)."""
    scheme, sep, rest = uri.partition("://")
    if not sep or not rest:
        return None
    parts = rest.rstrip("/").split("/")
    if any(p in ("", ".", "..") for p in parts):
        return None
    return f"{scheme}://{parts[0]}", parts[1:]


def confine(uri: str | None, root: str, namespace: str, name: str) -> str:
    """The storage URI of a search in a cluster: its own prefix under the operator's root, or
    ``uri`` when it names that prefix or a folder below it. Anything else is a ConfigError naming
    ``storage.uri``: a search that could point there would read (and overwrite) another's
    checkpoint."""
    prefix = search_prefix(root, namespace, name)
    if uri is None:
        return prefix
    mine, wanted = _segments(prefix), _segments(uri)
    if mine is None:
        raise ConfigError(f"the operator's storage root {clip_repr(root)} is not a "
                          "storage URI (s3://bucket/prefix)")
    if wanted is None or wanted[0] != mine[0] or wanted[1][:len(mine[1])] != mine[1]:
        raise ConfigError(
            f"storage.uri {clip_repr(uri)} is outside this search's storage: in this cluster "
            f"a search keeps its checkpoints under {prefix} (its namespace and name below the "
            "operator's root); leave storage.uri out, or name a folder below that")
    return uri.rstrip("/")


def foreign_location(uri: str, identity: SearchIdentity) -> str:
    """Where a search keeps its checkpoint when its own location holds another search's (an
    earlier object of the same name): a folder named after its uid below it."""
    return f"{uri.rstrip('/')}/{identity.uid}"
