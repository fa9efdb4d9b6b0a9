"""A search in a cluster, wired from its ActivationSearch object: the counterpart of
``embedded.py``.

The spec is the object's ``.spec`` with ``metadata.name`` as its name. Children are Jobs in the
search's namespace, owned by the search (so deleting it garbage-collects them). Unless the spec
names them, MLflow is the operator's ``--tracking-uri`` and checkpoints go to
``<--storage-uri>/<namespace>/<name>/``. ``search_status`` turns the controller's progress into
the object's ``.status``: summaries only, never a per-trial list.
"""

from __future__ import annotations

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
from orchestrator.loop.amend import Amendment, amend
from orchestrator.loop.assembly import assemble_controller
from orchestrator.loop.checkpoint import stored_spec
from orchestrator.loop.controller import Controller
from orchestrator.loop.tracker import Tracker
from orchestrator.space.expr import to_math
from orchestrator.spec import SearchSpec, check_backend, parse_spec


def _mlflow_tracker(uri: str, experiment: str) -> Tracker:
    from orchestrator.adapters.tracking import MlflowTracker

    return MlflowTracker(uri, experiment)


@dataclass(frozen=True)
class ClusterDefaults:
    """What the operator supplies where a search's spec is silent."""

    tracking_uri: str | None = None
    storage_uri: str | None = None  # s3://bucket/prefix: a search's checkpoints go below it
    s3_endpoint: str | None = None  # passed to children as MLFLOW_S3_ENDPOINT_URL
    instance: str | None = None  # the chart's release: children's app.kubernetes.io/instance
    poll_interval: float = 10.0
    backoff: Backoff = Backoff()
    make_tracker: Callable[[str, str], Tracker] = _mlflow_tracker
    make_store: Callable[[str, str | None], Store] = field(default=open_store)
    spec_defaults: Mapping[str, Any] = field(default_factory=dict)
    """A spec fragment merged under every search's spec (the search's own values win)."""
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
    if spec.storage.uri:
        return spec.storage.uri
    if not defaults.storage_uri:
        raise ConfigError(
            f"ActivationSearch {namespace}/{spec.name} names no checkpoint storage and the "
            "operator has no default: set spec.storage.uri (s3://bucket/prefix), or start the "
            "operator with --storage-uri"
        )
    return f"{defaults.storage_uri.rstrip('/')}/{namespace}/{spec.name}"


def build_controller(obj: Mapping[str, Any], spec: SearchSpec, defaults: ClusterDefaults,
                     cluster: Cluster) -> tuple[Controller, Amendment]:
    """The controller of one ActivationSearch, children as Jobs owned by it (created through
    ``cluster``, the operator's connection).

    ``spec`` is the object's spec as it is now; the controller runs what ``amend`` makes of it
    against the spec stored in the search's checkpoint: the edit when it changes only live
    fields, else the stored spec (the returned ``Amendment`` says which, for the operator to
    report)."""
    meta = obj["metadata"]
    namespace, ref = meta["namespace"], search_ref(obj)
    uri = tracking_uri(spec, defaults, ref)
    try:  # children get the URI as a Job env value: refuse a password in it before anything
        plain_credentials({"tracking.uri": uri})
    except ConfigError as e:
        raise ConfigError(f"ActivationSearch {ref}: {e}") from e
    store = defaults.make_store(storage_uri(spec, defaults, namespace),
                                spec.storage.endpoint_url or defaults.s3_endpoint)
    amendment = amend(stored_spec(store, spec.name), spec)
    spec = amendment.spec
    tracker = defaults.make_tracker(uri, spec.tracking.experiment)
    backend = KubernetesBackend(
        cluster, spec.name, namespace, spec.backend.kubernetes, owner_uid=meta["uid"],
        s3_endpoint=spec.storage.endpoint_url or defaults.s3_endpoint, backoff=defaults.backoff,
        instance=defaults.instance,
    )
    ctl = assemble_controller(spec, tracker=tracker, store=store, backend=backend,
                              tracking_uri=uri, poll_interval=defaults.poll_interval)
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
