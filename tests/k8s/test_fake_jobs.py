"""The fake API server's Job controller (tests/k8s/fake_jobs.py; no real cluster runs here):
pods made and moved on as the real Job controller and a kubelet would report them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.k8s.conftest import NAMESPACE
from tests.k8s.fake_apiserver import FakeApiServer
from tests.k8s.fake_jobs import JobController, PodPlan
from tests.k8s.harness import wait_for


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def job(name: str = "j1", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name}, "spec": {
        "backoffLimit": 2, **spec, "template": {"spec": {
            "restartPolicy": "Never", "containers": [{"name": "trainer", "image": "trainer:1"}]}}}}


POLICY = {"rules": [
    {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
    {"action": "FailJob", "onExitCodes": {"containerName": "trainer", "operator": "In",
                                          "values": [2, 137]}},
]}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def jobs(apiserver: FakeApiServer, clock: Clock) -> Iterator[JobController]:
    with JobController(apiserver, clock=clock) as controller:
        yield controller


def status(apiserver: FakeApiServer, name: str = "j1") -> dict[str, Any]:
    return (apiserver.get("jobs", NAMESPACE, name) or {}).get("status") or {}


def conditions(apiserver: FakeApiServer, name: str = "j1") -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in status(apiserver, name).get("conditions") or []
            if c["status"] == "True"}


def test_a_job_gets_a_pending_pod_that_runs_and_succeeds(
        apiserver: FakeApiServer, jobs: JobController) -> None:
    apiserver.put_object("jobs", NAMESPACE, job())
    (pod,) = wait_for(lambda: jobs.pods(NAMESPACE, "j1"), 5, "a pod")
    assert pod["status"]["phase"] == "Pending"
    assert pod["metadata"]["ownerReferences"][0]["kind"] == "Job"
    assert wait_for(lambda: status(apiserver).get("active") == 1, 5, "active 1")
    jobs.run(NAMESPACE, "j1")
    assert status(apiserver)["ready"] == 1
    (pod,) = jobs.pods(NAMESPACE, "j1")
    assert pod["status"]["containerStatuses"][0]["state"]["running"]["startedAt"]
    jobs.succeed(NAMESPACE, "j1")
    assert {"SuccessCriteriaMet", "Complete"} <= set(conditions(apiserver))
    assert status(apiserver)["succeeded"] == 1


def test_a_failed_pod_is_replaced_until_the_backoff_limit(
        apiserver: FakeApiServer, jobs: JobController) -> None:
    apiserver.put_object("jobs", NAMESPACE, job())
    for attempt in range(3):
        wait_for(lambda: any(p["status"]["phase"] == "Pending" for p in jobs.pods(NAMESPACE, "j1")),
                 5, f"pod {attempt}")
        jobs.fail(NAMESPACE, "j1", exit_code=4)
    assert conditions(apiserver)["Failed"]["reason"] == "BackoffLimitExceeded"
    assert status(apiserver)["failed"] == 3 and len(jobs.pods(NAMESPACE, "j1")) == 3


def test_the_pod_failure_policy_fails_the_job_on_its_exit_codes_and_ignores_disruptions(
        apiserver: FakeApiServer, jobs: JobController) -> None:
    apiserver.put_object("jobs", NAMESPACE, job(podFailurePolicy=POLICY, backoffLimit=0))
    wait_for(lambda: jobs.pods(NAMESPACE, "j1"), 5, "a pod")
    jobs.fail(NAMESPACE, "j1", exit_code=137, disruption=True)  # pre-empted: not counted
    assert "Failed" not in conditions(apiserver)
    wait_for(lambda: len(jobs.pods(NAMESPACE, "j1")) == 2, 5, "a replacement pod")
    jobs.fail(NAMESPACE, "j1", exit_code=137, reason="OOMKilled")
    failed = conditions(apiserver)["Failed"]
    assert failed["reason"] == "PodFailurePolicy"
    assert failed["message"].startswith("Container trainer for pod research/j1-")
    assert failed["message"].endswith("failed with exit code 137 matching FailJob rule at index 1")
    assert "FailureTarget" in conditions(apiserver)


def test_a_suspended_job_has_no_pod_until_it_is_resumed(
        apiserver: FakeApiServer, jobs: JobController) -> None:
    apiserver.put_object("jobs", NAMESPACE, job(suspend=True))
    wait_for(lambda: "Suspended" in conditions(apiserver), 5, "Suspended")
    assert jobs.pods(NAMESPACE, "j1") == [] and "startTime" not in status(apiserver)
    apiserver.patch_object("jobs", NAMESPACE, "j1", {"spec": {"suspend": False}})  # admitted
    wait_for(lambda: jobs.pods(NAMESPACE, "j1"), 5, "a pod once resumed")
    assert "Suspended" not in conditions(apiserver) and status(apiserver)["startTime"]


def test_a_pod_can_be_left_unable_to_start_or_never_made(
        apiserver: FakeApiServer, jobs: JobController) -> None:
    jobs.plan = lambda j: {
        "pull": PodPlan(waiting="ImagePullBackOff", message='Back-off pulling image "nope:1"'),
        "sa": PodPlan(failed_create='pods "sa-x" is forbidden: error looking up service account '
                      'research/missing: serviceaccount "missing" not found'),
    }[j["metadata"]["name"]]
    apiserver.put_object("jobs", NAMESPACE, job("pull"))
    apiserver.put_object("jobs", NAMESPACE, job("sa"))
    (pod,) = wait_for(lambda: jobs.pods(NAMESPACE, "pull"), 5, "a pod")
    waiting = pod["status"]["containerStatuses"][0]["state"]["waiting"]
    assert waiting["reason"] == "ImagePullBackOff" and pod["status"]["phase"] == "Pending"
    (event,) = wait_for(lambda: apiserver.items("events", NAMESPACE), 5, "an Event")
    assert (event["reason"], event["type"], event["involvedObject"]["name"]) == \
        ("FailedCreate", "Warning", "sa")
    assert event["message"].startswith("Error creating: pods \"sa-x\" is forbidden")
    assert jobs.pods(NAMESPACE, "sa") == []


def test_the_active_deadline_and_the_ttl_after_finished_follow_the_clock(
        apiserver: FakeApiServer, jobs: JobController, clock: Clock) -> None:
    apiserver.put_object("jobs", NAMESPACE, job(activeDeadlineSeconds=60, ttlSecondsAfterFinished=30))
    wait_for(lambda: jobs.pods(NAMESPACE, "j1"), 5, "a pod")
    clock.now += 61
    failed = wait_for(lambda: conditions(apiserver).get("Failed"), 5, "DeadlineExceeded")
    assert failed["reason"] == "DeadlineExceeded"
    assert apiserver.get("jobs", NAMESPACE, "j1") is not None
    clock.now += 31
    wait_for(lambda: apiserver.get("jobs", NAMESPACE, "j1") is None, 5, "the TTL")
    wait_for(lambda: jobs.pods(NAMESPACE, "j1") == [], 5, "its pods collected")

