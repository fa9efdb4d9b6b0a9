"""A search whose children cannot start, end to end: the operator (kopf, with the controller's
token, held to its Role), the Kubernetes backend and the fake API server's Job controller
(tests/k8s/fake_jobs.py; no real cluster runs here). The children's pods wait in
ImagePullBackOff, as with a wrong image or a missing pull Secret: each trial fails naming it,
its Job is deleted, and the search spends its budget instead of waiting for ever."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator.cluster.policy import ChildPolicy
from tests.k8s.conftest import NAMESPACE
from tests.k8s.fake_apiserver import FakeApiServer
from tests.k8s.fake_jobs import JobController, PodPlan
from tests.k8s.harness import (
    LockedTracker,
    defaults,
    operator_running,
    search_object,
    status_of,
    wait_for,
)

PULL = 'Back-off pulling image "registry.example/no-such/trainer:9"'


@pytest.mark.controller_traffic
def test_children_whose_image_cannot_be_pulled_fail_naming_the_reason_and_their_jobs_go(
        apiserver: FakeApiServer, api_client: Any, tmp_path: Path) -> None:
    tracker = LockedTracker()
    apiserver.put_object("activationsearches", NAMESPACE, search_object(
        budget={"trials": 3}, parallelism=3,
        backend={"kind": "kubernetes", "kubernetes": {"image": "registry.example/no-such/trainer:9"}}))
    plan = PodPlan(waiting="ImagePullBackOff", message=PULL)
    with JobController(apiserver, plan=lambda job: plan), \
            operator_running(api_client, defaults(tracker, str(tmp_path), policy=ChildPolicy(
                images=["registry.example/no-such/trainer"]))):
        final = wait_for(lambda: status_of(apiserver).get("phase") == "Succeeded"
                         and status_of(apiserver), 30, "the search to finish")
    assert final["trialsFailed"] == 3
    failures = [r.failure for r in tracker.runs.values() if r.tags.get("actsearch.source") == "trained"]
    assert len(failures) == 3
    for failure in failures:
        assert failure is not None and "cannot start: ImagePullBackOff: " + PULL in failure
    assert apiserver.items("jobs", NAMESPACE) == []  # deleted, not left holding nodes
    wait_for(lambda: apiserver.items("pods", NAMESPACE) == [], 5, "their pods collected")
    # seen on the search: a Warning Event per child naming the trial and the reason, and, all
    # three having failed the same way, the ChildrenCannotStart condition and a sentence
    events = [e for e in apiserver.items("events", NAMESPACE) if e.get("reason") == "ChildCannotStart"]
    trials = sorted(r.trial_id for r in tracker.runs.values()
                    if r.tags.get("actsearch.source") == "trained")
    assert sorted(e["message"].split()[1] for e in events) == trials
    assert all("(ImagePullBackOff)" in e["message"] and e["type"] == "Warning" for e in events)
    (stuck,) = [c for c in final["conditions"] if c["type"] == "ChildrenCannotStart"]
    assert stuck["status"] == "True" and stuck["reason"] == "ImagePullBackOff"
    assert "Children cannot start: the last 3 failed with ImagePullBackOff" in final["message"]
