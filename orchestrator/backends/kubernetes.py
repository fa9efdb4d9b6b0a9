"""Children as ``batch/v1`` Jobs: what a search's Jobs look like, and reading their state. The
API calls go through the Kubernetes adapter (``orchestrator.adapters.kube.Cluster``).

A Job is named after its launch id and its search's identity (deterministic:
``<search>-<8 hex digits of namespace, name and uid>-t00003``, ``orchestrator.identity.job_name``),
so a search re-created under an old name never re-attaches to the Jobs of the one before; without
an owner uid (tools, tests) after its launch id alone. A child trained alone is labelled
``actsearch.io/trial: <trial id>``; a pack of children trained side by side (``packing``) is
labelled ``actsearch.io/pack: <pack id>`` and annotated ``actsearch.io/trials: <id>,<id>,...``
(Job and pod alike, so ``actsearch-ctl logs`` finds the pod of a packed trial). Every Job is
labelled ``app.kubernetes.io/*`` plus ``actsearch.io/search`` and ``actsearch.io/search-uid``,
owned by its ActivationSearch (deleting the search garbage-collects its Jobs), and carries a
``podFailurePolicy`` that ignores node disruptions (pre-emption, eviction, drain: retried,
whatever the exit code) and then fails fast on the trainer's permanent exit codes (bad input,
non-finite loss, out of memory, 137 from the OOM killer), and an ``activeDeadlineSeconds``
(``default_deadline`` unless the spec sets one).

A child that cannot start is a failure, not a child forever ``running`` or ``queued`` holding a
GPU or a quota: ``pods_state`` reads the Job's pods (and, when there are none, the Job
controller's ``FailedCreate`` Events) and fails the child at once on ``ImagePullBackOff``,
``ErrImagePull``, ``InvalidImageName``, ``CreateContainerConfigError`` or a ``FailedCreate``
(a missing ServiceAccount, a refused pod), and after ``max_pending_seconds`` on a pod that stays
Pending or a Job kept from creating one by a ResourceQuota; the backend then deletes the Job.
The failure names the Kubernetes reason and message, and the state carries the reason as data
(``ChildState.cause``: ``contract.Cause``). A running pod's container start is the child's
``started_at``.

Credentials never appear in a Job as plain values (anyone who may read Jobs or pods would read
them): a URI with ``user:password@`` in a child's environment is refused (``plain_credentials``,
checked before any Job exists), and children get credentials only through ``envFrom`` of the
Secrets the spec names: ``credentials_secret`` (a read-only S3 key for data sets) and
``tracking_secret`` (MLflow basic authentication). With ``instance`` (the chart's release) a
child is labelled ``app.kubernetes.io/instance``, which the chart's NetworkPolicy admits to MLflow
and MinIO.

A Job that failed without naming an exit code (``BackoffLimitExceeded``, ``DeadlineExceeded``)
takes its last ended pod's (``last_exit``), so a child that exited 4 every time (MLflow or S3
unreachable) is seen as such by the failure brake. A failed child's cause is its exit code's
(``contract.exit_cause``) where one is known, except a Job past its deadline
(``DeadlineExceeded``: its last pod was stopped, whatever it exited with).

``job_manifest``, ``job_state``, ``pods_state`` and ``last_exit`` are pure functions over plain
data, so tests assert on dicts; ``KubernetesBackend`` is the thin layer that talks through the adapter.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Callable, Sequence
from datetime import datetime
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
from orchestrator.contract import (
    PERMANENT_EXIT_CODES,
    TRIAL_SPEC_ENV,
    Cause,
    TrainConfig,
    exit_cause,
)
from orchestrator.errors import ConfigError
from orchestrator.identity import SearchIdentity, job_name
from orchestrator.redact import has_credentials, redact
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
    "default_deadline",
    "job_manifest",
    "job_state",
    "last_exit",
    "launch_job_name",
    "pack_members",
    "plain_credentials",
    "pods_state",
]

CONTAINER = "trainer"
KILLED = 137
"""The SIGKILL of the kernel's OOM killer: failed for good with ``PERMANENT_EXIT_CODES`` (bad
input, non-finite loss, CUDA out of memory: retrying the same function cannot help). A disrupted
pod (pre-empted, evicted) also dies with 137; the policy's first rule retries it."""
EXIT_MEANINGS = {5: "out of device memory (CUDA out of memory)",
                 137: "killed, most likely by the out-of-memory killer (OOMKilled)"}
CANNOT_START = frozenset(c.value for c in (Cause.IMAGE_PULL_BACK_OFF, Cause.ERR_IMAGE_PULL,
                                           Cause.INVALID_IMAGE_NAME,
                                           Cause.CREATE_CONTAINER_CONFIG_ERROR))
"""Container waiting reasons that fail a child at once: the image cannot be pulled, or a Secret
or ConfigMap its environment names is missing. Kubernetes keeps retrying them, holding the
pod's node resources, while nothing trains."""
DEADLINE_BASE_SECONDS = 1800
DEADLINE_SECONDS_PER_STEP = 1.0
"""``default_deadline``: half an hour for scheduling, pulling the image and the data, and then a
second per training step, ten to a hundred times what a step takes on a GPU (a ResNet-20 step
at batch 128 takes 10-100 ms): a net for a hung child, not a budget."""
SEARCH_LABEL = f"{GROUP}/search"
INSTANCE_LABEL = "app.kubernetes.io/instance"
SEARCH_UID_LABEL = f"{GROUP}/search-uid"
TRIAL_LABEL = f"{GROUP}/trial"
PACK_LABEL = f"{GROUP}/pack"
TRIALS_ANNOTATION = f"{GROUP}/trials"
TRAINER_ARGS = ["--json-logs"]
"""The image's default command is ``--help``: a Job must name its arguments. The trial spec comes
from ``$ACTSEARCH_TRIAL_SPEC`` and the MLflow run from ``$MLFLOW_RUN_ID`` (a pack's members name
their own runs in the spec)."""
CHILD_UID = 10001
"""The trainer image's user (trainer_image/Dockerfile): set explicitly, so a child runs as this
high uid (no clash with a user of the node) whatever user another image names."""
WRITABLE_ENV = {"HOME": "/tmp", "ACTSEARCH_CACHE_DIR": "/tmp/actsearch-cache"}
"""The root filesystem is read-only: caches (data, torch.compile, Triton, matplotlib) go to the
``/tmp`` emptyDir."""


def child_labels(search: str, trial_id: str, pack: bool = False,
                 owner_uid: str | None = None) -> dict[str, str]:
    """Labels of a launch's Job and pod: ``trial_id`` is the trial's id, or with ``pack`` the
    pack's id; ``owner_uid`` the search's uid."""
    labels = {
        "app.kubernetes.io/name": "actsearch",
        "app.kubernetes.io/component": "child",
        "app.kubernetes.io/part-of": "actsearch",
        "app.kubernetes.io/managed-by": "actsearch-controller",
        SEARCH_LABEL: search,
        PACK_LABEL if pack else TRIAL_LABEL: trial_id,
    }
    if owner_uid:
        labels[SEARCH_UID_LABEL] = owner_uid
    return labels


def launch_job_name(search: str, namespace: str, launch_id: str, owner_uid: str | None) -> str:
    """The name of a launch's Job: with the search's uid, ``identity.job_name``; else the launch
    id (as Jobs were named before searches had an identity)."""
    if not owner_uid:
        return launch_id
    return job_name(SearchIdentity(search, owner_uid, namespace), launch_id)


def pack_members(annotations: dict[str, str] | None) -> list[str]:
    """The trial ids a pack's Job or pod trains (its ``actsearch.io/trials`` annotation)."""
    value = (annotations or {}).get(TRIALS_ANNOTATION, "")
    return [t for t in value.split(",") if t]


def plain_credentials(env: dict[str, str]) -> None:
    """Refuse (ConfigError) an environment for a Job that holds a URI with credentials
    (``http://user:password@mlflow``): a Job's env values are plain text to whoever may read
    Jobs or pods in the namespace. The message names the variable and the way out, never the
    password."""
    for name, value in sorted(env.items()):
        if has_credentials(value):
            raise ConfigError(
                f"{name} {redact(value)!r} carries credentials (user:password@), which a child "
                "Job would hold as a plain value: remove them from the URI and put them in a "
                "Secret with the keys MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, "
                "named by backend.kubernetes.tracking_secret (the chart: mlflow.auth or "
                "tracking.existingSecret); the controller reads the same variables")


def job_manifest(
    launch: Launch,
    search: str,
    namespace: str,
    settings: KubernetesBackendSpec,
    owner_uid: str | None = None,
    s3_endpoint: str | None = None,
    instance: str | None = None,
) -> dict[str, Any]:
    """The Job of one launch (a trial, or a pack of trials), as the API server expects it;
    ConfigError for an environment with credentials in it (``plain_credentials``)."""
    plain_credentials(launch.env)
    labels = child_labels(search, launch.trial_id, launch.is_pack, owner_uid)
    if instance:
        labels[INSTANCE_LABEL] = instance
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
    secrets = [n for n in (settings.credentials_secret, settings.tracking_secret) if n]
    if secrets:
        container["envFrom"] = [{"secretRef": {"name": n}} for n in dict.fromkeys(secrets)]
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "containers": [container],
        "volumes": [
            {"name": "tmp", "emptyDir": {}},
            {"name": "dshm", "emptyDir": {"medium": "Memory"}},
        ],
        "securityContext": {"runAsNonRoot": True, "runAsUser": CHILD_UID, "runAsGroup": CHILD_UID,
                            "seccompProfile": {"type": "RuntimeDefault"}},
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
            "rules": [  # in order, the first that matches: a disrupted pod is retried first
                {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
                {"action": "FailJob",
                 "onExitCodes": {"containerName": CONTAINER, "operator": "In",
                                 "values": [*PERMANENT_EXIT_CODES, KILLED]}},
            ]
        },
        "template": {"metadata": {"labels": labels, **_maybe("annotations", annotations)},
                     "spec": pod_spec},
    }
    job_spec["activeDeadlineSeconds"] = settings.active_deadline_seconds or default_deadline(launch)
    name = launch_job_name(search, namespace, launch.trial_id, owner_uid)
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "labels": labels,
                                **_maybe("annotations", annotations)}
    if owner_uid:
        metadata["ownerReferences"] = [{
            "apiVersion": f"{GROUP}/{VERSION}", "kind": KIND, "name": search, "uid": owner_uid,
            "controller": True, "blockOwnerDeletion": True,
        }]
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": job_spec}


def default_deadline(launch: Launch) -> int:
    """A child's ``activeDeadlineSeconds`` when the spec sets none: ``DEADLINE_BASE_SECONDS``
    plus ``DEADLINE_SECONDS_PER_STEP`` per training step, summed over a pack's members (they
    share one device)."""
    members = launch.trial_spec.get("pack") or [launch.trial_spec]
    default_steps = TrainConfig.model_fields["steps"].default
    steps = sum(int((m.get("child") or {}).get("steps") or default_steps) for m in members)
    return DEADLINE_BASE_SECONDS + math.ceil(DEADLINE_SECONDS_PER_STEP * steps)


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
        exit_code = int(code.group(1)) if code else None
        if exit_code in EXIT_MEANINGS:
            reason = f"{EXIT_MEANINGS[exit_code]}; {reason}"
        return ChildState("failed", reason=reason, exit_code=exit_code,
                          cause=_failed_cause(c.get("reason"), exit_code))
    if "Suspended" in conditions or (job.get("spec") or {}).get("suspend"):
        return ChildState("queued", reason="suspended")
    if status.get("active") or status.get("ready"):
        return ChildState("running")
    return ChildState("queued")


def _failed_cause(job_reason: str | None, exit_code: int | None) -> Cause:
    """Why a Job failed: past its deadline, or what its trainer exited with (unknown: neither)."""
    if job_reason == Cause.DEADLINE_EXCEEDED.value:
        return Cause.DEADLINE_EXCEEDED
    return Cause.UNKNOWN if exit_code is None else exit_cause(exit_code)


def last_exit(pods: Sequence[dict[str, Any]]) -> tuple[int, str | None] | None:
    """The trainer container's exit code (and the kubelet's reason, such as ``OOMKilled``) in the
    last of a Job's pods that ended, or None when no pod ended. A Job that failed on its
    ``backoffLimit`` says only ``BackoffLimitExceeded``: the pods say why each attempt ended
    (exit code 4: MLflow or S3 unreachable), which the failure brake counts by cause."""
    ended = [p for p in pods if (p.get("status") or {}).get("phase") in ("Failed", "Succeeded")]
    ended.sort(key=lambda p: _seconds((p.get("metadata") or {}).get("creationTimestamp")) or 0.0)
    for pod in reversed(ended):
        for c in (pod.get("status") or {}).get("containerStatuses") or []:
            done = (c.get("state") or {}).get("terminated") or {}
            if c.get("name") == CONTAINER and done.get("exitCode") is not None:
                return int(done["exitCode"]), done.get("reason")
    return None


def with_exit(state: ChildState, pods: Sequence[dict[str, Any]]) -> ChildState:
    """A failed child whose Job's status names no exit code, with its last pod's."""
    seen = last_exit(pods) if state.phase == "failed" and state.exit_code is None else None
    if seen is None:
        return state
    code, why = seen
    reason = state.reason or "Job failed"
    if code in EXIT_MEANINGS:
        reason = f"{EXIT_MEANINGS[code]}; {reason}"
    elif why and why not in ("Error", "Completed"):
        reason = f"{why}; {reason}"
    cause = state.cause if state.cause is Cause.DEADLINE_EXCEEDED else (
        Cause.OOM_KILLED if why == Cause.OOM_KILLED.value else exit_cause(code))
    return ChildState(state.phase, reason, code, state.started_at, cause)


def _seconds(stamp: Any) -> float | None:
    """An API timestamp (RFC 3339, as plain data carries it) as epoch seconds."""
    if not stamp:
        return None
    try:
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _started_at(pod: dict[str, Any]) -> float | None:
    """When the trainer container started (running or since terminated), else None."""
    for c in (pod.get("status") or {}).get("containerStatuses") or []:
        state = c.get("state") or {}
        started = (state.get("running") or state.get("terminated") or {}).get("startedAt")
        if started:
            return _seconds(started)
    return None


def _cannot_start(pod: dict[str, Any]) -> tuple[Cause, str] | None:
    """The reason of a container waiting for something that will not come, and ``Reason:
    message``."""
    status = pod.get("status") or {}
    for c in [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]:
        waiting = (c.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in CANNOT_START:
            return (Cause(waiting["reason"]),
                    ": ".join(x for x in (waiting["reason"], waiting.get("message")) if x))
    return None


def _unscheduled(pod: dict[str, Any]) -> str:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "PodScheduled" and c.get("status") == "False":
            return ": ".join(x for x in (c.get("reason"), c.get("message")) if x)
    return ""


def pods_state(job: dict[str, Any], pods: Sequence[dict[str, Any]],
               events: Sequence[dict[str, Any]], now: float, max_pending: int | None
               ) -> ChildState | None:
    """What a Job's pods (and the Job controller's Events on it) say about a child whose Job
    neither finished nor is suspended: ``failed`` for a child that cannot start, ``queued``
    for one that waits, ``running`` with its start time; None when they say nothing (no pod
    yet, no event): the Job's status then decides."""
    live = [p for p in pods if (p.get("status") or {}).get("phase") in ("Pending", "Running")]
    live.sort(key=lambda p: _seconds((p.get("metadata") or {}).get("creationTimestamp")) or 0.0)
    if live:
        pod = live[-1]
        name = (pod.get("metadata") or {}).get("name")
        if pod["status"]["phase"] == "Running":
            return ChildState("running", started_at=_started_at(pod))
        stuck = _cannot_start(pod)
        if stuck:
            return ChildState("failed", reason=f"pod {name} cannot start: {stuck[1]}",
                              cause=stuck[0])
        since = _seconds((pod.get("metadata") or {}).get("creationTimestamp"))
        if max_pending is not None and since is not None and now - since > max_pending:
            why = _unscheduled(pod) or "its containers did not start"
            return ChildState("failed", reason=f"pod {name} was Pending for {now - since:.0f} s, "
                              f"more than max_pending_seconds ({max_pending}): {why}",
                              cause=Cause.PENDING_TOO_LONG)
        return ChildState("queued", reason=_unscheduled(pod) or None)
    refused = [e for e in events if e.get("reason") == "FailedCreate"]
    if not refused:
        return None
    message = str(refused[-1].get("message") or "")
    if "exceeded quota" in message:  # room may come free as other pods end: wait, bounded
        since = _seconds((job.get("status") or {}).get("startTime")) or \
            _seconds((job.get("metadata") or {}).get("creationTimestamp"))
        if max_pending is None or since is None or now - since <= max_pending:
            return ChildState("queued", reason=f"FailedCreate: {message}")
        return ChildState("failed", reason=f"no pod could be created for {now - since:.0f} s, "
                          f"more than max_pending_seconds ({max_pending}): FailedCreate: {message}",
                          cause=Cause.QUOTA_EXCEEDED)
    return ChildState("failed", reason=f"FailedCreate: {message}", cause=Cause.FAILED_CREATE)


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
        clock: Callable[[], float] = time.time,
        instance: str | None = None,
    ) -> None:
        self.cluster = cluster.with_backoff(backoff)
        self.clock = clock
        self._started: dict[str, float | None] = {}  # launch id -> its container's start
        self.search = search
        self.namespace = namespace
        self.settings = settings
        self.owner_uid = owner_uid
        self.s3_endpoint = s3_endpoint
        self.instance = instance
        self.gpus_per_child = settings.gpus
        self.reports_start = True  # a pod's container start (it may wait long for a node)
        self._legacy: set[str] = set()  # launches whose Job has the name of before identities

    def job_name(self, launch_id: str) -> str:
        """The name of the Job of ``launch_id``."""
        if launch_id in self._legacy:
            return launch_id
        return launch_job_name(self.search, self.namespace, launch_id, self.owner_uid)

    def launch(self, launch: Launch) -> None:
        body = job_manifest(launch, self.search, self.namespace, self.settings, self.owner_uid,
                            self.s3_endpoint, self.instance)
        try:
            self.cluster.create_job(self.namespace, body)
        except Conflict:  # exists: a restarted controller launching what already runs
            log.info("Job %s already exists; re-attached", body["metadata"]["name"])

    def _job(self, launch_id: str) -> dict[str, Any]:
        """The Job of a launch. One launched before Jobs carried the search's identity in their
        name (by a controller of an earlier version) is found under its old name, and taken only
        when its ownerReference is this search's uid. NotFound when there is none."""
        try:
            return self.cluster.job(self.namespace, self.job_name(launch_id))
        except NotFound:
            if not self.owner_uid or launch_id in self._legacy:
                raise
            old = self.cluster.job(self.namespace, launch_id)
            owners = (old.get("metadata") or {}).get("ownerReferences") or []
            if not any(o.get("uid") == self.owner_uid for o in owners):
                raise
            self._legacy.add(launch_id)
            return old

    def state(self, trial_id: str) -> ChildState:
        """The Job's status, and for a Job that neither finished nor is suspended its pods'
        (``pods_state``); a child that cannot start is failed and its Job deleted."""
        try:
            job = self._job(trial_id)
        except NotFound:
            self._started.pop(trial_id, None)
            return ChildState("missing")
        state = job_state(job)
        if state.phase == "failed" and state.exit_code is None:  # e.g. BackoffLimitExceeded
            state = with_exit(state, self.cluster.job_pods(self.namespace, self.job_name(trial_id)))
        if state.phase in ("succeeded", "failed") or state.reason == "suspended":
            return ChildState(state.phase, state.reason, state.exit_code,
                              self._started.pop(trial_id, None), state.cause)
        status = job.get("status") or {}
        if status.get("ready") and self._started.get(trial_id) is not None:
            return ChildState("running", started_at=self._started[trial_id])  # seen running
        name = self.job_name(trial_id)
        pods = self.cluster.job_pods(self.namespace, name)
        events = [] if pods else self.cluster.events_about(self.namespace, "Job", name)
        seen = pods_state(job, pods, events, self.clock(), self.settings.max_pending_seconds)
        if seen is None:
            return state
        if seen.phase == "running":
            self._started[trial_id] = seen.started_at
        if seen.phase == "failed":
            log.warning("child %s cannot start: %s; deleting its Job", trial_id, seen.reason)
            self.cancel(trial_id)
            self._started.pop(trial_id, None)
        return seen

    def list_trials(self) -> list[str]:
        """Names of this search's Jobs, by label (its uid's, when it has one)."""
        selector = f"{SEARCH_LABEL}={self.search}"
        if self.owner_uid:
            selector += f",{SEARCH_UID_LABEL}={self.owner_uid}"
        return self.cluster.job_names(self.namespace, selector)

    def cancel(self, trial_id: str) -> None:
        try:
            self.cluster.delete_job(self.namespace, self.job_name(trial_id))
        except NotFound:
            pass  # already gone

    def close(self) -> None:
        """Nothing to release: Jobs outlive the controller by design."""
