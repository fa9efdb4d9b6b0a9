"""Searches on a shared cluster are kept apart: the operator (kopf) against the fake API server of
tests/k8s (no real API server can run here), with the real MLflow and S3-compatible (moto)
servers of tests/conftest.py. The Job controller and the children are simulated
(tests/k8s/harness.py): a child logs its reward into its MLflow run, then its Job completes."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from orchestrator.adapters.storage import S3Store
from orchestrator.backends.kubernetes import launch_job_name
from orchestrator.cluster.incluster import ClusterDefaults
from orchestrator.contract import Tag
from tests.k8s.conftest import NAMESPACE
from tests.k8s.fake_apiserver import FakeApiServer
from tests.k8s.harness import (
    FAST,
    Children,
    LockedTracker,
    operator_running,
    search_object,
    wait_for,
)
from tests.servers import Server
from tests.unit.controller.fakes import hashed_reward

OTHER_NAMESPACE = "team-b"
TRUST_KEY = b"an installation's secret, 32 chars"


def cluster_defaults(mlflow: Server, s3: Server, root: str, **kw: Any) -> ClusterDefaults:
    """The operator as the chart runs it: MLflow, an S3 root for every search's checkpoints, the
    installation's key for the evaluation cache."""
    return ClusterDefaults(
        tracking_uri=mlflow.url, storage_uri=root, s3_endpoint=s3.url, poll_interval=0.05,
        backoff=FAST, trust_key=TRUST_KEY,
        make_store=lambda uri, endpoint: S3Store.from_uri(uri, endpoint), **kw)


def logs_to(client: MlflowClient, reward: Callable[[str], float]) -> Callable[[str, float], None]:
    """The child's side: log the reward it was given into its run, then end the run."""
    def record(run_id: str, value: float) -> None:  # what actsearch-train logs, then ends
        client.log_metric(run_id, "val_accuracy", value)
        client.set_terminated(run_id, "FINISHED")
    return record


def status(apiserver: FakeApiServer, name: str, namespace: str = NAMESPACE) -> dict[str, Any]:
    return (apiserver.get("activationsearches", namespace, name) or {}).get("status") or {}


def ended(apiserver: FakeApiServer, name: str, namespace: str = NAMESPACE) -> dict[str, Any]:
    s = status(apiserver, name, namespace)
    return s if s.get("phase") in ("Succeeded", "Failed") else {}


def events_about(apiserver: FakeApiServer, name: str) -> list[str]:
    return [str(e.get("message")) for e in apiserver.items("events", NAMESPACE)
            if (e.get("involvedObject") or {}).get("name") == name]


@pytest.mark.controller_traffic
def test_a_search_pointing_its_storage_at_another_searchs_is_refused_and_learns_nothing(
        apiserver: FakeApiServer, api_client: Any, mlflow_env: dict[str, str],
        mlflow_server: Server, s3_server: Server, s3_bucket: str, s3_client: Any) -> None:
    """The finding: "attacker", with ``storage.uri`` at ``<root>/research/victim``, reached
    Succeeded with the victim's parent run, best function and accuracy, and its status message
    quoted the victim's spec. Now it fails at once, its condition naming ``storage.uri``."""
    root = f"s3://{s3_bucket}/iso-{uuid.uuid4().hex[:8]}"
    client = MlflowClient(mlflow_server.url)
    cfg = cluster_defaults(mlflow_server, s3_server, root)
    victim_spec = {"budget": {"trials": 2}, "seed": 424242,
                   "tracking": {"experiment": "isolation-victim"}}
    apiserver.put_object("activationsearches", NAMESPACE, search_object("victim", **victim_spec))
    children = Children(apiserver, LockedTracker(), record=logs_to(client, hashed_reward))
    with children.running(), operator_running(api_client, cfg):
        victim = wait_for(lambda: ended(apiserver, "victim"), 60, "the victim to end")
        assert victim["phase"] == "Succeeded"
        key = f"{root.removeprefix(f's3://{s3_bucket}/')}/{NAMESPACE}/victim/controller.pt"
        stored = s3_client.get_object(Bucket=s3_bucket, Key=key)["Body"].read()
        jobs_before = len(apiserver.items("jobs", NAMESPACE))
        apiserver.put_object("activationsearches", NAMESPACE, search_object(
            "attacker", budget={"trials": 2}, tracking={"experiment": "isolation-victim"},
            storage={"uri": f"{root}/{NAMESPACE}/victim"}))
        attacker = wait_for(lambda: ended(apiserver, "attacker"), 30, "the attacker to end")
        wait_for(lambda: events_about(apiserver, "attacker"), 10, "an Event on the attacker")
    assert attacker["phase"] == "Failed"
    failed = {c["type"]: c for c in attacker["conditions"]}["Failed"]
    assert failed["status"] == "True" and failed["reason"] == "InvalidSpec"
    assert "storage.uri" in failed["message"] and f"{root}/{NAMESPACE}/attacker" in failed["message"]
    for leaked in ("parentRunId", "bestAccuracy", "bestFunction"):
        assert leaked not in attacker
    assert not attacker.get("best")  # the CRD's default ({}) at most
    said = json.dumps(attacker) + " ".join(events_about(apiserver, "attacker"))
    for secret in ("424242", victim["parentRunId"], victim["bestFunction"]):
        assert secret not in said
    assert s3_client.get_object(Bucket=s3_bucket, Key=key)["Body"].read() == stored  # untouched
    assert len(apiserver.items("jobs", NAMESPACE)) == jobs_before  # nothing created for it
    exp = client.get_experiment_by_name("isolation-victim")
    assert not client.search_runs([exp.experiment_id], f"tags.`{Tag.SEARCH}` = 'attacker'")


@pytest.mark.controller_traffic
def test_two_searches_of_one_name_in_two_namespaces_keep_their_own_runs_and_rewards(
        apiserver: FakeApiServer, api_client: Any, mlflow_env: dict[str, str],
        mlflow_server: Server, s3_server: Server, s3_bucket: str) -> None:
    """The finding: both ``s1`` shared the parent and the trial runs, B's ``s1-t00000`` settled
    with A's reward. Now each has its own parent run, its trials are its own children's runs
    (tagged with its uid and namespace), and B's rewards are B's children's. In ``namespace``
    scope (the default) the evaluation cache does not reuse A's results for B."""
    root = f"s3://{s3_bucket}/iso-{uuid.uuid4().hex[:8]}"
    client, exp = MlflowClient(mlflow_server.url), f"iso-{uuid.uuid4().hex[:8]}"
    cfg = cluster_defaults(mlflow_server, s3_server, root)
    b_reward = 0.123  # never one of hashed_reward's values: 0.1 + 0.89 * k / 999

    rewards_by_run: dict[str, float] = {}

    def record(run_id: str, value: float) -> None:  # B's children score differently from A's
        if client.get_run(run_id).data.tags[Tag.NAMESPACE] == OTHER_NAMESPACE:
            value = b_reward
        rewards_by_run[run_id] = value
        logs_to(client, hashed_reward)(run_id, value)

    spec = {"budget": {"trials": 3}, "generation": 3, "tracking": {"experiment": exp}}
    apiserver.put_object("activationsearches", NAMESPACE, search_object("s1", **spec))
    children = Children(apiserver, LockedTracker(), record=record)
    with children.running(), operator_running(api_client, cfg,
                                              namespaces=(NAMESPACE, OTHER_NAMESPACE)):
        a = wait_for(lambda: ended(apiserver, "s1"), 60, "A to end")
        obj_b = search_object("s1", **spec)
        obj_b["metadata"]["namespace"] = OTHER_NAMESPACE
        apiserver.put_object("activationsearches", OTHER_NAMESPACE, obj_b)
        b = wait_for(lambda: ended(apiserver, "s1", OTHER_NAMESPACE), 60, "B to end")
    assert a["phase"] == b["phase"] == "Succeeded"
    assert a["parentRunId"] != b["parentRunId"]
    assert b["bestAccuracy"] == pytest.approx(b_reward)
    experiment = client.get_experiment_by_name(exp).experiment_id
    uid_b = apiserver.get("activationsearches", OTHER_NAMESPACE, "s1")["metadata"]["uid"]
    runs_b = client.search_runs([experiment], f"tags.`{Tag.SEARCH_UID}` = '{uid_b}' and "
                                f"tags.`{Tag.ROLE}` = 'trial'")
    ids_b = {r.info.run_id for r in runs_b}
    for run in runs_b:  # trained, or settled without training (screened, duplicates)
        assert run.data.tags[Tag.NAMESPACE] == OTHER_NAMESPACE
        assert run.data.tags[Tag.PARENT_RUN] == b["parentRunId"]
        if "val_accuracy" in run.data.metrics:
            assert run.data.metrics["val_accuracy"] == pytest.approx(b_reward)  # none of A's
        assert run.data.tags.get(Tag.SOURCE) != "cache"  # namespace scope: A's are not reused
        assert run.data.tags.get(Tag.DUPLICATE_OF, run.info.run_id) in ids_b
    trained = [r for r in runs_b if r.data.tags.get(Tag.SOURCE) == "trained"]
    assert len(trained) == 3 and all(rewards_by_run[r.info.run_id] == b_reward for r in trained)
    jobs_b = {j["metadata"]["name"] for j in apiserver.items("jobs", OTHER_NAMESPACE)}
    assert jobs_b == {launch_job_name("s1", OTHER_NAMESPACE, r.data.tags[Tag.TRIAL], uid_b)
                      for r in trained}
