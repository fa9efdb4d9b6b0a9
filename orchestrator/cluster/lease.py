"""One driver per search: a ``coordination.k8s.io/v1`` Lease per ActivationSearch.

Several operators may watch the same namespace (the chart's ``controller.replicas`` > 1, or an
old pod not yet gone during a rollout). Each has a search loop per search, but a loop does
nothing until its operator holds the search's Lease (``actsearch-<search>``, owned by the
search, so it goes with it); the others wait, retrying now and then, and take the Lease over
once its holder stopped renewing it for ``leaseDurationSeconds``, or at once when the holder
released it on a clean shutdown. Searches spread over the operators by who gets each Lease
first; a takeover resumes the search from its checkpoint, re-attaching to its Jobs by name.

Why a Lease per search and not kopf's peering: peering pauses a whole operator while one with a
higher priority lives, and replicas of one Deployment share a priority, which kopf reports as a
conflict and then lets both run. Leases are also what Kubernetes' own controllers use
(client-go's leader election), with the same rules kept here:

- expiry is judged on this process's monotonic clock, from when the Lease's
  ``resourceVersion`` was last seen to change, never by comparing ``renewTime`` with the local
  wall clock (clocks of two nodes may disagree);
- every write is a replace carrying the ``resourceVersion`` read, so of two operators taking the
  same expired Lease, one gets a 409 and stands by;
- the holder renews it before a tick once a third of its duration has passed; an API server
  that cannot be reached counts as "still held" only until the Lease would have expired.

A tick that runs longer than the Lease's duration (an MLflow outage waited out inside it) lets
another operator take the search over; the slow one notices before its next tick and stops
without writing anything: ``duration`` is a minute by default for that reason.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from orchestrator.adapters.kube import API_VERSION, KIND, AlreadyExists, Cluster, Conflict, NotFound
from orchestrator.errors import ConfigError, TemporaryUnavailable

log = logging.getLogger(__name__)

LEASE_PREFIX = "actsearch-"
DEFAULT_LEASE_SECONDS = 60


def lease_name(search: str) -> str:
    return f"{LEASE_PREFIX}{search}"


def _micro_time() -> str:
    """A ``MicroTime`` as the API writes it."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class SearchLease:
    """The Lease of one search, as seen by one operator (``holder``: its identity, the pod's
    name in a cluster)."""

    cluster: Cluster
    namespace: str
    search: str
    holder: str
    owner_uid: str | None = None
    duration: float = DEFAULT_LEASE_SECONDS
    clock: Callable[[], float] = time.monotonic
    _observed: tuple[str, float] | None = field(default=None, repr=False)
    """(resourceVersion, when first seen with it): the Lease's last sign of life."""
    _renewed: float | None = field(default=None, repr=False)
    """When this operator last wrote the Lease as its holder (None: it does not hold it)."""
    _lease: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return lease_name(self.search)

    @property
    def retry_interval(self) -> float:
        """How often an operator that does not hold the Lease looks at it again."""
        return max(self.duration / 4, 0.05)

    def _body(self, previous: dict[str, Any] | None) -> dict[str, Any]:
        spec = dict((previous or {}).get("spec") or {})
        now = _micro_time()
        if spec.get("holderIdentity") != self.holder:
            spec["acquireTime"] = now
            if previous is not None:
                spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
        spec.update(holderIdentity=self.holder, leaseDurationSeconds=max(1, round(self.duration)),
                    renewTime=now)
        metadata: dict[str, Any] = dict((previous or {}).get("metadata") or {
            "name": self.name, "namespace": self.namespace,
            "labels": {"app.kubernetes.io/name": "actsearch", "actsearch.io/search": self.search}})
        if previous is None and self.owner_uid:
            metadata["ownerReferences"] = [{"apiVersion": API_VERSION, "kind": KIND,
                                            "name": self.search, "uid": self.owner_uid}]
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata,
                "spec": spec}

    def _still_mine(self, now: float) -> bool:
        return self._renewed is not None and now - self._renewed < self.duration

    def held(self) -> bool:
        """Whether this operator holds the Lease now: renewed when a third of its duration has
        passed, taken when it is free, released or expired; False while another holds it."""
        now = self.clock()
        if self._renewed is not None and now - self._renewed < self.duration / 3:
            return True
        try:
            return self._acquire(now)
        except TemporaryUnavailable as e:
            mine = self._still_mine(now)
            log.warning("search %s/%s: its Lease could not be read or renewed (%s); %s",
                        self.namespace, self.search, e,
                        "still held until it expires" if mine else "not driving it")
            return mine

    def _acquire(self, now: float) -> bool:
        try:
            lease = self.cluster.read_lease(self.namespace, self.name)
        except NotFound:
            try:
                self._took(self.cluster.create_lease(self.namespace, self._body(None)), now)
                return True
            except AlreadyExists:  # another operator created it first
                self._renewed = None
                return False
        spec = lease.get("spec") or {}
        version = str(lease["metadata"].get("resourceVersion"))
        if self._observed is None or self._observed[0] != version:
            self._observed = (version, now)
        holder = spec.get("holderIdentity")
        duration = float(spec.get("leaseDurationSeconds") or self.duration)
        expired = now - self._observed[1] >= duration
        if holder and holder != self.holder and not expired:
            self._renewed = None
            return False
        if holder and holder != self.holder:
            log.info("search %s/%s: the Lease of %s expired (no renewal for %.0f s); taking "
                     "the search over", self.namespace, self.search, holder, duration)
        try:
            self._took(self.cluster.replace_lease(self.namespace, self._body(lease)), now)
        except (Conflict, NotFound):  # another operator wrote it first (or the search went)
            self._renewed = None
            return False
        return True

    def _took(self, lease: dict[str, Any], now: float) -> None:
        self._lease, self._renewed = lease, now
        self._observed = (str(lease["metadata"].get("resourceVersion")), now)

    def release(self) -> None:
        """Give the Lease up (a clean stop): a peer takes the search over at its next look,
        not a Lease duration later. Best effort: an expired Lease frees it anyway."""
        if self._lease is None or self._renewed is None:
            return
        self._renewed = None
        body = dict(self._lease)
        body["spec"] = {k: v for k, v in (body.get("spec") or {}).items()
                        if k not in ("holderIdentity", "acquireTime", "renewTime")}
        try:
            self.cluster.replace_lease(self.namespace, body)
        except (ConfigError, TemporaryUnavailable) as e:  # taken, gone, or unreachable
            log.info("search %s/%s: its Lease was not released (%s); it expires instead",
                     self.namespace, self.search, e)
