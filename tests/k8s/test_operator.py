"""The operator (kopf + SearchRunner) against the fake API server of tests/k8s: no real API server
can run here, so every test drives the operator over real HTTP through the fake, which keeps
objects, the status subresource, finalizers, ownerReference garbage collection and watches the
way the API does. The Job controller and the children are simulated (tests/k8s/harness.py): a
child writes its result to the tracker, then its Job is marked Complete. The tracker is an
in-memory implementation of the controller's Tracker protocol, except in the last test, which
uses the real MLflow server of tests/conftest.py."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pytest

from orchestrator.adapters.storage import S3Store
from orchestrator.backends.kubernetes import launch_job_name
from orchestrator.cluster.policy import ChildPolicy
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
from tests.unit.controller.fakes import hashed_reward

STATUS_FIELDS = {"phase", "trialsDone", "trialsRunning", "trialsFailed", "trialsBudget",
                 "cacheHits", "best", "bestAccuracy", "bestFunction", "bestFingerprint",
                 "parentRunId", "message", "observedGeneration", "conditions"}


def phase(apiserver: FakeApiServer, wanted: str, name: str = "s1") -> dict[str, Any]:
    return status_of(apiserver, name) if status_of(apiserver, name).get("phase") == wanted else {}


def event_reasons(apiserver: FakeApiServer) -> list[str]:
    return [e.get("reason") for e in apiserver.items("events", NAMESPACE)]


def wait_for_succeeded(apiserver: FakeApiServer, seen: list[dict[str, Any]]) -> dict[str, Any]:
    """Wait for phase Succeeded, recording every status seen on the way into ``seen``."""
    def done() -> dict[str, Any]:
        seen.append(status_of(apiserver))
        return phase(apiserver, "Succeeded")
    return wait_for(done, 30, "phase Succeeded")


def wait_for_event(apiserver: FakeApiServer, reason: str) -> None:
    """kopf posts Events from a queue of its own, after the status write that ends a test's
    wait: wait for the Event while the operator still runs, or stopping it may drop the queue."""
    wait_for(lambda: reason in event_reasons(apiserver), 10, f"a {reason} Event")


@pytest.mark.controller_traffic
def test_a_submitted_search_runs_its_trials_as_jobs_and_its_status_progresses_to_succeeded(
        apiserver: FakeApiServer, api_client: Any, tmp_path: Path) -> None:
    """A search is run to the end of its budget (fake API server: no real one runs here)."""
    tracker = LockedTracker()
    obj = apiserver.put_object("activationsearches", NAMESPACE, search_object(
        backend={"kind": "kubernetes", "kubernetes": {
            "image": "registry.example/trainer:9", "gpus": 1, "queue_name": "gpu-queue",
            "node_selector": {"gpu": "h100"}, "credentials_secret": "s3-keys"}}))
    seen: list[dict[str, Any]] = []
    children = Children(apiserver, tracker, delay=0.3)
    policy = ChildPolicy.model_validate({  # what the search asks for beyond the defaults
        "images": ["registry.example/"], "secrets": ["s3-keys"], "nodeSelectors": {"gpu": ["h100"]}})
    with children.running(), operator_running(api_client, defaults(tracker, str(tmp_path),
                                                                   policy=policy)):
        final = wait_for_succeeded(apiserver, seen)
        wait_for_event(apiserver, "Succeeded")
    assert any(s.get("phase") == "Running" and s.get("trialsRunning") == 2 for s in seen)
    assert set(final) <= STATUS_FIELDS  # summaries only: no per-trial list
    trained = [r for r in tracker.runs.values() if r.tags.get("actsearch.source") == "trained"]
    assert final["trialsDone"] == len(trained) == 4 and final["trialsFailed"] == 0
    best = max(trained, key=lambda r: r.reward or 0.0)
    assert final["bestAccuracy"] == pytest.approx(best.reward)
    assert final["bestFunction"] == best.tags["actsearch.math"]
    assert final["bestFingerprint"] == best.fingerprint
    assert final["best"] == {"trial": best.trial_id, "expression": best.tags["actsearch.math"],
                             "valAccuracy": pytest.approx(best.reward),
                             "fingerprint": best.fingerprint, "runId": best.run_id}
    assert final["trialsBudget"] == 4
    assert {c["type"]: c["status"] for c in final["conditions"]} == {
        "Ready": "True", "Succeeded": "True", "Failed": "False"}
    assert final["parentRunId"] == "parent-s1" and final["observedGeneration"] == 1
    assert final["message"].startswith("Finished: 4 of 4 children trained")
    jobs = apiserver.items("jobs", NAMESPACE)
    assert sorted(j["metadata"]["name"] for j in jobs) == sorted(
        launch_job_name("s1", NAMESPACE, r.trial_id, obj["metadata"]["uid"]) for r in trained)
    for job in jobs:
        assert job["metadata"]["ownerReferences"][0]["uid"] == obj["metadata"]["uid"]
        assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "gpu-queue"
        pod = job["spec"]["template"]["spec"]
        assert pod["nodeSelector"] == {"gpu": "h100"}
        (c,) = pod["containers"]
        assert c["image"] == "registry.example/trainer:9"
        assert c["envFrom"] == [{"secretRef": {"name": "s3-keys"}}]
        env = {e["name"]: e["value"] for e in c["env"]}
        assert env["MLFLOW_TRACKING_URI"] == "http://mlflow.test:5000"
        assert env["MLFLOW_S3_ENDPOINT_URL"] == "http://minio.test:9000"
    assert ("parent-s1", "leaderboard.md") in tracker.texts
    assert tracker.texts[("parent-s1", "status")] == "FINISHED"
    assert {"Started", "Succeeded"} <= set(event_reasons(apiserver))
    checkpoint = tmp_path / "checkpoints/searches" / NAMESPACE / "s1" / "controller.pt"
    assert checkpoint.exists()  # <--storage-uri>/<namespace>/<name>/


@pytest.mark.controller_traffic
def test_a_packed_search_runs_its_trials_as_pack_jobs_each_member_in_its_own_run(
        apiserver: FakeApiServer, api_client: Any, tmp_path: Path) -> None:
    """packing: 3 with parallelism 2 on 6 trials (fake API server: no real one runs here):
    two pack Jobs at a time, each annotated with its members, each member's result in its run."""
    tracker = LockedTracker()
    apiserver.put_object("activationsearches", NAMESPACE, search_object(
        budget={"trials": 6}, generation=6, packing=3, parallelism=2))
    seen: list[dict[str, Any]] = []
    children = Children(apiserver, tracker, delay=0.3)
    with children.running(), operator_running(api_client, defaults(tracker, str(tmp_path))):
        final = wait_for_succeeded(apiserver, seen)
    trained = {r.trial_id: r for r in tracker.runs.values()
               if r.tags.get("actsearch.source") == "trained"}
    assert final["trialsDone"] == len(trained) == 6 and final["trialsFailed"] == 0
    assert all(r.status == "FINISHED" for r in trained.values())
    assert max(s.get("trialsRunning", 0) for s in seen) > 2  # children, in two Jobs
    jobs = apiserver.items("jobs", NAMESPACE)
    assert 2 <= len(jobs) < 6
    members: list[str] = []
    for job in jobs:
        meta = job["metadata"]
        trials = meta["annotations"]["actsearch.io/trials"].split(",")
        assert meta["labels"]["actsearch.io/pack"] == "s1-p" + trials[0][-5:]
        assert meta["name"] == launch_job_name("s1", NAMESPACE, meta["labels"]["actsearch.io/pack"],
                                               meta["labels"]["actsearch.io/search-uid"])
        members += trials
    assert sorted(members) == sorted(trained)


@pytest.mark.controller_traffic
@pytest.mark.parametrize(("spec", "needles"), [
    # rules the CRD's schema cannot express (the API server would refuse schema errors itself)
    ({"space": {"units": 1, "unary": ["relu", "nosuchop"], "binary": ["add"]},
      "strategy": {"name": "random", "options": {"failure_reward": 1}}},
     ["space: unary has unknown function(s) 'nosuchop'",
      "strategy.options: set strategy.failure_reward"]),
    ({"backend": {"kind": "local"}}, ["backend.kind is 'local'"]),
    ({"backend": {"kind": "kubernetes", "kubernetes": {"namespace": "elsewhere"}}},
     ["must live in its own namespace"]),
])
def test_a_malformed_spec_fails_the_search_with_the_field_error_and_creates_nothing(
        apiserver: FakeApiServer, api_client: Any, tmp_path: Path, spec: dict[str, Any],
        needles: list[str]) -> None:
    """Validation happens before anything exists (fake API server: no real one runs here)."""
    tracker = LockedTracker()
    apiserver.put_object("activationsearches", NAMESPACE, search_object(**spec))
    with operator_running(api_client, defaults(tracker, str(tmp_path))):
        final = wait_for(lambda: phase(apiserver, "Failed"), 15, "phase Failed")
        wait_for_event(apiserver, "InvalidSpec")
    for needle in needles:
        assert needle in final["message"]
    assert "nothing was created" in final["message"]
    assert apiserver.items("jobs") == [] and tracker.runs == {} and tracker.searches == {}


@pytest.mark.controller_traffic
def test_deleting_a_search_stops_its_loop_and_its_jobs_go_with_it(
        apiserver: FakeApiServer, api_client: Any, tmp_path: Path) -> None:
    """Deletion goes through kopf's finalizer and owner garbage collection (fake API server:
    no real one runs here)."""
    tracker = LockedTracker()
    apiserver.put_object("activationsearches", NAMESPACE, search_object())
    children = Children(apiserver, tracker, hold=True)
    with children.running(), operator_running(api_client, defaults(tracker, str(tmp_path))):
        wait_for(lambda: len(apiserver.items("jobs")) == 2, 15, "two running Jobs")
        assert apiserver.get("activationsearches", NAMESPACE, "s1")["metadata"]["finalizers"]
        apiserver.delete_object("activationsearches", NAMESPACE, "s1")
        wait_for(lambda: apiserver.get("activationsearches", NAMESPACE, "s1") is None, 15,
                 "the finalizer to be removed and the search gone")
        writes = len(apiserver.calls(resource="activationsearches/status"))
        time.sleep(0.5)  # ten poll intervals: a loop still running would launch or write
        assert apiserver.items("jobs") == []
        assert len(apiserver.calls("create", "jobs")) == 2
        assert len(apiserver.calls(resource="activationsearches/status")) == writes


@pytest.mark.controller_traffic
def test_a_restarted_operator_reattaches_to_its_jobs_and_continues_from_the_s3_checkpoint(
        apiserver: FakeApiServer, api_client: Any, s3_env: dict[str, str], s3_server: Any,
        s3_bucket: str, s3_client: Any) -> None:
    """Checkpoints on the moto S3 server survive the operator (fake API server: no real one
    runs here)."""
    tracker = LockedTracker()  # MLflow outlives the controller: one tracker for both
    cfg = defaults(tracker, make_store=lambda uri, endpoint: S3Store.from_uri(uri, s3_server.url))
    cfg = type(cfg)(**{**cfg.__dict__, "storage_uri": f"s3://{s3_bucket}/restart-test"})
    apiserver.put_object("activationsearches", NAMESPACE, search_object())
    children = Children(apiserver, tracker, hold=True)
    with children.running():
        with operator_running(api_client, cfg):
            wait_for(lambda: status_of(apiserver).get("trialsRunning") == 2, 15, "two running")
        before = {j["metadata"]["name"]: j["metadata"]["uid"] for j in apiserver.items("jobs")}
        key = f"restart-test/{NAMESPACE}/s1/controller.pt"
        assert s3_client.get_object(Bucket=s3_bucket, Key=key)["ContentLength"] > 0
        runs_before = set(tracker.runs)
        with operator_running(api_client, cfg):
            wait_for(lambda: "Resumed" in event_reasons(apiserver), 15, "a Resumed event")
            time.sleep(0.3)  # a few ticks re-attached to running Jobs: nothing relaunched
            after = {j["metadata"]["name"]: j["metadata"]["uid"] for j in apiserver.items("jobs")}
            assert after == before
            assert list(apiserver.calls("create", "jobs"))[2:] == []
            children.hold = False
            final = wait_for(lambda: phase(apiserver, "Succeeded"), 30, "phase Succeeded")
    trained = sorted(r.trial_id for r in tracker.runs.values()
                     if r.tags.get("actsearch.source") == "trained")
    assert len(trained) == len(set(trained)) == final["trialsDone"] == 4  # none trained twice
    uid = apiserver.get("activationsearches", NAMESPACE, "s1")["metadata"]["uid"]
    assert set(before) <= {launch_job_name("s1", NAMESPACE, t, uid) for t in trained}
    assert runs_before <= set(tracker.runs)
    assert len({j["metadata"]["name"] for j in apiserver.items("jobs")}) == 4


@pytest.mark.controller_traffic
def test_a_409_on_job_creation_is_taken_as_already_there_and_a_missing_job_is_relaunched(
        apiserver: FakeApiServer, api_client: Any, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    """A 409 answered for a Job that then cannot be found (fake API server: no real one runs
    here) ends in a relaunch, not a failure."""
    caplog.set_level(logging.INFO)
    tracker = LockedTracker()
    apiserver.put_object("activationsearches", NAMESPACE, search_object())
    apiserver.fail("create", "jobs", 409, times=1)
    with Children(apiserver, tracker).running(), \
            operator_running(api_client, defaults(tracker, str(tmp_path))):
        final = wait_for(lambda: phase(apiserver, "Succeeded"), 30, "phase Succeeded")
    assert final["trialsDone"] == 4 and final["trialsFailed"] == 0
    text = caplog.text
    assert "already exists; re-attached" in text and "child not found; launching it again" in text


@pytest.mark.controller_traffic
def test_a_forbidden_job_creation_fails_the_search_with_a_message_naming_rbac(
        apiserver: FakeApiServer, api_client: Any, tmp_path: Path) -> None:
    """A 403 is permanent: retrying cannot grant a permission (fake API server: no real one
    runs here)."""
    tracker = LockedTracker()
    apiserver.put_object("activationsearches", NAMESPACE, search_object())
    apiserver.fail("create", "jobs", 403, times=100)
    with operator_running(api_client, defaults(tracker, str(tmp_path))):
        final = wait_for(lambda: phase(apiserver, "Failed"), 15, "phase Failed")
        wait_for_event(apiserver, "Failed")
    assert "forbidden (403)" in final["message"] and "RBAC" in final["message"]
    assert 'cannot create resource "jobs"' in final["message"]
    assert len(apiserver.calls("create", "jobs")) == 1 and apiserver.items("jobs") == []


@pytest.mark.controller_traffic
def test_server_errors_are_retried_and_an_outage_is_reported_then_waited_out(
        apiserver: FakeApiServer, api_client: Any, tmp_path: Path) -> None:
    """5xx answers (fake API server: no real one runs here): short ones are absorbed by the
    per-call retries, a longer one shows in the status message and the loop resumes."""
    tracker = LockedTracker()
    apiserver.put_object("activationsearches", NAMESPACE, search_object())
    apiserver.fail("create", "jobs", 503, times=2)
    apiserver.fail("patch", "activationsearches/status", 500, times=1)
    children = Children(apiserver, tracker, hold=True)
    messages: list[str] = []
    with children.running(), operator_running(api_client, defaults(tracker, str(tmp_path))):
        wait_for(lambda: status_of(apiserver).get("trialsRunning") == 2, 15, "two running")
        apiserver.fail("get", "jobs/status", 503, times=3)  # more than one call's 3 attempts
        def in_outage() -> dict[str, Any]:
            st = status_of(apiserver)
            messages.append(st.get("message", ""))
            return st if "Resuming from the last checkpoint" in messages[-1] else {}

        outage = wait_for(in_outage, 15, "the outage message")
        children.hold = False
        final = wait_for(lambda: phase(apiserver, "Succeeded"), 30, "phase Succeeded")
        wait_for_event(apiserver, "Unavailable")
    assert "failed 3 times" in messages[-1] and "503" in messages[-1]
    ready = next(c for c in outage["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "Unavailable")
    assert outage["phase"] == "Running"
    assert next(c for c in final["conditions"] if c["type"] == "Ready")["status"] == "True"
    assert final["trialsDone"] == 4
    assert len(apiserver.items("jobs")) == 4


@pytest.mark.controller_traffic
def test_a_search_tracked_by_the_real_mlflow_server_succeeds_with_its_leaderboard_logged(
        apiserver: FakeApiServer, api_client: Any, tmp_path: Path, mlflow_env: dict[str, str],
        mlflow_server: Any) -> None:
    """The operator with the MLflow tracker on the real MLflow server of tests/conftest.py; the
    API server is the fake (no real one can run here)."""
    from mlflow.tracking import MlflowClient

    from orchestrator.adapters.storage import LocalStore
    from orchestrator.cluster.incluster import ClusterDefaults

    client = MlflowClient(mlflow_server.url)

    def child_result(run_id: str, reward: float) -> None:  # what actsearch-train logs
        client.log_metric(run_id, "val_accuracy", reward)
        client.set_terminated(run_id, "FINISHED")

    cfg = ClusterDefaults(
        tracking_uri=mlflow_server.url, storage_uri="s3://unused/prefix", poll_interval=0.1,
        backoff=defaults(LockedTracker()).backoff,
        make_store=lambda uri, endpoint: LocalStore(tmp_path / "checkpoints"))
    apiserver.put_object("activationsearches", NAMESPACE, search_object(
        "real-mlflow", budget={"trials": 2}, tracking={"experiment": "operator-tests"}))
    children = Children(apiserver, LockedTracker(), record=child_result)
    with children.running(), operator_running(api_client, cfg):
        final = wait_for(lambda: phase(apiserver, "Succeeded", "real-mlflow"), 60, "Succeeded")
    parent = client.get_run(final["parentRunId"])
    assert parent.info.status == "FINISHED"
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"leaderboard.md", "leaderboard.json", "top_functions.png"} <= artifacts
    rewards = {hashed_reward(j) for j in children.expressions}
    assert final["bestAccuracy"] == pytest.approx(max(rewards))


def test_the_defaults_file_is_split_into_spec_defaults_and_the_operators_own() -> None:
    """The chart's ConfigMap is a spec fragment: its storage.uri is a prefix the operator keeps
    (each search gets its own folder), everything else is merged under each search's spec."""
    from orchestrator.cluster.incluster import spec_of, split_defaults

    fragment = {
        "tracking": {"uri": "http://mlflow:5000", "experiment": "team"},
        "storage": {"uri": "s3://bucket/ckpt", "endpoint_url": "http://minio:9000"},
        "backend": {"kind": "kubernetes",
                    "kubernetes": {"image": "trainer:1", "node_selector": {"gpu": "h100"}}},
    }
    spec_defaults, own = split_defaults(fragment)
    assert own == {"tracking_uri": "http://mlflow:5000", "storage_uri": "s3://bucket/ckpt",
                   "s3_endpoint": "http://minio:9000"}
    assert "storage" not in spec_defaults and "uri" not in spec_defaults["tracking"]
    obj = {"metadata": {"name": "s", "namespace": "ns"},
           "spec": {"backend": {"kubernetes": {"node_selector": {"gpu": "a100"}}},
                    "tracking": {"experiment": "mine"}}}
    spec = spec_of(obj, spec_defaults)
    assert spec.backend.kubernetes.image == "trainer:1"  # from the defaults
    assert spec.backend.kubernetes.node_selector == {"gpu": "a100"}  # the search's own wins
    assert spec.tracking.experiment == "mine" and spec.tracking.uri is None
    assert spec.storage.uri is None  # so its checkpoints go below the operator's prefix
