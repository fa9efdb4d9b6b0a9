"""The operator's failure brake end to end: the operator (kopf, with the controller's token, held
to its Role) and the Kubernetes backend against the fake API server and its Job controller
(tests/k8s/fake_jobs.py; no real API server can run here), the controller tracking on the real
MLflow server of tests/conftest.py. Every child exits 4 (MLflow unreachable from its pod, say a
NetworkPolicy), so its Job fails on its backoffLimit; after the first K of them the search stops,
Failed, naming that cause, instead of spending its budget."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from orchestrator.contract import ExitCode, Tag
from tests.k8s.conftest import NAMESPACE
from tests.k8s.fake_apiserver import FakeApiServer
from tests.k8s.fake_jobs import JobController, PodPlan
from tests.k8s.harness import FAST, operator_running, search_object, status_of, wait_for

K = 3


def fail_every_pod(apiserver: FakeApiServer, jobs: JobController, stop: threading.Event) -> None:
    """The kubelet's part: each running trainer container exits 4."""
    while not stop.wait(0.05):
        for job in apiserver.items("jobs", NAMESPACE):
            name = job["metadata"]["name"]
            if any(p["status"].get("phase") == "Running" for p in jobs.pods(NAMESPACE, name)):
                try:
                    jobs.fail(NAMESPACE, name, exit_code=int(ExitCode.INFRASTRUCTURE))
                except AssertionError:  # deleted or moved on meanwhile
                    pass


@pytest.mark.controller_traffic
def test_a_search_whose_first_children_all_exit_4_fails_naming_the_cause(
        apiserver: FakeApiServer, api_client: Any, tmp_path: Path, mlflow_env: dict[str, str],
        mlflow_server: Any) -> None:
    from mlflow.tracking import MlflowClient

    from orchestrator.adapters.storage import LocalStore
    from orchestrator.cluster.incluster import ClusterDefaults

    cfg = ClusterDefaults(
        tracking_uri=mlflow_server.url, storage_uri="s3://unused/prefix", poll_interval=0.1,
        backoff=FAST, make_store=lambda uri, endpoint: LocalStore(tmp_path / "checkpoints"))
    apiserver.put_object("activationsearches", NAMESPACE, search_object(
        "unreachable", budget={"trials": 20, "stop_after_infrastructure_failures": K},
        parallelism=1, generation=4, tracking={"experiment": "brake-tests"},
        backend={"kind": "kubernetes", "kubernetes": {"backoff_limit": 1}}))
    stop = threading.Event()
    with JobController(apiserver, plan=lambda job: PodPlan(phase="Running")) as jobs:
        kubelet = threading.Thread(target=fail_every_pod, args=(apiserver, jobs, stop),
                                   daemon=True)
        kubelet.start()
        try:
            with operator_running(api_client, cfg):
                final = wait_for(lambda: status_of(apiserver, "unreachable").get("phase")
                                 == "Failed" and status_of(apiserver, "unreachable"), 90,
                                 "the search to fail")
                wait_for(lambda: any(e.get("reason") == "InfrastructureFailures"
                                     for e in apiserver.items("events", NAMESPACE)), 10,
                         "the Warning Event")
        finally:
            stop.set()
            kubelet.join(5)
        # each Job used its retry: two pods, both exited 4, the Job failed on its backoffLimit
        for job in apiserver.items("jobs", NAMESPACE):
            assert [c["reason"] for c in job["status"]["conditions"] if c["type"] == "Failed"] \
                == ["BackoffLimitExceeded"]
    cause = "MLflow, S3 or the data source could not be reached (exit code 4)"
    assert cause in final["message"] and f"the last {K} children failed" in final["message"]
    (failed,) = [c for c in final["conditions"] if c["type"] == "Failed"]
    assert (failed["status"], failed["reason"]) == ("True", "InfrastructureFailures")
    (event,) = [e for e in apiserver.items("events", NAMESPACE)
                if e.get("reason") == "InfrastructureFailures"]
    assert event["type"] == "Warning" and cause in event["message"]
    # the budget was not spent: K children trained, each run FAILED in MLflow with the exit code
    assert final["trialsDone"] == final["trialsFailed"] == K
    client = MlflowClient(mlflow_server.url)
    runs = client.search_runs(
        [client.get_experiment_by_name("brake-tests").experiment_id],
        f"tags.`{Tag.SEARCH}` = 'unreachable' and tags.`{Tag.SOURCE}` = 'trained'")
    assert len(runs) == K
    for run in runs:
        assert run.info.status == "FAILED"
        assert run.data.tags[Tag.FAILURE].endswith("(exit code 4)")
