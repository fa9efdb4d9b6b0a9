"""A search in a cluster, wired from its ActivationSearch object: the counterpart of
``embedded.py``.

The spec is the object's ``.spec`` with ``metadata.name`` as its name. Children are Jobs in the
search's namespace, owned by the search (so deleting it garbage-collects them). Unless the spec
names it, MLflow is the operator's ``--tracking-uri``.

Searches are kept apart (``orchestrator.identity``): a search is its namespace, name and
``metadata.uid``, and its MLflow runs, checkpoint and Jobs carry all three. Its checkpoints go to
``<--storage-uri>/<namespace>/<name>``; a ``storage.uri`` may only name a folder below that.
When that place holds the checkpoint of another uid (an earlier object of the same name), the
search starts fresh in ``<that place>/<uid>``: a new object is a new search. The evaluation
cache reuses only results sealed by this installation (``orchestrator.trust``), in the scope the
operator was given. ``search_status`` turns the controller's progress into the object's
``.status``: summaries only, never a per-trial list.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.adapters.kube import Cluster
from orchestrator.adapters.retry import Backoff
from orchestrator.adapters.storage import Store, open_store
from orchestrator.backends.kubernetes import KubernetesBackend, plain_credentials
from orchestrator.cluster.policy import ChildPolicy, Given, enforce
from orchestrator.errors import ConfigError
from orchestrator.identity import SearchIdentity, claim, confine, foreign_location
from orchestrator.loop.amend import Amendment, amend
from orchestrator.loop.assembly import assemble_controller
from orchestrator.loop.checkpoint import stored_owner, stored_spec
from orchestrator.loop.controller import Controller
from orchestrator.loop.tracker import Tracker
from orchestrator.space.expr import to_math
from orchestrator.spec import SearchSpec, check_backend, parse_spec
from orchestrator.trust import DEFAULT_CACHE_SCOPE, CacheScope, Trust

log = logging.getLogger(__name__)


def _mlflow_tracker(uri: str, experiment: str, owner: SearchIdentity,
                    trust: Trust | None) -> Tracker:
    from orchestrator.adapters.tracking import MlflowTracker

    return MlflowTracker(uri, experiment, owner=owner, trust=trust)


@dataclass(frozen=True)
class ClusterDefaults:
    """What the operator supplies where a search's spec is silent."""

    tracking_uri: str | None = None
    storage_uri: str | None = None  # s3://bucket/prefix: a search's checkpoints go below it
    s3_endpoint: str | None = None  # passed to children as MLFLOW_S3_ENDPOINT_URL
    instance: str | None = None  # the chart's release: children's app.kubernetes.io/instance
    poll_interval: float = 10.0
    backoff: Backoff = Backoff()
    make_tracker: Callable[[str, str, SearchIdentity, Trust | None], Tracker] = _mlflow_tracker
    make_store: Callable[[str, str | None], Store] = field(default=open_store)
    spec_defaults: Mapping[str, Any] = field(default_factory=dict)
    """A spec fragment merged under every search's spec (the search's own values win)."""
    trust_key: bytes | None = None
    """The installation's secret sealing results for the evaluation cache; None: no cache."""
    cache_scope: CacheScope = DEFAULT_CACHE_SCOPE
    """Whose sealed results a search reuses: its namespace's, or the whole installation's."""
    trust_secret: str | None = None
    """The Secret holding ``trust_key``: no child may name it as its credentials."""
    policy: ChildPolicy = field(default_factory=ChildPolicy)
    """What a search may ask for beyond what the operator gives (``orchestrator.cluster.policy``)."""

    def admit(self, spec: SearchSpec, subject: str) -> None:
        """PolicyViolation naming every field of ``spec`` outside the policy (before anything
        is created or contacted for it)."""
        given = Given.of(self.spec_defaults, self.tracking_uri, self.storage_uri, self.s3_endpoint)
        enforce(self.policy, spec, given, subject)


def split_defaults(fragment: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str | None]]:
    """Split a defaults file (a spec fragment, e.g. the chart's ConfigMap) into what is merged
    under each search's spec and what the operator keeps for itself: ``storage.uri`` is a
    *prefix* below which each search gets its own checkpoint folder, so it must not be copied
    into every spec as is; ``tracking.uri`` and ``storage.endpoint_url`` are the operator's
    defaults too."""
    spec = {k: v for k, v in fragment.items() if k != "storage"}
    tracking = dict(spec.pop("tracking", None) or {})
    own = {
        "tracking_uri": tracking.pop("uri", None),
        "storage_uri": (fragment.get("storage") or {}).get("uri"),
        "s3_endpoint": (fragment.get("storage") or {}).get("endpoint_url"),
    }
    if tracking:
        spec["tracking"] = tracking
    return spec, own


def merge_under(defaults: Mapping[str, Any], spec: Mapping[str, Any]) -> dict[str, Any]:
    """``spec`` over ``defaults``, mapping by mapping; anything else in ``spec`` replaces."""
    out = dict(defaults)
    for key, value in spec.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge_under(out[key], value)
        else:
            out[key] = value
    return out


def search_ref(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace')}/{meta.get('name')}"


def spec_of(obj: Mapping[str, Any], spec_defaults: Mapping[str, Any] | None = None) -> SearchSpec:
    """The search spec of an ActivationSearch object over the operator's defaults;
    ConfigError names every bad field."""
    meta = obj.get("metadata") or {}
    raw = obj.get("spec")
    if not isinstance(raw, Mapping):
        raise ConfigError(f"ActivationSearch {search_ref(obj)} has no spec mapping")
    merged = merge_under(spec_defaults or {}, raw)
    spec = parse_spec({**merged, "name": meta.get("name")}, f"ActivationSearch {search_ref(obj)}")
    check_backend((raw.get("backend") or {}).get("kind"), "kubernetes",
                  f"ActivationSearch {search_ref(obj)}")
    job_ns = spec.backend.kubernetes.namespace
    if job_ns not in (None, meta.get("namespace")):
        raise ConfigError(
            f"ActivationSearch {search_ref(obj)}: backend.kubernetes.namespace is {job_ns!r}, but "
            "a search's Jobs must live in its own namespace to be owned (and cleaned up) by it; "
            "leave backend.kubernetes.namespace out or create the search in that namespace"
        )
    return spec


def tracking_uri(spec: SearchSpec, defaults: ClusterDefaults, ref: str) -> str:
    uri = spec.tracking.uri or defaults.tracking_uri
    if not uri:
        raise ConfigError(
            f"ActivationSearch {ref} names no MLflow server and the operator has no default: "
            "set spec.tracking.uri, or start the operator with --tracking-uri"
        )
    if uri.startswith(("sqlite:", "file:", "/")) or "://" not in uri:
        raise ConfigError(
            f"ActivationSearch {ref}: tracking URI {uri!r} is local to the controller's pod, "
            "where children cannot log to it; use an MLflow server (http://...)"
        )
    return uri


def storage_uri(spec: SearchSpec, defaults: ClusterDefaults, namespace: str) -> str:
    """Where the search keeps its checkpoints: confined to its own folder under the operator's
    root (``identity.confine``), or under a root of ``policy.storage_uris`` (again at
    ``<root>/<namespace>/<name>``); ConfigError naming ``storage.uri`` when it points elsewhere."""
    if not defaults.storage_uri:
        raise ConfigError(
            f"ActivationSearch {namespace}/{spec.name}: the operator has no storage root, so "
            "searches' checkpoints cannot be kept apart; start the operator with --storage-uri "
            "(s3://bucket/prefix)"
        )
    try:
        return confine(spec.storage.uri, defaults.storage_uri, namespace, spec.name)
    except ConfigError as e:
        for root in defaults.policy.storage_uris:  # more roots the policy lets searches use
            try:
                return confine(spec.storage.uri, root, namespace, spec.name)
            except ConfigError:
                continue
        raise ConfigError(f"ActivationSearch {namespace}/{spec.name}: {e}") from e


def check_isolation(spec: SearchSpec, defaults: ClusterDefaults, namespace: str) -> None:
    """What keeps a search from reaching into others', checked before anything is created: its
    storage confined (``storage_uri``), and no child reading the key that seals results."""
    storage_uri(spec, defaults, namespace)
    secret = spec.backend.kubernetes.credentials_secret
    if secret is not None and secret == defaults.trust_secret:
        raise ConfigError(
            f"ActivationSearch {namespace}/{spec.name}: backend.kubernetes.credentials_secret "
            f"{secret!r} holds the controller's key for sealing results; children may not read "
            "it: name the Secret of S3 credentials instead")


def identity_of(obj: Mapping[str, Any]) -> SearchIdentity:
    """The identity of an ActivationSearch: namespace, name and uid."""
    meta = obj["metadata"]
    return SearchIdentity(meta["name"], meta["uid"], meta["namespace"])


def own_store(spec: SearchSpec, defaults: ClusterDefaults, me: SearchIdentity) -> Store:
    """The search's checkpoint store: its confined folder, unless that holds the checkpoint of
    another uid (an earlier object of the same name): then a folder named after its uid below
    it, where it starts fresh (or resumes what it wrote there before)."""
    assert me.namespace is not None
    uri = storage_uri(spec, defaults, me.namespace)
    endpoint = spec.storage.endpoint_url or defaults.s3_endpoint
    store = defaults.make_store(uri, endpoint)
    _, owner = stored_owner(store)
    if claim(owner, me) != "foreign":
        return store
    moved = foreign_location(uri, me)
    log.info("search %s: %s holds the checkpoint of another search of this name (uid %s); "
             "this one keeps its own in %s", me.describe(), uri, owner.uid if owner else "?",
             moved)
    return defaults.make_store(moved, endpoint)


def build_controller(obj: Mapping[str, Any], spec: SearchSpec, defaults: ClusterDefaults,
                     cluster: Cluster) -> tuple[Controller, Amendment]:
    """The controller of one ActivationSearch, children as Jobs owned by it (created through
    ``cluster``, the operator's connection).

    ``spec`` is the object's spec as it is now; the controller runs what ``amend`` makes of it
    against the spec stored in the search's checkpoint: the edit when it changes only live
    fields, else the stored spec (the returned ``Amendment`` says which, for the operator to
    report)."""
    me = identity_of(obj)
    namespace, ref = me.namespace or "", search_ref(obj)
    uri = tracking_uri(spec, defaults, ref)
    try:  # children get the URI as a Job env value: refuse a password in it before anything
        plain_credentials({"tracking.uri": uri})
    except ConfigError as e:
        raise ConfigError(f"ActivationSearch {ref}: {e}") from e
    store = own_store(spec, defaults, me)
    amendment = amend(stored_spec(store, spec.name, me), spec)
    spec = amendment.spec
    trust = (Trust(defaults.trust_key, namespace, defaults.cache_scope)
             if defaults.trust_key else None)
    tracker = defaults.make_tracker(uri, spec.tracking.experiment, me, trust)
    backend = KubernetesBackend(
        cluster, spec.name, namespace, spec.backend.kubernetes, owner_uid=me.uid,
        s3_endpoint=spec.storage.endpoint_url or defaults.s3_endpoint, backoff=defaults.backoff,
        instance=defaults.instance,
    )
    ctl = assemble_controller(spec, tracker=tracker, store=store, backend=backend,
                              tracking_uri=uri, poll_interval=defaults.poll_interval,
                              identity=me)
    return ctl, amendment


def search_status(ctl: Controller, phase: str, message: str, generation: int | None
                  ) -> dict[str, Any]:
    """The ``.status`` of a search from its controller's progress."""
    p = ctl.progress()
    status: dict[str, Any] = {
        "phase": phase,
        "trialsDone": p.trained - p.running,
        "trialsRunning": p.running,
        "trialsFailed": p.failed,
        "trialsBudget": p.budget,
        "cacheHits": p.cache_hits + p.duplicates,
        "parentRunId": ctl.parent_run_id,
        "message": message,
        "observedGeneration": generation,
    }
    if p.best is not None and p.best.reward is not None and math.isfinite(p.best.reward):
        accuracy, expression = round(float(p.best.reward), 6), to_math(p.best.candidate.expr)
        status.update(bestAccuracy=accuracy, bestFunction=expression,
                      bestFingerprint=p.best.fingerprint)
        status["best"] = {"trial": p.best.trial_id, "expression": expression,
                          "valAccuracy": accuracy, "fingerprint": p.best.fingerprint}
        if p.best.run_id:
            status["best"]["runId"] = p.best.run_id
    return status


def progress_message(ctl: Controller, finished: bool = False) -> str:
    p = ctl.progress()
    done = p.trained - p.running
    text = f"{done} of {p.budget} children trained, "
    if not finished:  # a finished search may hold queued trials it will never launch
        packed = f" in {p.packs} pack Jobs" if p.packs != p.running else ""
        text += f"{p.running} running{packed}, {p.queued} queued, "
    text += f"{p.failed} failed"
    if p.best is not None and p.best.reward is not None:
        text += f"; best validation accuracy {p.best.reward:.4f} by {to_math(p.best.candidate.expr)}"
    return text + "."
