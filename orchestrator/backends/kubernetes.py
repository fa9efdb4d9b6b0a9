"""Children as ``batch/v1`` Jobs: what a search's Jobs look like, and reading their state. The
API calls go through the Kubernetes adapter (``orchestrator.adapters.kube.Cluster``).

A Job is named after its launch id (deterministic): a child trained alone is labelled
``actsearch.io/trial: <trial id>``; a pack of children trained side by side (``packing``) is
labelled ``actsearch.io/pack: <pack id>`` and annotated ``actsearch.io/trials: <id>,<id>,...``
(Job and pod alike, so ``actsearch-ctl logs`` finds the pod of a packed trial). Every Job is
labelled ``app.kubernetes.io/*`` plus ``actsearch.io/search``, owned by its ActivationSearch
(deleting the search garbage-collects its Jobs), and carries a ``podFailurePolicy`` that fails
fast on the trainer's permanent exit codes and ignores node disruptions. ``job_manifest`` is a
pure function over plain data, so tests assert on the dict; ``KubernetesBackend`` is the thin
layer that sends it through the adapter.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from orchestrator.adapters.kube import (
    DEFAULT_BACKOFF,
    GROUP,
    KIND,
    PLURAL,
    VERSION,
    Cluster,
    Conflict,
    NotFound,
)
from orchestrator.adapters.retry import Backoff
from orchestrator.backends.base import ChildState, Launch
from orchestrator.contract import PERMANENT_EXIT_CODES, TRIAL_SPEC_ENV
from orchestrator.spec import KubernetesBackendSpec

log = logging.getLogger(__name__)

__all__ = [
    "GROUP",
    "KIND",
    "PLURAL",
    "TRIAL_SPEC_ENV",
    "VERSION",
    "KubernetesBackend",
    "child_labels",
    "job_manifest",
    "job_state",
    "pack_members",
]

CONTAINER = "trainer"
SEARCH_LABEL = f"{GROUP}/search"
TRIAL_LABEL = f"{GROUP}/trial"
PACK_LABEL = f"{GROUP}/pack"
TRIALS_ANNOTATION = f"{GROUP}/trials"
TRAINER_ARGS = ["--json-logs"]
"""The image's default command is ``--help``: a Job must name its arguments. The trial spec comes
from ``$ACTSEARCH_TRIAL_SPEC`` and the MLflow run from ``$MLFLOW_RUN_ID`` (a pack's members name
their own runs in the spec)."""
WRITABLE_ENV = {"HOME": "/tmp", "ACTSEARCH_CACHE_DIR": "/tmp/actsearch-cache"}
"""The root filesystem is read-only: caches (data, torch.compile, Triton, matplotlib) go to the
``/tmp`` emptyDir."""


def child_labels(search: str, trial_id: str, pack: bool = False) -> dict[str, str]:
    """Labels of a launch's Job and pod: ``trial_id`` is the trial's id, or with ``pack`` the
    pack's id."""
    return {
        "app.kubernetes.io/name": "actsearch",
        "app.kubernetes.io/component": "child",
        "app.kubernetes.io/part-of": "actsearch",
        "app.kubernetes.io/managed-by": "actsearch-controller",
        SEARCH_LABEL: search,
        PACK_LABEL if pack else TRIAL_LABEL: trial_id,
    }


def pack_members(annotations: dict[str, str] | None) -> list[str]:
    """The trial ids a pack's Job or pod trains (its ``actsearch.io/trials`` annotation)."""
    value = (annotations or {}).get(TRIALS_ANNOTATION, "")
    return [t for t in value.split(",") if t]


def job_manifest(
    launch: Launch,
    search: str,
    namespace: str,
    settings: KubernetesBackendSpec,
    owner_uid: str | None = None,
    s3_endpoint: str | None = None,
) -> dict[str, Any]:
    """The Job of one launch (a trial, or a pack of trials), as the API server expects it."""
    labels = child_labels(search, launch.trial_id, launch.is_pack)
    annotations = {TRIALS_ANNOTATION: ",".join(launch.members)} if launch.is_pack else {}
    if settings.queue_name:
        labels["kueue.x-k8s.io/queue-name"] = settings.queue_name
    env = [{"name": k, "value": v} for k, v in sorted({**WRITABLE_ENV, **launch.env}.items())]
    env.append({"name": TRIAL_SPEC_ENV, "value": json.dumps(launch.trial_spec, sort_keys=True)})
    if s3_endpoint:
        env.append({"name": "MLFLOW_S3_ENDPOINT_URL", "value": s3_endpoint})
    limits = dict(settings.resources.limits)
    requests = dict(settings.resources.requests)
    if settings.gpus:
        limits["nvidia.com/gpu"] = str(settings.gpus)
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": settings.image,
        "imagePullPolicy": settings.image_pull_policy,
        "args": list(TRAINER_ARGS),
        "env": env,
        "resources": {k: v for k, v in (("limits", limits), ("requests", requests)) if v},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [
            {"name": "tmp", "mountPath": "/tmp"},
            {"name": "dshm", "mountPath": "/dev/shm"},
        ],
    }
    if settings.credentials_secret:
        container["envFrom"] = [{"secretRef": {"name": settings.credentials_secret}}]
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "containers": [container],
        "volumes": [
            {"name": "tmp", "emptyDir": {}},
            {"name": "dshm", "emptyDir": {"medium": "Memory"}},
        ],
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
    }
    if settings.service_account:
        pod_spec["serviceAccountName"] = settings.service_account
    if settings.priority_class:
        pod_spec["priorityClassName"] = settings.priority_class
    if settings.node_selector:
        pod_spec["nodeSelector"] = dict(settings.node_selector)
    if settings.tolerations:
        pod_spec["tolerations"] = [t.model_dump(exclude_none=True) for t in settings.tolerations]
    job_spec: dict[str, Any] = {
        "backoffLimit": settings.backoff_limit,
        "ttlSecondsAfterFinished": settings.ttl_seconds_after_finished,
        "podFailurePolicy": {
            "rules": [
                {"action": "FailJob",
                 "onExitCodes": {"containerName": CONTAINER, "operator": "In",
                                 "values": list(PERMANENT_EXIT_CODES)}},
                {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
            ]
        },
        "template": {"metadata": {"labels": labels, **_maybe("annotations", annotations)},
                     "spec": pod_spec},
    }
    if settings.active_deadline_seconds:
        job_spec["activeDeadlineSeconds"] = settings.active_deadline_seconds
    metadata: dict[str, Any] = {"name": launch.trial_id, "namespace": namespace, "labels": labels,
                                **_maybe("annotations", annotations)}
    if owner_uid:
        metadata["ownerReferences"] = [{
            "apiVersion": f"{GROUP}/{VERSION}", "kind": KIND, "name": search, "uid": owner_uid,
            "controller": True, "blockOwnerDeletion": True,
        }]
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": job_spec}


def _maybe(key: str, value: dict[str, str]) -> dict[str, Any]:
    return {key: dict(value)} if value else {}


def job_state(job: dict[str, Any] | None) -> ChildState:
    """Map a Job's status onto a child phase. Suspended or not yet running: queued (never
    failed); a Job whose pod was evicted keeps retrying and stays running or queued."""
    if job is None:
        return ChildState("missing")
    status = job.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or []
                  if c.get("status") == "True"}
    if "Complete" in conditions or "SuccessCriteriaMet" in conditions:
        return ChildState("succeeded", exit_code=0)
    if "Failed" in conditions or "FailureTarget" in conditions:
        c = conditions.get("Failed") or conditions["FailureTarget"]
        reason = ": ".join(x for x in (c.get("reason"), c.get("message")) if x) or "Job failed"
        code = re.search(r"exit code (\d+)", c.get("message") or "")
        return ChildState("failed", reason=reason, exit_code=int(code.group(1)) if code else None)
    if "Suspended" in conditions or (job.get("spec") or {}).get("suspend"):
        return ChildState("queued", reason="suspended")
    if status.get("active") or status.get("ready"):
        return ChildState("running")
    return ChildState("queued")


class KubernetesBackend:
    """Creates and reads the Jobs of one search in one namespace, through ``cluster``."""

    def __init__(
        self,
        cluster: Cluster,
        search: str,
        namespace: str,
        settings: KubernetesBackendSpec,
        owner_uid: str | None = None,
        s3_endpoint: str | None = None,
        backoff: Backoff = DEFAULT_BACKOFF,
    ) -> None:
        self.cluster = cluster.with_backoff(backoff)
        self.search = search
        self.namespace = namespace
        self.settings = settings
        self.owner_uid = owner_uid
        self.s3_endpoint = s3_endpoint
        self.gpus_per_child = settings.gpus

    def launch(self, launch: Launch) -> None:
        body = job_manifest(launch, self.search, self.namespace, self.settings, self.owner_uid,
                            self.s3_endpoint)
        try:
            self.cluster.create_job(self.namespace, body)
        except Conflict:  # exists: a restarted controller launching what already runs
            log.info("Job %s already exists; re-attached", launch.trial_id)

    def state(self, trial_id: str) -> ChildState:
        try:
            return job_state(self.cluster.job(self.namespace, trial_id))
        except NotFound:
            return ChildState("missing")

    def list_trials(self) -> list[str]:
        """Launch ids (trial or pack ids) of this search's Jobs, by label."""
        return self.cluster.job_names(self.namespace, f"{SEARCH_LABEL}={self.search}")

    def cancel(self, trial_id: str) -> None:
        try:
            self.cluster.delete_job(self.namespace, trial_id)
        except NotFound:
            pass  # already gone

    def close(self) -> None:
        """Nothing to release: Jobs outlive the controller by design."""
