"""Credentials never show in a search's status or Events, and never reach a child Job as a plain
value. The operator runs against the fake API server of tests/k8s (no real API server can run
here); the children are simulated (tests/k8s/harness.py)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import TemporaryUnavailable
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

SECRET = "hunter2-Pa55"


def _everything_shown(apiserver: FakeApiServer) -> str:
    """The search's status and every Event of the namespace, as one text."""
    return json.dumps([status_of(apiserver), apiserver.items("events", NAMESPACE)])


@pytest.mark.controller_traffic
def test_a_tracking_uri_with_a_password_fails_the_search_before_anything_and_is_never_shown(
        apiserver: FakeApiServer, api_client: Any, tmp_path: Path) -> None:
    """Children get the tracking URI as a Job env value, readable by whoever may read Jobs: the
    search fails at once, naming the Secret to use, and the password is in no status or Event."""
    tracker = LockedTracker()
    apiserver.put_object("activationsearches", NAMESPACE, search_object(
        tracking={"uri": f"http://alice:{SECRET}@mlflow.test:5000"}))
    with operator_running(api_client, defaults(tracker, str(tmp_path))):
        final = wait_for(lambda: status_of(apiserver).get("phase") == "Failed" and status_of(apiserver),
                         15, "phase Failed")
        wait_for(lambda: "Failed" in [e.get("reason") for e in apiserver.items("events", NAMESPACE)],
                 10, "a Failed Event")
    assert "carries credentials" in final["message"]
    assert "backend.kubernetes.tracking_secret" in final["message"]
    assert "http://***@mlflow.test:5000" in final["message"]
    assert SECRET not in _everything_shown(apiserver)
    assert apiserver.items("jobs") == [] and tracker.searches == {}


@pytest.mark.controller_traffic
def test_an_outage_quoting_a_uri_with_a_password_is_reported_without_it(
        apiserver: FakeApiServer, api_client: Any, tmp_path: Path) -> None:
    """An error text quoting an endpoint with its credentials (botocore and requests put the URL
    in their messages) reaches the status message and an Unavailable Event redacted."""
    tracker = LockedTracker()
    calls: list[str] = []

    def store_down(uri: str, endpoint: str | None) -> Any:
        calls.append(uri)
        raise TemporaryUnavailable(f"S3 at http://minio:{SECRET}@minio.test:9000 failed 8 times")

    apiserver.put_object("activationsearches", NAMESPACE, search_object())
    with operator_running(api_client, replace(defaults(tracker, str(tmp_path)), make_store=store_down)):
        shown = wait_for(lambda: "Resuming from the last checkpoint" in status_of(apiserver).get(
            "message", "") and status_of(apiserver), 15, "the outage message")
        wait_for(lambda: "Unavailable" in [e.get("reason") for e in apiserver.items("events", NAMESPACE)],
                 10, "an Unavailable Event")
        text = _everything_shown(apiserver)
    assert "http://***@minio.test:9000" in shown["message"]
    assert SECRET not in text and calls


@pytest.mark.controller_traffic
def test_children_are_labelled_with_the_release_and_read_credentials_only_from_secrets(
        apiserver: FakeApiServer, api_client: Any, tmp_path: Path) -> None:
    """What the chart's NetworkPolicy selects (app.kubernetes.io/instance) and the chart's
    Secrets, given as the chart gives them (the operator's defaults, which the policy allows),
    reach a child through envFrom, never as values."""
    tracker = LockedTracker()
    apiserver.put_object("activationsearches", NAMESPACE, search_object(budget={"trials": 2}))
    children = Children(apiserver, tracker)
    chart_defaults = {"backend": {"kubernetes": {"tracking_secret": "rel-actsearch-mlflow-auth",
                                                 "credentials_secret": "datasets-readonly"}}}
    cfg = replace(defaults(tracker, str(tmp_path)), instance="rel", spec_defaults=chart_defaults)
    with children.running(), operator_running(api_client, cfg):
        wait_for(lambda: status_of(apiserver).get("phase") == "Succeeded", 30, "phase Succeeded")
    jobs = apiserver.items("jobs")
    assert len(jobs) == 2
    for job in jobs:
        pod = job["spec"]["template"]
        assert pod["metadata"]["labels"]["app.kubernetes.io/instance"] == "rel"
        container = pod["spec"]["containers"][0]
        assert container["envFrom"] == [{"secretRef": {"name": "datasets-readonly"}},
                                        {"secretRef": {"name": "rel-actsearch-mlflow-auth"}}]
        assert {e["name"] for e in container["env"]}.isdisjoint(
            {"AWS_SECRET_ACCESS_KEY", "MLFLOW_TRACKING_PASSWORD"})
