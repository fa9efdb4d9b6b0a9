"""A small Job controller for the fake API server (no real cluster runs here): it makes the pods
of ``batch/v1`` Jobs and keeps the Jobs' status as the real Job controller does, so the code
under test sees what a cluster would show it while children start, wait, fail or never start.

A test decides what becomes of each new pod with ``plan`` (a ``PodPlan`` per Job, e.g. left
Pending, or stuck in ``ImagePullBackOff``, or refused with ``FailedCreate``) and moves pods on
with ``run``, ``succeed`` and ``fail`` (exit code, OOMKilled, a DisruptionTarget condition).
The controller reconciles every Job in a thread, as the real one does, after each change:

- a Job that is not suspended gets one pod (``parallelism: 1``, ``completions: 1``), named
  ``<job>-<5 letters>``, labelled ``batch.kubernetes.io/job-name`` and ``controller-uid``,
  owned by the Job; or, with ``failed_create``, no pod and a Warning Event ``FailedCreate``;
- ``status.active``/``ready``/``failed``/``succeeded``, ``startTime`` and ``completionTime``;
- ``suspend``: the pods are deleted and the Job gets ``Suspended``; resumed, it starts again
  with a fresh ``startTime``;
- a failed pod goes through ``podFailurePolicy`` (rules in order: ``onExitCodes`` with
  ``In``/``NotIn``, ``onPodConditions``; actions ``FailJob``, ``Ignore``, ``Count``), then
  ``backoffLimit`` (``BackoffLimitExceeded``); ``activeDeadlineSeconds`` (``DeadlineExceeded``);
  a failing Job gets ``FailureTarget`` and then ``Failed`` with the real controller's reason
  and message, a succeeding one ``SuccessCriteriaMet`` and then ``Complete``;
- ``ttlSecondsAfterFinished``: a finished Job is deleted that long after its completion (its
  pods with it, through their ownerReferences).

Not implemented: ``parallelism``/``completions`` above 1, indexed Jobs, ``podReplacementPolicy``
(a replacement pod is made as soon as the failed one is terminal), pod backoff delays, the
``FailIndex`` action, and a kubelet (nothing runs; the test moves pods on).
"""

from __future__ import annotations

import copy
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tests.k8s.fake_apiserver import FakeApiServer, _kind_by_plural

CANNOT_START = ("ImagePullBackOff", "ErrImagePull", "CreateContainerConfigError")


@dataclass(frozen=True)
class PodPlan:
    """What becomes of a Job's new pod until the test moves it on.

    ``phase``: where it goes at once (``Pending``, ``Running``); ``waiting``: a container
    waiting reason that keeps it Pending (``ImagePullBackOff``, ``ErrImagePull``,
    ``CreateContainerConfigError``), with ``message``; ``unschedulable``: the scheduler's
    message on a Pending pod (``0/4 nodes are available: ...``); ``failed_create``: the pod is
    never made and the Job controller reports this message in a ``FailedCreate`` Event."""

    phase: str = "Pending"
    waiting: str | None = None
    message: str = ""
    unschedulable: str | None = None
    failed_create: str | None = None


def _stamp(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _seconds(stamp: str | None) -> float | None:
    if not stamp:
        return None
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def _true(obj: dict[str, Any], kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status") == "True"
               for c in (obj.get("status") or {}).get("conditions") or [])


class JobController:
    """The fake's Job controller: ``start()`` it on a fake (or use it as a context); the test
    sets ``plan`` and moves pods on. ``clock`` is the controller's time (deadlines, TTLs)."""

    def __init__(self, api: FakeApiServer, plan: Callable[[dict[str, Any]], PodPlan] | None = None,
                 clock: Callable[[], float] = time.time, interval: float = 0.02) -> None:
        self.api = api
        self.plan = plan or (lambda job: PodPlan())
        self.clock = clock
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failed_create_reported: set[str] = set()
        self._counted: dict[str, set[str]] = {}  # Job uid -> uids of failed pods counted
        self._ignored: dict[str, set[str]] = {}  # ... and ignored by the podFailurePolicy

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> JobController:
        self._thread = threading.Thread(target=self._loop, name="fake-job-controller", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> JobController:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.reconcile()

    # -- what the test does to pods ----------------------------------------------------------------

    def pods(self, namespace: str, job: str) -> list[dict[str, Any]]:
        return [p for p in self.api.items("pods", namespace)
                if (p["metadata"].get("labels") or {}).get("batch.kubernetes.io/job-name") == job]

    def run(self, namespace: str, job: str) -> None:
        """The Job's current pod starts running (its container started now)."""
        self._move(namespace, job, lambda pod: self._running(pod))

    def succeed(self, namespace: str, job: str) -> None:
        self._move(namespace, job, lambda pod: self._terminated(pod, "Succeeded", 0, "Completed"))

    def fail(self, namespace: str, job: str, exit_code: int = 1, reason: str = "Error",
             disruption: bool = False) -> None:
        """The Job's current pod fails: its container exits with ``exit_code`` (``reason``
        ``OOMKilled`` with 137 for the kernel's OOM killer); ``disruption`` adds the
        ``DisruptionTarget`` condition of a pre-empted or evicted pod."""
        def change(pod: dict[str, Any]) -> None:
            self._terminated(pod, "Failed", exit_code, reason)
            if disruption:
                pod["status"]["conditions"].append({
                    "type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler",
                    "message": "Preempted in order to admit critical pod",
                    "lastTransitionTime": _stamp(self.clock())})
        self._move(namespace, job, change)

    def _move(self, namespace: str, job: str, change: Callable[[dict[str, Any]], None]) -> None:
        with self.api._lock:
            live = [p for p in self.pods(namespace, job)
                    if p.get("status", {}).get("phase") in ("Pending", "Running")]
            if not live:
                raise AssertionError(f"Job {namespace}/{job} has no pending or running pod")
            pod = live[-1]
            change(pod)
            self._write("pods", pod)
        self.reconcile()

    def _running(self, pod: dict[str, Any]) -> None:
        now = _stamp(self.clock())
        pod["status"] = {
            "phase": "Running", "startTime": pod["status"].get("startTime") or now,
            "conditions": [{"type": "PodScheduled", "status": "True"},
                           {"type": "Ready", "status": "True"}],
            "containerStatuses": [{"name": c["name"], "ready": True, "restartCount": 0,
                                   "image": c.get("image"), "imageID": "",
                                   "state": {"running": {"startedAt": now}}}
                                  for c in pod["spec"]["containers"]]}

    def _terminated(self, pod: dict[str, Any], phase: str, code: int, reason: str) -> None:
        now = _stamp(self.clock())
        started = [((c.get("state") or {}).get("running") or {}).get("startedAt")
                   for c in pod["status"].get("containerStatuses") or []]
        pod["status"] = {
            "phase": phase, "startTime": pod["status"].get("startTime") or now,
            "conditions": [{"type": "PodScheduled", "status": "True"},
                           {"type": "Ready", "status": "False", "reason": "PodCompleted"}],
            "containerStatuses": [{"name": c["name"], "ready": False, "restartCount": 0,
                                   "image": c.get("image"), "imageID": "",
                                   "state": {"terminated": {
                                       "exitCode": code, "reason": reason,
                                       "startedAt": (started[i] if i < len(started) else None) or now,
                                       "finishedAt": now}}}
                                  for i, c in enumerate(pod["spec"]["containers"])]}

    # -- reconciling ---------------------------------------------------------------------------------

    def reconcile(self) -> None:
        with self.api._lock:
            for job in self.api.items("jobs"):
                self._reconcile(job)

    def _write(self, plural: str, obj: dict[str, Any]) -> None:
        kind = _kind_by_plural(plural)
        meta = obj["metadata"]
        key = (kind.group, plural, meta["namespace"], meta["name"])
        if key in self.api.objects and self.api.objects[key] != obj:
            self.api._store(kind, key, copy.deepcopy(obj), "MODIFIED")

    def _reconcile(self, job: dict[str, Any]) -> None:
        meta, spec = job["metadata"], job.get("spec") or {}
        ns, name = meta["namespace"], meta["name"]
        status = copy.deepcopy(job.get("status") or {})
        conditions: list[dict[str, Any]] = status.setdefault("conditions", [])
        now = self.clock()
        if _true(job, "Complete") or _true(job, "Failed"):
            ttl = spec.get("ttlSecondsAfterFinished")
            done = _seconds(status.get("completionTime")) or now
            if ttl is not None and now >= done + ttl:
                self.api._delete(_kind_by_plural("jobs"), ns, name, "Background")
            return
        pods = self.pods(ns, name)
        live = [p for p in pods if p["status"].get("phase") in ("Pending", "Running")]
        if spec.get("suspend"):
            for p in live:
                self.api._delete(_kind_by_plural("pods"), ns, p["metadata"]["name"], "Background")
            self._condition(conditions, "Suspended", "True", "JobSuspended", "Job suspended")
            status.update(active=0, ready=0)
            status.pop("startTime", None)
            self._set_status(job, status)
            return
        if any(c["type"] == "Suspended" and c["status"] == "True" for c in conditions):
            self._condition(conditions, "Suspended", "False", "JobResumed", "Job resumed")
        status.setdefault("startTime", _stamp(now))
        deadline = spec.get("activeDeadlineSeconds")
        if deadline is not None and now >= (_seconds(status["startTime"]) or now) + deadline:
            for p in live:
                self.api._delete(_kind_by_plural("pods"), ns, p["metadata"]["name"], "Background")
            self._finish(job, status, False, "DeadlineExceeded",
                         "Job was active longer than specified deadline")
            return
        counted = self._counted.setdefault(meta["uid"], set())
        ignored = self._ignored.setdefault(meta["uid"], set())
        failed = int(status.get("failed") or 0)
        for p in pods:
            uid, phase = p["metadata"]["uid"], p["status"].get("phase")
            if phase == "Succeeded":
                status.update(succeeded=1, active=0, ready=0)
                self._finish(job, status, True, "CompletionsReached", "Reached expected number "
                             "of succeeded pods")
                return
            if phase != "Failed" or uid in counted or uid in ignored:
                continue
            action, message = self._policy(spec, p)
            if action == "FailJob":
                status.update(failed=failed + 1, active=0, ready=0)
                self._finish(job, status, False, "PodFailurePolicy", message)
                return
            if action == "Ignore":
                ignored.add(uid)
            else:
                failed += 1
                counted.add(uid)
        if failed:
            status["failed"] = failed
        if failed > int(spec.get("backoffLimit", 6)):
            status.update(active=0, ready=0)
            self._finish(job, status, False, "BackoffLimitExceeded",
                         "Job has reached the specified backoff limit")
            return
        if not live:
            plan = self.plan(job)
            if plan.failed_create:
                if meta["uid"] not in self._failed_create_reported:
                    self._failed_create_reported.add(meta["uid"])
                    self._event(job, "FailedCreate", f"Error creating: {plan.failed_create}")
            else:
                live = [self._create_pod(job, plan)]
        status["active"] = len(live)
        status["ready"] = sum(p["status"].get("phase") == "Running" for p in live)
        self._set_status(job, status)

    def _policy(self, spec: dict[str, Any], pod: dict[str, Any]) -> tuple[str, str]:
        """The podFailurePolicy action for a failed pod (``Count`` when no rule matches)."""
        ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        statuses = pod["status"].get("containerStatuses") or []
        for i, rule in enumerate((spec.get("podFailurePolicy") or {}).get("rules") or []):
            on_codes = rule.get("onExitCodes")
            if on_codes:
                for c in statuses:
                    if on_codes.get("containerName") not in (None, c["name"]):
                        continue
                    code = ((c.get("state") or {}).get("terminated") or {}).get("exitCode")
                    if code is None or code == 0:
                        continue
                    values = on_codes.get("values") or []
                    if (code in values) == (on_codes.get("operator") == "In"):
                        return rule["action"], (
                            f"Container {c['name']} for pod {ns}/{name} failed with exit code "
                            f"{code} matching {rule['action']} rule at index {i}")
            for cond in rule.get("onPodConditions") or []:
                if any(pc.get("type") == cond.get("type")
                       and pc.get("status") == cond.get("status", "True")
                       for pc in pod["status"].get("conditions") or []):
                    return rule["action"], (f"Pod {ns}/{name} has condition {cond['type']} "
                                            f"matching {rule['action']} rule at index {i}")
        return "Count", ""

    def _finish(self, job: dict[str, Any], status: dict[str, Any], ok: bool, reason: str,
                message: str) -> None:
        conditions = status.setdefault("conditions", [])
        now = _stamp(self.clock())
        first, last = ("SuccessCriteriaMet", "Complete") if ok else ("FailureTarget", "Failed")
        self._condition(conditions, first, "True", reason, message)
        self._condition(conditions, last, "True", reason, message)
        status.update(active=0, ready=0)
        # the real controller sets completionTime on success only; the fake keeps it on a
        # failure too, as the clock of the TTL
        status.setdefault("completionTime", now)
        for pod in self.pods(job["metadata"]["namespace"], job["metadata"]["name"]):
            if pod["status"].get("phase") in ("Pending", "Running"):
                self.api._delete(_kind_by_plural("pods"), pod["metadata"]["namespace"],
                                 pod["metadata"]["name"], "Background")
        self._set_status(job, status)

    def _condition(self, conditions: list[dict[str, Any]], kind: str, value: str, reason: str,
                   message: str) -> None:
        now = _stamp(self.clock())
        for c in conditions:
            if c["type"] == kind:
                if c["status"] != value:
                    c.update(status=value, reason=reason, message=message, lastTransitionTime=now)
                return
        conditions.append({"type": kind, "status": value, "reason": reason, "message": message,
                           "lastProbeTime": now, "lastTransitionTime": now})

    def _set_status(self, job: dict[str, Any], status: dict[str, Any]) -> None:
        if status != job.get("status"):
            updated = {**job, "status": status}
            self._write("jobs", updated)

    def _create_pod(self, job: dict[str, Any], plan: PodPlan) -> dict[str, Any]:
        meta, template = job["metadata"], job["spec"]["template"]
        tmeta = template.get("metadata") or {}
        now = _stamp(self.clock())
        pod = {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": f"{meta['name']}-{''.join(secrets.choice('bcdfghjklmnpqrstvwxz2456789') for _ in range(5))}",
                "labels": {**(tmeta.get("labels") or {}), "controller-uid": meta["uid"],
                           "batch.kubernetes.io/controller-uid": meta["uid"],
                           "batch.kubernetes.io/job-name": meta["name"], "job-name": meta["name"]},
                "annotations": dict(tmeta.get("annotations") or {}),
                "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": meta["name"],
                                     "uid": meta["uid"], "controller": True,
                                     "blockOwnerDeletion": True}],
            },
            "spec": copy.deepcopy(template.get("spec") or {}),
            "status": {"phase": "Pending", "conditions": []},
        }
        if plan.unschedulable:
            pod["status"]["conditions"] = [{
                "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                "message": plan.unschedulable, "lastTransitionTime": now}]
        if plan.waiting:
            pod["status"].update(startTime=now, conditions=[
                {"type": "PodScheduled", "status": "True"},
                {"type": "Ready", "status": "False", "reason": "ContainersNotReady"}],
                containerStatuses=[{"name": c["name"], "ready": False, "restartCount": 0,
                                    "image": c.get("image"), "imageID": "",
                                    "state": {"waiting": {"reason": plan.waiting,
                                                          "message": plan.message}}}
                                   for c in pod["spec"].get("containers") or []])
        if plan.phase == "Running":
            self._running(pod)
        created = self.api._create(_kind_by_plural("pods"), meta["namespace"], pod)
        if created.get("status") != pod["status"]:  # a create keeps the status it is given
            created["status"] = pod["status"]
        return created

    def _event(self, job: dict[str, Any], reason: str, message: str) -> None:
        meta = job["metadata"]
        now = _stamp(self.clock())
        self.api._create(_kind_by_plural("events"), meta["namespace"], {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{meta['name']}.{uuid.uuid4().hex[:16]}"},
            "involvedObject": {"apiVersion": "batch/v1", "kind": "Job", "name": meta["name"],
                               "namespace": meta["namespace"], "uid": meta["uid"]},
            "reason": reason, "message": message, "type": "Warning", "count": 1,
            "source": {"component": "job-controller"}, "firstTimestamp": now, "lastTimestamp": now,
            "reportingComponent": "job-controller",
        })
