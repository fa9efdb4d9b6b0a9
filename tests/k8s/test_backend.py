"""The Kubernetes backend (orchestrator/backends/kubernetes.py) with the official client over real
HTTP against the fake API server of tests/k8s: no real API server runs here; the fake keeps
objects, selectors, ownerReferences and error answers the way the API does."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from orchestrator.adapters.kube import Cluster
from orchestrator.adapters.retry import Backoff
from orchestrator.backends.base import Launch
from orchestrator.backends.kubernetes import (
    DEADLINE_BASE_SECONDS,
    KubernetesBackend,
    default_deadline,
    job_manifest,
    last_exit,
    launch_job_name,
)
from orchestrator.contract import Cause
from orchestrator.errors import ConfigError, TemporaryUnavailable
from orchestrator.spec import KubernetesBackendSpec
from tests.k8s.conftest import NAMESPACE
from tests.k8s.fake_apiserver import FakeApiServer
from tests.k8s.fake_jobs import JobController, PodPlan
from tests.k8s.harness import wait_for

FAST = Backoff(initial=0.01, factor=2.0, maximum=0.05, attempts=4)
FULL = KubernetesBackendSpec.model_validate({
    "image": "registry.example/actsearch/trainer:1.2.3",
    "image_pull_policy": "Always",
    "gpus": 2,
    "resources": {"requests": {"cpu": "4", "memory": "16Gi"}, "limits": {"memory": "24Gi"}},
    "node_selector": {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    "priority_class": "research-low",
    "service_account": "actsearch-child",
    "credentials_secret": "actsearch-s3",
    "backoff_limit": 4,
    "active_deadline_seconds": 7200,
    "ttl_seconds_after_finished": 600,
    "queue_name": "gpu-queue",
})


def make_search(apiserver: FakeApiServer, name: str = "s1") -> dict[str, Any]:
    """The owning ActivationSearch, created as a user would (in-process: not controller traffic)."""
    return apiserver.put_object("activationsearches", NAMESPACE, {
        "apiVersion": "actsearch.io/v1alpha1", "kind": "ActivationSearch",
        "metadata": {"name": name}, "spec": {"budget": {"trials": 3}},
    })


def job_of(apiserver: FakeApiServer, launch_id: str, search: str = "s1") -> str:
    """The name of a launch's Job: the launch id and the owning search's identity."""
    owner = apiserver.get("activationsearches", NAMESPACE, search)
    assert owner is not None
    return launch_job_name(search, NAMESPACE, launch_id, owner["metadata"]["uid"])


def make_backend(api_client: Any, owner: dict[str, Any], settings: KubernetesBackendSpec = FULL,
                 ) -> KubernetesBackend:
    return KubernetesBackend(Cluster(api_client), owner["metadata"]["name"], NAMESPACE,
                             settings, owner_uid=owner["metadata"]["uid"],
                             s3_endpoint="http://minio.actsearch:9000", backoff=FAST)


def launch_of(trial: str = "s1-t00000", expression: str = "max(id(x), relu(x))") -> Launch:
    spec = {"expression": expression, "search": "s1", "trial": trial, "experiment": "actsearch",
            "child": {"model": "resnet20", "steps": 100}}
    return Launch(trial, "run-123", spec, {"MLFLOW_RUN_ID": "run-123",
                                           "MLFLOW_TRACKING_URI": "http://mlflow:5000"})


@pytest.mark.controller_traffic
def test_a_launch_creates_a_job_named_after_the_trial_with_every_field_of_the_spec(
        apiserver: FakeApiServer, api_client: Any) -> None:
    owner = make_search(apiserver)
    make_backend(api_client, owner).launch(launch_of())
    job = apiserver.get("jobs", NAMESPACE, job_of(apiserver, "s1-t00000"))
    assert job is not None
    meta, spec = job["metadata"], job["spec"]
    assert meta["labels"] == {
        "app.kubernetes.io/name": "actsearch", "app.kubernetes.io/component": "child",
        "app.kubernetes.io/part-of": "actsearch", "app.kubernetes.io/managed-by": "actsearch-controller",
        "actsearch.io/search": "s1", "actsearch.io/trial": "s1-t00000",
        "actsearch.io/search-uid": owner["metadata"]["uid"],
        "kueue.x-k8s.io/queue-name": "gpu-queue",
    }
    assert meta["ownerReferences"] == [{
        "apiVersion": "actsearch.io/v1alpha1", "kind": "ActivationSearch", "name": "s1",
        "uid": owner["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}]
    assert spec["backoffLimit"] == 4 and spec["activeDeadlineSeconds"] == 7200
    assert spec["ttlSecondsAfterFinished"] == 600
    assert spec["podFailurePolicy"]["rules"] == [  # a disruption first: retried whatever the code
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
        {"action": "FailJob", "onExitCodes": {"containerName": "trainer", "operator": "In",
                                              "values": [2, 3, 5, 137]}},
    ]
    pod = spec["template"]["spec"]
    assert spec["template"]["metadata"]["labels"]["actsearch.io/trial"] == "s1-t00000"
    assert pod["restartPolicy"] == "Never"
    assert pod["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists",
                                   "effect": "NoSchedule"}]
    assert pod["priorityClassName"] == "research-low"
    assert pod["serviceAccountName"] == "actsearch-child"
    (c,) = pod["containers"]
    assert (c["image"], c["imagePullPolicy"]) == ("registry.example/actsearch/trainer:1.2.3", "Always")
    assert c["args"] == ["--json-logs"]  # never the image's default `--help`
    assert c["resources"] == {"limits": {"memory": "24Gi", "nvidia.com/gpu": "2"},
                              "requests": {"cpu": "4", "memory": "16Gi"}}
    env = {e["name"]: e["value"] for e in c["env"]}
    assert env["MLFLOW_RUN_ID"] == "run-123" and env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert env["MLFLOW_S3_ENDPOINT_URL"] == "http://minio.actsearch:9000"
    assert json.loads(env["ACTSEARCH_TRIAL_SPEC"]) == launch_of().trial_spec
    assert env["HOME"].startswith("/tmp") and env["ACTSEARCH_CACHE_DIR"].startswith("/tmp")
    assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"]  # writable under a read-only root
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["envFrom"] == [{"secretRef": {"name": "actsearch-s3"}}]


@pytest.mark.controller_traffic
def test_without_optional_settings_the_job_carries_no_empty_fields(
        apiserver: FakeApiServer, api_client: Any) -> None:
    owner = make_search(apiserver)
    make_backend(api_client, owner, KubernetesBackendSpec(gpus=0)).launch(launch_of())
    job = apiserver.get("jobs", NAMESPACE, job_of(apiserver, "s1-t00000"))
    assert job is not None
    pod = job["spec"]["template"]["spec"]
    for absent in ("nodeSelector", "tolerations", "priorityClassName", "serviceAccountName"):
        assert absent not in pod
    assert "kueue.x-k8s.io/queue-name" not in job["metadata"]["labels"]
    assert job["spec"]["activeDeadlineSeconds"] == 1800 + 100  # default_deadline: 100 steps
    assert "envFrom" not in pod["containers"][0]
    assert "resources" not in pod["containers"][0] or not pod["containers"][0]["resources"]


@pytest.mark.controller_traffic
def test_launching_a_trial_twice_is_a_no_op_answered_by_409(
        apiserver: FakeApiServer, api_client: Any) -> None:
    owner = make_search(apiserver)
    backend = make_backend(api_client, owner)
    backend.launch(launch_of())
    first = apiserver.get("jobs", NAMESPACE, job_of(apiserver, "s1-t00000"))
    backend.launch(launch_of())
    assert [r.verb for r in apiserver.calls(resource="jobs")] == ["create", "create"]
    assert len(apiserver.items("jobs")) == 1
    assert apiserver.get("jobs", NAMESPACE, job_of(apiserver, "s1-t00000")) == first  # untouched


def pack_launch_of(pack: str = "s1-p00004", first: int = 4, size: int = 3) -> Launch:
    members = [{**launch_of(f"s1-t{i:05d}").trial_spec, "run_id": f"run-{i}"}
               for i in range(first, first + size)]
    return Launch(pack, None, {"pack": members}, {"MLFLOW_TRACKING_URI": "http://mlflow:5000"},
                  tuple(m["trial"] for m in members))


@pytest.mark.controller_traffic
def test_a_pack_is_one_job_named_labelled_and_annotated_after_its_pack_and_members(
        apiserver: FakeApiServer, api_client: Any) -> None:
    owner = make_search(apiserver)
    backend = make_backend(api_client, owner)
    backend.launch(pack_launch_of())
    (job,) = apiserver.items("jobs", NAMESPACE)
    meta, template = job["metadata"], job["spec"]["template"]
    assert meta["name"] == job_of(apiserver, "s1-p00004")
    assert meta["labels"]["actsearch.io/pack"] == "s1-p00004"
    assert "actsearch.io/trial" not in meta["labels"]  # a pack is not a trial
    assert meta["labels"]["actsearch.io/search"] == "s1"
    assert meta["labels"]["app.kubernetes.io/component"] == "child"
    trials = "s1-t00004,s1-t00005,s1-t00006"
    assert meta["annotations"] == {"actsearch.io/trials": trials}
    assert meta["labels"].items() <= template["metadata"]["labels"].items()
    assert template["metadata"]["annotations"] == {"actsearch.io/trials": trials}
    (c,) = template["spec"]["containers"]
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "2"  # per process, not per member
    env = {e["name"]: e["value"] for e in c["env"]}
    assert "MLFLOW_RUN_ID" not in env  # each member names its own run in the spec
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    spec = json.loads(env["ACTSEARCH_TRIAL_SPEC"])
    assert [(m["trial"], m["run_id"]) for m in spec["pack"]] == [
        ("s1-t00004", "run-4"), ("s1-t00005", "run-5"), ("s1-t00006", "run-6")]
    assert backend.state("s1-p00004").phase == "queued"
    backend.launch(pack_launch_of())  # a restarted controller: 409, re-attached
    assert len(apiserver.items("jobs")) == 1


def test_a_single_trials_job_has_no_pack_label_or_annotation() -> None:
    manifest = job_manifest(launch_of(), "s1", NAMESPACE, FULL)
    for meta in (manifest["metadata"], manifest["spec"]["template"]["metadata"]):
        assert "annotations" not in meta and "actsearch.io/pack" not in meta["labels"]


def test_a_pack_job_passes_the_upstream_kubernetes_schema() -> None:
    import kubernetes_validate

    from tests.chart.test_crd import K8S_VERSION

    kubernetes_validate.validate(job_manifest(pack_launch_of(), "s1", NAMESPACE, FULL, "uid-1"),
                                 K8S_VERSION, strict=True)


CONDITION_CASES = [
    ({"conditions": [{"type": "Complete", "status": "True"}], "succeeded": 1},
     None, ("succeeded", None, 0, None)),
    ({"conditions": [{"type": "Failed", "status": "True", "reason": "PodFailurePolicy",
                      "message": "Container trainer for pod research/s1-t00000-abcde failed "
                                 "with exit code 3 matching FailJob rule at index 0"}]},
     None, ("failed", "PodFailurePolicy: Container trainer for pod research/s1-t00000-abcde "
                      "failed with exit code 3 matching FailJob rule at index 0", 3, Cause.EXITED)),
    ({"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                      "message": "Job has reached the specified backoff limit"}]},
     None, ("failed", "BackoffLimitExceeded: Job has reached the specified backoff limit", None,
            Cause.UNKNOWN)),  # and no pod that ended: nothing more is known
    ({"conditions": [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded",
                      "message": "Job was active longer than specified deadline"}]},
     None, ("failed", "DeadlineExceeded: Job was active longer than specified deadline", None,
            Cause.DEADLINE_EXCEEDED)),
    ({"conditions": [{"type": "Suspended", "status": "True", "reason": "JobSuspended"}]},
     None, ("queued", "suspended", None, None)),
    ({}, True, ("queued", "suspended", None, None)),
    ({"active": 1, "ready": 1}, None, ("running", None, None, None)),
    ({"conditions": [{"type": "Complete", "status": "False"}], "active": 1}, None,
     ("running", None, None, None)),
    ({}, None, ("queued", None, None, None)),
]


@pytest.mark.controller_traffic
@pytest.mark.parametrize(("status", "suspend", "expected"), CONDITION_CASES)
def test_the_state_of_a_trial_is_read_from_its_job_status(
        apiserver: FakeApiServer, api_client: Any, status: dict[str, Any], suspend: bool | None,
        expected: tuple[str, str | None, int | None, Cause | None]) -> None:
    owner = make_search(apiserver)
    backend = make_backend(api_client, owner)
    manifest = job_manifest(launch_of(), "s1", NAMESPACE, FULL, owner["metadata"]["uid"])
    if suspend:
        manifest["spec"]["suspend"] = True  # as Kueue creates it until admitted
    apiserver.put_object("jobs", NAMESPACE, manifest)
    apiserver.set_status("jobs", NAMESPACE, job_of(apiserver, "s1-t00000"), status)
    state = backend.state("s1-t00000")
    assert (state.phase, state.reason, state.exit_code, state.cause) == expected
    assert apiserver.calls("get", "jobs/status")  # the status subresource, as RBAC grants it


@pytest.mark.controller_traffic
def test_a_trial_without_a_job_is_missing(apiserver: FakeApiServer, api_client: Any) -> None:
    backend = make_backend(api_client, make_search(apiserver))
    assert backend.state("s1-t00042").phase == "missing"


@pytest.mark.controller_traffic
def test_a_refused_permission_is_a_config_error_naming_rbac_and_the_request(
        apiserver: FakeApiServer, api_client: Any) -> None:
    backend = make_backend(api_client, make_search(apiserver))
    apiserver.fail("create", "jobs", 403)
    with pytest.raises(ConfigError) as e:
        backend.launch(launch_of())
    text = str(e.value)
    assert "forbidden (403)" in text and "RBAC" in text and f"create Job research/{job_of(apiserver, 's1-t00000')}" in text
    assert 'cannot create resource "jobs"' in text
    assert len(apiserver.calls("create", "jobs")) == 1  # not retried: retrying cannot fix it
    apiserver.fail("get", "jobs/status", 403)
    with pytest.raises(ConfigError, match="RBAC"):
        backend.state("s1-t00000")


@pytest.mark.controller_traffic
@pytest.mark.parametrize("code", [500, 503])
def test_a_server_error_is_retried_with_backoff_and_then_succeeds(
        apiserver: FakeApiServer, api_client: Any, code: int, caplog: pytest.LogCaptureFixture) -> None:
    backend = make_backend(api_client, make_search(apiserver))
    apiserver.fail("create", "jobs", code, times=2)
    backend.launch(launch_of())
    assert len(apiserver.calls("create", "jobs")) == 3
    assert [j["metadata"]["name"] for j in apiserver.items("jobs")] == [job_of(apiserver, "s1-t00000")]
    assert sum("retry" in r.getMessage() for r in caplog.records) == 2
    apiserver.fail("get", "jobs/status", code, times=1)
    assert backend.state("s1-t00000").phase == "queued"


@pytest.mark.controller_traffic
def test_a_server_that_keeps_failing_gives_a_temporary_error_after_the_last_attempt(
        apiserver: FakeApiServer, api_client: Any) -> None:
    backend = make_backend(api_client, make_search(apiserver))
    apiserver.fail("get", "jobs/status", 503, times=10)
    with pytest.raises(TemporaryUnavailable, match="failed 4 times"):
        backend.state("s1-t00000")
    assert len(apiserver.calls("get", "jobs/status")) == FAST.attempts


def test_list_trials_selects_the_jobs_of_its_search_by_label(
        apiserver: FakeApiServer, api_client: Any) -> None:
    mine = make_backend(api_client, make_search(apiserver, "s1"))
    other = make_backend(api_client, make_search(apiserver, "s10"))
    for i in (2, 0, 1):
        mine.launch(launch_of(f"s1-t0000{i}"))
    other.launch(launch_of("s10-t00000"))
    assert mine.list_trials() == [job_of(apiserver, f"s1-t0000{i}") for i in range(3)]
    assert other.list_trials() == [job_of(apiserver, "s10-t00000", "s10")]
    assert len(apiserver.calls("list", "jobs")) == 2


def test_cancel_deletes_the_job_and_is_a_no_op_when_it_is_gone(
        apiserver: FakeApiServer, api_client: Any) -> None:
    backend = make_backend(api_client, make_search(apiserver))
    backend.launch(launch_of())
    backend.cancel("s1-t00000")
    assert apiserver.items("jobs") == []
    backend.cancel("s1-t00000")  # 404: nothing to do
    assert [r.verb for r in apiserver.calls(resource="jobs")] == ["create", "delete", "delete"]


def test_deleting_the_search_garbage_collects_its_jobs_through_owner_references(
        apiserver: FakeApiServer, api_client: Any) -> None:
    owner = make_search(apiserver)
    backend = make_backend(api_client, owner)
    backend.launch(launch_of("s1-t00000"))
    backend.launch(launch_of("s1-t00001"))
    unrelated = make_backend(api_client, make_search(apiserver, "s2"))
    unrelated.launch(launch_of("s2-t00000"))
    apiserver.delete_object("activationsearches", NAMESPACE, "s1")
    assert [j["metadata"]["name"] for j in apiserver.items("jobs")] == [job_of(apiserver, "s2-t00000", "s2")]
    backend.launch(launch_of("s1-t00002"))  # a launch racing the deletion: collected at once
    assert [j["metadata"]["name"] for j in apiserver.items("jobs")] == [job_of(apiserver, "s2-t00000", "s2")]


# -- children that cannot start (the fake's Job controller, tests/k8s/fake_jobs.py) --------------

PULL = 'Back-off pulling image "registry.example/actsearch/trainer:1.2.3"'


@pytest.fixture
def jobs(apiserver: FakeApiServer) -> Iterator[JobController]:
    with JobController(apiserver) as controller:
        yield controller


def launched(apiserver: FakeApiServer, api_client: Any, jobs: JobController, plan: PodPlan,
             settings: KubernetesBackendSpec = FULL, clock: Callable[[], float] = time.time,
             ) -> KubernetesBackend:
    jobs.plan = lambda job: plan
    owner = make_search(apiserver)
    backend = KubernetesBackend(Cluster(api_client), "s1", NAMESPACE, settings,
                                owner_uid=owner["metadata"]["uid"], backoff=FAST, clock=clock)
    backend.launch(launch_of())
    wait_for(lambda: jobs.pods(NAMESPACE, job_of(apiserver, "s1-t00000")) or apiserver.items("events", NAMESPACE),
             5, "a pod or an Event")
    return backend


@pytest.mark.controller_traffic
@pytest.mark.parametrize(("waiting", "message"), [
    ("ImagePullBackOff", PULL),
    ("ErrImagePull", "rpc error: code = NotFound desc = failed to pull and unpack image"),
    ("CreateContainerConfigError", 'secret "actsearch-s3" not found'),
])
def test_a_child_whose_container_cannot_start_fails_at_once_and_its_job_is_deleted(
        apiserver: FakeApiServer, api_client: Any, jobs: JobController, waiting: str,
        message: str) -> None:
    backend = launched(apiserver, api_client, jobs, PodPlan(waiting=waiting, message=message))
    state = backend.state("s1-t00000")
    assert state.phase == "failed"
    assert state.reason is not None and f"cannot start: {waiting}: {message}" in state.reason
    assert state.cause is Cause(waiting)  # the reason as data, beside the message
    assert apiserver.get("jobs", NAMESPACE, job_of(apiserver, "s1-t00000")) is None
    wait_for(lambda: jobs.pods(NAMESPACE, job_of(apiserver, "s1-t00000")) == [], 5, "its pod collected")


@pytest.mark.controller_traffic
def test_a_pending_child_is_queued_until_the_limit_then_fails_with_the_schedulers_reason(
        apiserver: FakeApiServer, api_client: Any, jobs: JobController) -> None:
    offset = [0.0]
    why = "0/4 nodes are available: 4 Insufficient nvidia.com/gpu."
    settings = FULL.model_copy(update={"max_pending_seconds": 600})
    backend = launched(apiserver, api_client, jobs, PodPlan(unschedulable=why), settings,
                       clock=lambda: time.time() + offset[0])
    state = backend.state("s1-t00000")
    assert (state.phase, state.reason) == ("queued", f"Unschedulable: {why}")
    offset[0] = 700.0
    state = backend.state("s1-t00000")
    assert state.phase == "failed" and state.reason is not None
    assert "Pending for 70" in state.reason and "more than max_pending_seconds (600)" in state.reason
    assert state.reason.endswith(f"Unschedulable: {why}")
    assert state.cause is Cause.PENDING_TOO_LONG
    assert apiserver.get("jobs", NAMESPACE, job_of(apiserver, "s1-t00000")) is None


@pytest.mark.controller_traffic
def test_a_job_that_cannot_create_its_pod_fails_with_the_job_controllers_message(
        apiserver: FakeApiServer, api_client: Any, jobs: JobController) -> None:
    refused = ('pods "s1-t00000-x" is forbidden: error looking up service account '
               'research/actsearch-child: serviceaccount "actsearch-child" not found')
    backend = launched(apiserver, api_client, jobs, PodPlan(failed_create=refused))
    state = backend.state("s1-t00000")
    assert (state.phase, state.reason) == ("failed", f"FailedCreate: Error creating: {refused}")
    assert state.cause is Cause.FAILED_CREATE
    assert apiserver.get("jobs", NAMESPACE, job_of(apiserver, "s1-t00000")) is None


@pytest.mark.controller_traffic
def test_a_job_held_by_a_resource_quota_waits_until_the_pending_limit(
        apiserver: FakeApiServer, api_client: Any, jobs: JobController) -> None:
    offset = [0.0]
    quota = ('pods "s1-t00000-x" is forbidden: exceeded quota: gpu-quota, requested: '
             'requests.nvidia.com/gpu=2, used: requests.nvidia.com/gpu=8, limited: requests.nvidia.com/gpu=8')
    backend = launched(apiserver, api_client, jobs, PodPlan(failed_create=quota),
                       clock=lambda: time.time() + offset[0])
    assert backend.state("s1-t00000").phase == "queued"
    offset[0] = 3600.0
    state = backend.state("s1-t00000")
    assert state.phase == "failed" and state.reason is not None and "exceeded quota" in state.reason
    assert state.cause is Cause.QUOTA_EXCEEDED


@pytest.mark.controller_traffic
def test_a_running_child_reports_when_its_container_started(
        apiserver: FakeApiServer, api_client: Any, jobs: JobController) -> None:
    backend = launched(apiserver, api_client, jobs, PodPlan())
    assert backend.state("s1-t00000").phase == "queued"  # a Pending pod trains nothing yet
    before = time.time()
    jobs.run(NAMESPACE, job_of(apiserver, "s1-t00000"))
    state = backend.state("s1-t00000")
    assert state.phase == "running" and state.started_at is not None
    assert abs(state.started_at - before) < 2
    pod_lists = len(apiserver.calls("list", "pods"))
    assert backend.state("s1-t00000").started_at == state.started_at
    assert len(apiserver.calls("list", "pods")) == pod_lists  # a ready Job's start is remembered
    jobs.succeed(NAMESPACE, job_of(apiserver, "s1-t00000"))
    done = backend.state("s1-t00000")
    assert (done.phase, done.started_at) == ("succeeded", state.started_at)


@pytest.mark.controller_traffic
def test_an_oom_killed_child_fails_for_good_and_a_preempted_one_is_retried(
        apiserver: FakeApiServer, api_client: Any, jobs: JobController) -> None:
    backend = launched(apiserver, api_client, jobs, PodPlan(phase="Running"))
    jobs.fail(NAMESPACE, job_of(apiserver, "s1-t00000"), exit_code=137, disruption=True)  # pre-empted
    wait_for(lambda: len(jobs.pods(NAMESPACE, job_of(apiserver, "s1-t00000"))) == 2, 5, "a replacement pod")
    assert backend.state("s1-t00000").phase == "running"
    jobs.fail(NAMESPACE, job_of(apiserver, "s1-t00000"), exit_code=137, reason="OOMKilled")
    state = backend.state("s1-t00000")
    assert (state.phase, state.exit_code) == ("failed", 137)
    assert state.reason is not None and state.reason.startswith(
        "killed, most likely by the out-of-memory killer (OOMKilled); PodFailurePolicy: ")
    assert state.cause is Cause.OOM_KILLED
    assert len(jobs.pods(NAMESPACE, job_of(apiserver, "s1-t00000"))) == 2  # no third attempt


@pytest.mark.controller_traffic
def test_cuda_out_of_memory_fails_the_job_at_once(
        apiserver: FakeApiServer, api_client: Any, jobs: JobController) -> None:
    from orchestrator.trainer.errors import ExitCode

    backend = launched(apiserver, api_client, jobs, PodPlan(phase="Running"))
    jobs.fail(NAMESPACE, job_of(apiserver, "s1-t00000"), exit_code=int(ExitCode.OUT_OF_MEMORY))
    state = backend.state("s1-t00000")
    assert (state.phase, state.exit_code) == ("failed", 5)
    assert state.reason is not None and state.reason.startswith("out of device memory")
    assert state.cause is Cause.OUT_OF_MEMORY


def test_the_default_deadline_grows_with_the_steps_of_every_member() -> None:
    single = launch_of()
    pack = Launch("s1-p00000", None, {"pack": [
        {**single.trial_spec, "child": {"steps": 2000}},
        {**single.trial_spec, "child": {"steps": 3000}}]}, members=("a", "b"))
    no_steps = Launch("s1-t00001", "r", {"expression": "x", "child": {}})
    assert default_deadline(single) == DEADLINE_BASE_SECONDS + 100
    assert default_deadline(pack) == DEADLINE_BASE_SECONDS + 5000
    assert default_deadline(no_steps) == DEADLINE_BASE_SECONDS + 10_000  # the trainer's default
    job = job_manifest(single, "s1", NAMESPACE, FULL)
    assert job["spec"]["activeDeadlineSeconds"] == 7200  # the spec's own wins


@pytest.mark.controller_traffic
def test_a_job_launched_before_identities_is_found_under_its_old_name_only_when_it_is_ours(
        apiserver: FakeApiServer, api_client: Any) -> None:
    """A search running during the upgrade goes on: its Jobs were named after the launch id
    alone. A Job of that name not owned by this search's uid is
    not taken (here: a Job of that name that nobody owns): the child is missing, and would be
    launched again under the new name."""
    owner = make_search(apiserver)
    old = job_manifest(launch_of("s1-t00000"), "s1", NAMESPACE, FULL, owner["metadata"]["uid"])
    old["metadata"]["name"] = "s1-t00000"  # as a controller of the version before named it
    apiserver.put_object("jobs", NAMESPACE, old)
    apiserver.set_status("jobs", NAMESPACE, "s1-t00000", {"active": 1, "ready": 1})
    foreign = job_manifest(launch_of("s1-t00001"), "s1", NAMESPACE, FULL)  # owned by nobody
    apiserver.put_object("jobs", NAMESPACE, foreign)
    backend = make_backend(api_client, owner)
    assert backend.state("s1-t00000").phase in ("running", "queued")
    assert backend.job_name("s1-t00000") == "s1-t00000"
    assert backend.state("s1-t00001").phase == "missing"
    backend.cancel("s1-t00000")
    backend.cancel("s1-t00001")  # not ours: never deleted
    names = {j["metadata"]["name"] for j in apiserver.items("jobs", NAMESPACE)}
    assert names == {"s1-t00001"}


def test_a_search_re_created_under_its_name_never_reattaches_to_the_jobs_of_the_one_before(
        apiserver: FakeApiServer, api_client: Any) -> None:
    first = make_search(apiserver)
    make_backend(api_client, first).launch(launch_of("s1-t00000"))
    apiserver.delete_object("activationsearches", NAMESPACE, "s1", "Orphan")  # Jobs kept
    second = make_search(apiserver)
    backend = make_backend(api_client, second)
    assert backend.state("s1-t00000").phase == "missing"
    backend.launch(launch_of("s1-t00000"))
    assert len(apiserver.items("jobs", NAMESPACE)) == 2
def test_a_job_that_used_up_its_retries_is_classified_by_its_last_pods_exit_code(
        apiserver: FakeApiServer, api_client: Any, jobs: JobController) -> None:
    """Against the fake API server and its Job controller (no real cluster runs here): every
    attempt exits 4 (MLflow unreachable), a code the podFailurePolicy counts, so the Job ends in
    BackoffLimitExceeded, whose condition names no exit code. The backend reads the last pod's,
    and the failure brake sees the infrastructure cause."""
    from orchestrator.contract import ExitCode
    from orchestrator.loop.brake import infrastructure_cause
    from orchestrator.loop.ledger import crash_cause, crash_failure

    backend = launched(apiserver, api_client, jobs, PodPlan(phase="Running"))
    job = job_of(apiserver, "s1-t00000")
    for attempt in range(FULL.backoff_limit + 1):
        wait_for(lambda n=attempt + 1: len(jobs.pods(NAMESPACE, job)) == n, 5,
                 f"pod {attempt + 1}")
        jobs.fail(NAMESPACE, job, exit_code=int(ExitCode.INFRASTRUCTURE))
    wait_for(lambda: backend.state("s1-t00000").phase == "failed", 5, "the Job to fail")
    state = backend.state("s1-t00000")
    assert state.exit_code == int(ExitCode.INFRASTRUCTURE)
    assert state.reason is not None and state.reason.startswith("BackoffLimitExceeded")
    assert state.cause is Cause.UNREACHABLE
    assert infrastructure_cause(crash_cause(state)) == (
        "MLflow, S3 or the data source could not be reached (exit code 4)")
    assert crash_failure(state) == ("crashed: BackoffLimitExceeded: Job has reached the "
                                    "specified backoff limit (exit code 4)")


def test_last_exit_is_the_trainers_code_in_the_last_pod_that_ended() -> None:
    def pod(created: str, phase: str, code: int | None, container: str = "trainer"
            ) -> dict[str, Any]:
        state = {"terminated": {"exitCode": code, "reason": "Error"}} if code is not None \
            else {"running": {}}
        return {"metadata": {"creationTimestamp": created}, "status": {
            "phase": phase, "containerStatuses": [{"name": container, "state": state}]}}

    assert last_exit([]) is None
    assert last_exit([pod("2026-01-01T00:00:00Z", "Running", None)]) is None
    assert last_exit([pod("2026-01-01T00:00:09Z", "Failed", 4),
                      pod("2026-01-01T00:00:01Z", "Failed", 1),
                      pod("2026-01-01T00:00:10Z", "Running", None)]) == (4, "Error")
    assert last_exit([pod("2026-01-01T00:00:01Z", "Failed", 9, container="sidecar")]) is None
