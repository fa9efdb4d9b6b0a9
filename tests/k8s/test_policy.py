"""The cluster's policy for searches and its endpoints, enforced by the operator end to end:
kopf and the official client against the fake API server of tests/k8s (no real API server can
run here), with the real MLflow and S3 (moto) servers of tests/conftest.py where a test says so.

A search outside the policy goes Failed with nothing created and nothing contacted; a refusal by
an allowed MLflow or S3 server is a condition and an Event, retried with backoff until it is
fixed; an unexpected exception is reported the same way instead of being left to kopf."""

from __future__ import annotations

import dataclasses
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from orchestrator.adapters.storage import LocalStore
from orchestrator.cluster.conditions import condition
from orchestrator.cluster.incluster import ClusterDefaults, split_defaults
from orchestrator.cluster.policy import ChildPolicy
from tests.k8s.conftest import NAMESPACE
from tests.k8s.fake_apiserver import FakeApiServer
from tests.k8s.harness import (
    FAST,
    Children,
    LockedTracker,
    defaults,
    operator_running,
    search_object,
    status_of,
    wait_for,
)
from tests.k8s.test_edits import patch_spec

CHART_DEFAULTS = {  # the shape of the chart's ConfigMap (templates/configmap.yaml)
    "tracking": {"uri": "http://mlflow.test:5000"},
    "storage": {"uri": "s3://actsearch/checkpoints", "endpoint_url": "http://minio.test:9000"},
    "backend": {"kind": "kubernetes", "kubernetes": {
        "image": "registry.internal/actsearch/trainer:0.2.0", "service_account": "rel-child",
        "credentials_secret": "rel-actsearch-s3"}},
}
GREEDY = {  # one field each beyond the strict default policy
    "foreign-image": ({"image": "docker.io/attacker/miner:1"}, "backend.kubernetes.image"),
    "secret": ({"credentials_secret": "mlflow-db"}, "backend.kubernetes.credentials_secret"),
    "critical": ({"priority_class": "system-node-critical"}, "backend.kubernetes.priority_class"),
    "nine-gpus": ({"gpus": 9}, "backend.kubernetes.gpus"),
    "other-sa": ({"service_account": "rel-actsearch-controller"},
                 "backend.kubernetes.service_account"),
}


def chart_like(tracker: LockedTracker, tmp_path: Path, opened: list[str],
               policy: ChildPolicy | None = None) -> ClusterDefaults:
    """The operator as the chart starts it (defaults file and policy), its stores recorded."""
    spec_defaults, _ = split_defaults(CHART_DEFAULTS)

    def make_store(uri: str, endpoint: str | None) -> LocalStore:
        opened.append(uri)
        return LocalStore(tmp_path / uri.removeprefix("s3://"))

    return dataclasses.replace(defaults(tracker, str(tmp_path), policy=policy),
                               spec_defaults=spec_defaults, make_store=make_store)


def events_of(apiserver: FakeApiServer, name: str) -> list[dict[str, Any]]:
    return [e for e in apiserver.items("events", NAMESPACE)
            if (e.get("involvedObject") or {}).get("name") == name]


def jobs_of(apiserver: FakeApiServer, name: str) -> list[dict[str, Any]]:
    return [j for j in apiserver.items("jobs", NAMESPACE)
            if j["metadata"]["labels"].get("actsearch.io/search") == name]


def ready(apiserver: FakeApiServer, name: str) -> dict[str, Any]:
    return dict(condition(status_of(apiserver, name), "Ready") or {})


@pytest.mark.controller_traffic
def test_searches_asking_beyond_the_policy_fail_with_nothing_created_and_one_within_runs(
        apiserver: FakeApiServer, api_client: Any, tmp_path: Path) -> None:
    tracker, opened = LockedTracker(), []
    policy = ChildPolicy.model_validate({"images": ["registry.internal/team-a/"]})
    for name, (ask, _) in GREEDY.items():
        apiserver.put_object("activationsearches", NAMESPACE, search_object(
            name, backend={"kind": "kubernetes", "kubernetes": ask}))
    apiserver.put_object("activationsearches", NAMESPACE, search_object("within", backend={
        "kind": "kubernetes", "kubernetes": {"image": "registry.internal/team-a/trainer:3",
                                             "gpus": 8}}))
    with Children(apiserver, tracker).running(), \
            operator_running(api_client, chart_like(tracker, tmp_path, opened, policy)):
        for name in [*GREEDY, "within"]:
            wait_for(lambda n=name: status_of(apiserver, n).get("phase") in ("Failed", "Succeeded"),
                     30, f"{name} to end")
        wait_for(lambda: all(any(e.get("reason") == "PolicyViolation" for e in
                                 events_of(apiserver, n)) for n in GREEDY), 10, "the Events")
    for name, (_, field) in GREEDY.items():
        status = status_of(apiserver, name)
        failed = condition(status, "Failed") or {}
        assert status["phase"] == "Failed"
        assert (failed.get("status"), failed.get("reason")) == ("True", "PolicyViolation")
        assert f"\n{field}: " in status["message"] and "nothing was created" in status["message"]
        (event,) = [e for e in events_of(apiserver, name) if e.get("reason") == "PolicyViolation"]
        assert event["type"] == "Warning" and f"{field}: " in event["message"]
        assert jobs_of(apiserver, name) == []
        assert not any(f"/{name}" in uri for uri in opened)  # no storage opened for it either
    assert status_of(apiserver, "within")["phase"] == "Succeeded"
    jobs = jobs_of(apiserver, "within")
    assert len(jobs) == 4
    for job in jobs:
        pod = job["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == "rel-child"
        (c,) = pod["containers"]
        assert c["image"] == "registry.internal/team-a/trainer:3"
        assert c["resources"]["limits"]["nvidia.com/gpu"] == "8"
        assert c["envFrom"] == [{"secretRef": {"name": "rel-actsearch-s3"}}]


@pytest.mark.controller_traffic
def test_an_edit_beyond_the_policy_is_not_applied_and_the_search_runs_on(
        apiserver: FakeApiServer, api_client: Any, tmp_path: Path) -> None:
    tracker, opened = LockedTracker(), []
    apiserver.put_object("activationsearches", NAMESPACE, search_object())
    children = Children(apiserver, tracker, hold=True)
    with children.running(), operator_running(api_client, chart_like(tracker, tmp_path, opened)):
        wait_for(lambda: status_of(apiserver).get("trialsRunning") == 2, 20, "two running")
        patch_spec(api_client, {"parallelism": 4, "backend": {"kubernetes": {
            "priority_class": "system-node-critical"}}})
        wait_for(lambda: status_of(apiserver).get("observedGeneration") == 2, 20, "the edit seen")
        wait_for(lambda: any(e.get("reason") == "PolicyViolation" for e in events_of(apiserver, "s1")),
                 10, "a PolicyViolation Event")
        assert len(jobs_of(apiserver, "s1")) == 2  # parallelism 4 was not applied either
        children.hold = False
        wait_for(lambda: status_of(apiserver).get("phase") == "Succeeded", 30, "Succeeded")
    (event,) = [e for e in events_of(apiserver, "s1") if e.get("reason") == "PolicyViolation"]
    assert "backend.kubernetes.priority_class: 'system-node-critical'" in event["message"]
    assert "outside the cluster's policy" in status_of(apiserver)["message"]
    for job in jobs_of(apiserver, "s1"):
        assert "priorityClassName" not in job["spec"]["template"]["spec"]


@pytest.mark.controller_traffic
def test_a_tightened_policy_stops_a_running_search_before_its_next_child(
        apiserver: FakeApiServer, api_client: Any, tmp_path: Path) -> None:
    """The chart restarts the controller when its policy changes: a search it had let run but
    no longer allows goes Failed and launches nothing more; its running children are left to
    finish."""
    tracker, opened = LockedTracker(), []
    apiserver.put_object("activationsearches", NAMESPACE, search_object(backend={
        "kind": "kubernetes", "kubernetes": {"image": "registry.internal/team-a/trainer:3"}}))
    loose = ChildPolicy.model_validate({"images": ["registry.internal/team-a/"]})
    children = Children(apiserver, tracker, hold=True)
    with children.running():
        with operator_running(api_client, chart_like(tracker, tmp_path, opened, loose)):
            wait_for(lambda: status_of(apiserver).get("trialsRunning") == 2, 20, "two running")
        children.hold = False  # they finish while no operator runs, freeing two slots
        wait_for(lambda: len(children.finished) == 2, 10, "the two children to finish")
        with operator_running(api_client, chart_like(tracker, tmp_path, opened)):
            final = wait_for(lambda: status_of(apiserver).get("phase") == "Failed"
                             and status_of(apiserver), 20, "Failed under the tighter policy")
    assert (condition(final, "Failed") or {})["reason"] == "PolicyViolation"
    assert "backend.kubernetes.image: 'registry.internal/team-a/trainer:3'" in final["message"]
    assert final["message"].endswith("no child is launched any more (those running finish).")
    assert len(jobs_of(apiserver, "s1")) == 2  # the budget is 4: nothing launched after


class Listener:
    """A TCP port on 127.0.0.1 that records each connection made to it (and closes it)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@pytest.mark.controller_traffic
def test_endpoints_outside_the_allow_list_fail_the_search_and_are_never_contacted(
        apiserver: FakeApiServer, api_client: Any, tmp_path: Path, mlflow_env: dict[str, str],
        mlflow_server: Any, s3_server: Any, s3_bucket: str) -> None:
    """The operator's MLflow tracker and S3 store are the real ones, on the real servers; a
    search naming its own tracking server or S3 endpoint gets neither contacted, while one that
    names the operator's own server runs."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(mlflow_server.url)

    def child_result(run_id: str, reward: float) -> None:  # what actsearch-train logs
        client.log_metric(run_id, "val_accuracy", reward)
        client.set_terminated(run_id, "FINISHED")

    listener = Listener()
    cfg = ClusterDefaults(tracking_uri=mlflow_server.url, storage_uri=f"s3://{s3_bucket}/policy",
                          s3_endpoint=s3_server.url, poll_interval=0.1, backoff=FAST)
    far = {"far-tracking": ({"tracking": {"uri": listener.url}}, "tracking.uri"),
           "far-endpoint": ({"storage": {"endpoint_url": listener.url}}, "storage.endpoint_url")}
    for name, (spec, _) in far.items():
        apiserver.put_object("activationsearches", NAMESPACE, search_object(name, **spec))
    apiserver.put_object("activationsearches", NAMESPACE, search_object(
        "near", budget={"trials": 2}, tracking={"uri": mlflow_server.url, "experiment": "policy"}))
    try:
        with Children(apiserver, LockedTracker(), record=child_result).running(), \
                operator_running(api_client, cfg):
            for name in [*far, "near"]:
                wait_for(lambda n=name: status_of(apiserver, n).get("phase") in ("Failed", "Succeeded"),
                         60, f"{name} to end")
    finally:
        listener.close()
    assert listener.connections == 0
    for name, (_, field) in far.items():
        status = status_of(apiserver, name)
        assert status["phase"] == "Failed" and (condition(status, "Failed") or {})["reason"] == "PolicyViolation"
        assert f"\n{field}: '{listener.url}' is not an allowed" in status["message"]
        assert jobs_of(apiserver, name) == []
    assert status_of(apiserver, "near")["phase"] == "Succeeded"


@pytest.mark.controller_traffic
def test_a_missing_bucket_is_a_condition_and_an_event_until_it_appears_then_the_search_runs(
        apiserver: FakeApiServer, api_client: Any, mlflow_env: dict[str, str],
        mlflow_server: Any, s3_server: Any, s3_client: Any) -> None:
    """Real MLflow and S3 (moto) servers, the operator's real tracker and store: the checkpoint
    bucket does not exist until the test creates it."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(mlflow_server.url)

    def child_result(run_id: str, reward: float) -> None:
        client.log_metric(run_id, "val_accuracy", reward)
        client.set_terminated(run_id, "FINISHED")

    bucket = f"missing-{uuid.uuid4().hex[:8]}"
    cfg = ClusterDefaults(tracking_uri=mlflow_server.url, storage_uri=f"s3://{bucket}/ckpt",
                          s3_endpoint=s3_server.url, poll_interval=0.1, backoff=FAST)
    apiserver.put_object("activationsearches", NAMESPACE, search_object(
        budget={"trials": 2}, tracking={"experiment": "policy-bucket"}))
    with Children(apiserver, LockedTracker(), record=child_result).running(), \
            operator_running(api_client, cfg):
        waiting = wait_for(lambda: ready(apiserver, "s1").get("reason") == "StorageRefused"
                           and status_of(apiserver), 30, "the StorageRefused condition")
        wait_for(lambda: any(e.get("reason") == "StorageRefused" for e in events_of(apiserver, "s1")),
                 10, "a StorageRefused Event")
        s3_client.create_bucket(Bucket=bucket)
        final = wait_for(lambda: status_of(apiserver).get("phase") == "Succeeded" and status_of(apiserver),
                         90, "Succeeded once the bucket exists")
    assert waiting["phase"] == "Pending"  # waited out, not failed
    assert "NoSuchBucket" in waiting["message"] and f"s3://{bucket}/ckpt/" in waiting["message"]
    assert (condition(waiting, "Failed") or {}).get("status") == "False"
    (event, *_) = [e for e in events_of(apiserver, "s1") if e.get("reason") == "StorageRefused"]
    assert event["type"] == "Warning" and "NoSuchBucket" in event["message"]
    assert ready(apiserver, "s1")["status"] == "True" and final["trialsDone"] == 2
    keys = [o["Key"] for o in s3_client.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert f"ckpt/{NAMESPACE}/s1/controller.pt" in keys


@contextmanager
def not_mlflow() -> Iterator[tuple[str, list[str]]]:
    """A web server that is not MLflow (a proxy's page): its URL and the paths asked of it."""
    asked: list[str] = []

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            body = b"<html><body>Welcome to nginx!</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", asked
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.controller_traffic
def test_an_allowed_tracking_server_that_is_not_mlflow_is_reported_and_retried(
        apiserver: FakeApiServer, api_client: Any, tmp_path: Path) -> None:
    """The operator's real MLflow tracker against a web server that answers HTML."""
    with not_mlflow() as (url, asked):
        cfg = ClusterDefaults(tracking_uri=url, storage_uri="s3://unused/prefix", poll_interval=0.1,
                              backoff=FAST, make_store=lambda uri, endpoint: LocalStore(tmp_path))
        apiserver.put_object("activationsearches", NAMESPACE, search_object())
        with operator_running(api_client, cfg):
            wait_for(lambda: ready(apiserver, "s1").get("reason") == "NotMlflow", 30,
                     "the NotMlflow condition")
            wait_for(lambda: len(asked) >= 2, 30, "a second try")
            wait_for(lambda: any(e.get("reason") == "NotMlflow" for e in events_of(apiserver, "s1")),
                     10, "a NotMlflow Event")
            status = status_of(apiserver)
    assert status["phase"] == "Pending"
    assert "does not answer as an MLflow tracking server" in status["message"]
    assert "text/html" in status["message"] and "Resuming from the last checkpoint in" in status["message"]
    assert apiserver.items("jobs", NAMESPACE) == []


@pytest.mark.controller_traffic
def test_an_unexpected_exception_is_reported_and_retried_instead_of_left_to_kopf(
        apiserver: FakeApiServer, api_client: Any, tmp_path: Path) -> None:
    """Anything the operator does not classify (here from the tracker's constructor) is a
    condition and an Event, then retried with backoff: kopf would retry the daemon only after
    30 s, with nothing on the search."""
    tracker, failures = LockedTracker(), [RuntimeError("MLflow said something new")] * 2

    def make_tracker(uri: str, experiment: str, *_: Any) -> LockedTracker:
        if failures:
            raise failures.pop()
        return tracker

    cfg = dataclasses.replace(defaults(tracker, str(tmp_path)), make_tracker=make_tracker)
    apiserver.put_object("activationsearches", NAMESPACE, search_object())
    with Children(apiserver, tracker).running(), operator_running(api_client, cfg):
        waiting = wait_for(lambda: ready(apiserver, "s1").get("reason") == "UnexpectedError"
                           and status_of(apiserver), 20, "the UnexpectedError condition")
        wait_for(lambda: status_of(apiserver).get("phase") == "Succeeded", 20, "Succeeded")
        wait_for(lambda: any(e.get("reason") == "UnexpectedError" for e in events_of(apiserver, "s1")),
                 10, "an UnexpectedError Event")
    assert "Unexpected RuntimeError: MLflow said something new" in waiting["message"]
