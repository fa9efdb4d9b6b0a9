"""Which results the evaluation cache may reuse: those this installation's controller vouched for.

A child can write any tag and metric on its own MLflow run, and anyone who reaches the tracking
server can create runs, so a tag that merely says "trusted" proves nothing. When a controller
settles a trial its own child trained, it writes ``actsearch.trust``: an HMAC-SHA256, keyed by
the installation's secret (the controller's alone; children never get it), over the run id,
the function's fingerprint, the child-config hash, the outcome and the search's namespace. The
cache reuses a run only when that seal verifies, so a forged or altered result (a later
``val_accuracy``, another run's seal copied over) is ignored.

The scope of the cache is a setting: ``namespace`` (the default) reuses only results sealed for
the searching namespace; ``installation`` reuses those of every namespace of the installation.
Without a key the cache neither seals nor reuses anything.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from orchestrator.echo import clip_repr
from orchestrator.errors import ConfigError

CacheScope = Literal["namespace", "installation"]
CACHE_SCOPES: tuple[CacheScope, ...] = ("namespace", "installation")
DEFAULT_CACHE_SCOPE: CacheScope = "namespace"
KEY_ENV = "ACTSEARCH_TRUST_KEY"
"""The installation's secret, as the controller's environment carries it (the chart puts it in
a Secret of its own, referenced only by the controller's Deployment)."""
TRUST_SECRET_ENV = "ACTSEARCH_TRUST_SECRET"
"""The name of the Secret holding the key, which the operator refuses as a child's credentials."""
KEY_FILE = "trust.key"
"""On one machine: the secret, generated once beside the shared MLflow store."""
MIN_KEY_LENGTH = 16
SEAL_VERSION = "v1"
LOCAL = "-"
"""The namespace of a search run on one machine, in a seal."""


@dataclass(frozen=True)
class Trust:
    """How one search seals its children's results and which sealed results it reuses."""

    key: bytes
    namespace: str | None = None  # the search's; None on one machine
    scope: CacheScope = DEFAULT_CACHE_SCOPE

    def seal(self, run_id: str, fingerprint: str, config_hash: str, reward: float | None,
             failure: str | None) -> str:
        return seal(self.key, self.namespace, run_id, fingerprint, config_hash, reward, failure)

    def accepts(self, seal_value: str | None, tags: Mapping[str, str], run_id: str,
                fingerprint: str, config_hash: str, reward: float | None,
                failure: str | None, namespace_tag: str) -> bool:
        """Whether a run's seal verifies for this search: in ``namespace`` scope sealed for its
        own namespace; in ``installation`` scope for the namespace the run names (the seal
        covers it, so a forged namespace tag fails)."""
        if not seal_value:
            return False
        ns = self.namespace if self.scope == "namespace" else tags.get(namespace_tag) or None
        expected = seal(self.key, ns, run_id, fingerprint, config_hash, reward, failure)
        return hmac.compare_digest(seal_value, expected)


def outcome_text(reward: float | None, failure: str | None) -> str:
    """The outcome as sealed: the reward's exact float text, or the failure."""
    return f"failure:{failure}" if reward is None else f"reward:{float(reward)!r}"


def seal(key: bytes, namespace: str | None, run_id: str, fingerprint: str, config_hash: str,
         reward: float | None, failure: str | None) -> str:
    message = "\n".join((SEAL_VERSION, namespace or LOCAL, run_id, fingerprint, config_hash,
                         outcome_text(reward, failure)))
    digest = hmac.new(key, message.encode(), hashlib.sha256).hexdigest()
    return f"{SEAL_VERSION}:{digest}"


def cache_scope(value: str) -> CacheScope:
    """A cache scope from an option; ConfigError naming the allowed values."""
    for scope in CACHE_SCOPES:
        if value == scope:
            return scope
    raise ConfigError(f"cache scope {clip_repr(value)} is not one of {', '.join(CACHE_SCOPES)}")


def key_from_env(environ: Mapping[str, str] | None = None) -> bytes | None:
    """The controller's key from ``$ACTSEARCH_TRUST_KEY`` (None when unset); ConfigError when it
    is too short to be a secret."""
    raw = (os.environ if environ is None else environ).get(KEY_ENV, "").strip()
    if not raw:
        return None
    if len(raw) < MIN_KEY_LENGTH:
        raise ConfigError(f"${KEY_ENV} must be at least {MIN_KEY_LENGTH} characters; it holds "
                          f"{len(raw)}")
    return raw.encode()


def local_key(folder: Path) -> bytes:
    """The key of searches run on this machine from ``folder``: read from ``trust.key``,
    created (readable by its owner only) the first time."""
    path = folder / KEY_FILE
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another search made it meanwhile
            pass
        else:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32))
    return path.read_text().strip().encode()
