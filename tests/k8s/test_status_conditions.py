"""The operator's status in kubectl's habits, against the fake API server of tests/k8s (no real
API server can run here): the standard conditions that `kubectl wait` reads, and the Cancelled
phase of `actsearch-ctl cancel`. The cancel request is set in-process here (as `kubectl
annotate` would), so that the traffic audited for RBAC is the controller's own."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from orchestrator.adapters.kube import CANCEL_ANNOTATION
from tests.k8s.conftest import NAMESPACE
from tests.k8s.fake_apiserver import FakeApiServer
from tests.k8s.harness import (
    Children,
    LockedTracker,
    defaults,
    operator_running,
    search_object,
    status_of,
    wait_for,
)
from tests.k8s.test_operator import event_reasons, phase, wait_for_event


def conditions(status: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status.get("conditions") or []}


def kubectl_wait_satisfied(obj: dict[str, Any], type_: str) -> bool:
    """What `kubectl wait --for=condition=TYPE` checks: the condition is True and describes the
    object's current generation."""
    return any(c["type"] == type_ and c["status"] == "True"
               and c.get("observedGeneration") in (None, obj["metadata"]["generation"])
               for c in (obj.get("status") or {}).get("conditions") or [])


@pytest.mark.controller_traffic
def test_kubectl_wait_for_condition_succeeded_is_satisfied_exactly_when_the_search_succeeded(
        apiserver: FakeApiServer, api_client: Any, tmp_path: Path) -> None:
    tracker = LockedTracker()
    apiserver.put_object("activationsearches", NAMESPACE, search_object())
    seen: list[dict[str, Any]] = []

    def succeeded() -> bool:
        obj = apiserver.get("activationsearches", NAMESPACE, "s1") or {"metadata": {}}
        seen.append(obj)
        return kubectl_wait_satisfied(obj, "Succeeded")

    with Children(apiserver, tracker, delay=0.2).running(), \
            operator_running(api_client, defaults(tracker, str(tmp_path))):
        wait_for(succeeded, 30, "condition Succeeded")
    final = seen[-1]["status"]
    assert final["phase"] == "Succeeded" and final["trialsDone"] == 4
    running = [conditions(o["status"]) for o in seen
               if (o.get("status") or {}).get("phase") == "Running" and o["status"].get("conditions")]
    assert running and all(c == {"Ready": ("True", "Running"), "Succeeded": ("False", "InProgress"),
                                 "Failed": ("False", "InProgress")} for c in running)
    assert conditions(final) == {"Ready": ("True", "Succeeded"),
                                 "Succeeded": ("True", "BudgetSpent"),
                                 "Failed": ("False", "Succeeded")}
    assert all(not kubectl_wait_satisfied(o, "Succeeded") for o in seen[:-1])


@pytest.mark.controller_traffic
def test_a_malformed_spec_sets_condition_failed_with_reason_invalid_spec(
        apiserver: FakeApiServer, api_client: Any, tmp_path: Path) -> None:
    tracker = LockedTracker()
    apiserver.put_object("activationsearches", NAMESPACE, search_object(
        backend={"kind": "kubernetes", "kubernetes": {"namespace": "elsewhere"}}))
    with operator_running(api_client, defaults(tracker, str(tmp_path))):
        final = wait_for(lambda: phase(apiserver, "Failed"), 15, "phase Failed")
    assert conditions(final) == {t: (s, "InvalidSpec") for t, s in
                                 (("Ready", "False"), ("Succeeded", "False"), ("Failed", "True"))}
    failed = next(c for c in final["conditions"] if c["type"] == "Failed")
    assert "must live in its own namespace" in failed["message"]
    assert failed["observedGeneration"] == 1 and failed["lastTransitionTime"].endswith("Z")


@pytest.mark.controller_traffic
def test_a_cancel_request_deletes_the_running_jobs_and_sets_phase_cancelled_and_a_retry_resumes(
        apiserver: FakeApiServer, api_client: Any, tmp_path: Path) -> None:
    tracker = LockedTracker()
    apiserver.put_object("activationsearches", NAMESPACE, search_object())
    children = Children(apiserver, tracker, hold=True)
    with children.running(), operator_running(api_client, defaults(tracker, str(tmp_path))):
        wait_for(lambda: status_of(apiserver).get("trialsRunning") == 2, 15, "two running")
        launched = sorted(j["metadata"]["name"] for j in apiserver.items("jobs"))
        apiserver.patch_object("activationsearches", NAMESPACE, "s1", {
            "metadata": {"annotations": {CANCEL_ANNOTATION: "2026-01-01T00:00:00Z"}}})
        cancelled = wait_for(lambda: phase(apiserver, "Cancelled"), 15, "phase Cancelled")
        wait_for_event(apiserver, "Cancelled")
        assert apiserver.items("jobs") == []  # their GPUs are free
        assert sorted(c.name for c in apiserver.calls("delete", "jobs")) == launched
        assert conditions(cancelled) == dict.fromkeys(("Ready", "Succeeded", "Failed"), ("False", "Cancelled"))
        assert "2 running Jobs deleted" in cancelled["message"]
        assert "actsearch-ctl retry" in cancelled["message"]
        assert cancelled["observedGeneration"] == 1
        creates = len(apiserver.calls("create", "jobs"))
        writes = len(apiserver.calls(resource="activationsearches/status"))
        time.sleep(0.5)  # ten poll intervals: a loop still running would launch or write
        assert len(apiserver.calls("create", "jobs")) == creates
        assert len(apiserver.calls(resource="activationsearches/status")) == writes
        # `actsearch-ctl retry`: the request withdrawn, the generation it ended at forgotten
        apiserver.patch_object("activationsearches", NAMESPACE, "s1", {
            "metadata": {"annotations": {CANCEL_ANNOTATION: None}}})
        apiserver.patch_object("activationsearches", NAMESPACE, "s1",
                               {"status": {"observedGeneration": None}}, "status")
        children.hold = False
        final = wait_for(lambda: phase(apiserver, "Succeeded"), 30, "phase Succeeded")
    assert final["trialsDone"] == 4 and final["trialsFailed"] == 0
    assert set(launched) <= {j["metadata"]["name"] for j in apiserver.items("jobs")}
    assert "Cancelled" in event_reasons(apiserver)


@pytest.mark.controller_traffic
def test_a_search_cancelled_before_it_ran_is_cancelled_without_a_job(
        apiserver: FakeApiServer, api_client: Any, tmp_path: Path) -> None:
    tracker = LockedTracker()
    obj = search_object()
    obj["metadata"]["annotations"] = {CANCEL_ANNOTATION: "2026-01-01T00:00:00Z"}
    apiserver.put_object("activationsearches", NAMESPACE, obj)
    with operator_running(api_client, defaults(tracker, str(tmp_path))):
        final = wait_for(lambda: phase(apiserver, "Cancelled"), 15, "phase Cancelled")
    assert "Cancelled while its loop was not running" in final["message"]
    assert apiserver.calls("create", "jobs") == [] and tracker.runs == {}
