"""actsearch-ctl's cluster commands in-process (click's CliRunner) with a kubeconfig pointing at
the fake API server of tests/k8s: no real API server can run here; the fake answers over real
HTTP as the API would, missing CRD, refused permissions and all."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from orchestrator.adapters.kube import CONTROLLER_SELECTOR
from orchestrator.cli import main
from tests.k8s.conftest import NAMESPACE
from tests.k8s.fake_apiserver import FakeApiServer
from tests.k8s.harness import SPACE, search_object

SPEC = {"name": "s1", "space": SPACE, "strategy": {"name": "random"}, "budget": {"trials": 6},
        "child": {"model": "mlp", "dataset": "digits", "steps": 10}}


def ctl(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(SPEC))
    return path


def resource_calls(apiserver: FakeApiServer) -> list[Any]:
    return [r for r in apiserver.requests if r.resource]


def test_submit_creates_an_activation_search_from_the_spec_file_of_run(
        apiserver: FakeApiServer, kubeconfig: Path, spec_file: Path) -> None:
    result = ctl("submit", str(spec_file), "--kubeconfig", str(kubeconfig))
    assert result.exit_code == 0, result.output
    assert f"created in namespace {NAMESPACE}" in result.output
    obj = apiserver.get("activationsearches", NAMESPACE, "s1")
    assert obj is not None
    assert (obj["apiVersion"], obj["kind"]) == ("actsearch.io/v1alpha1", "ActivationSearch")
    (sent,) = [r.body for r in apiserver.calls("create", "activationsearches")]
    assert "name" not in sent["spec"] and sent["spec"]["budget"] == {"trials": 6}
    assert sent["spec"]["backend"] == {"kind": "kubernetes"}
    assert obj["spec"]["budget"]["trials"] == 6  # stored with the CRD's defaults filled in


def test_submit_dry_run_prints_the_object_and_creates_nothing(
        apiserver: FakeApiServer, kubeconfig: Path, spec_file: Path) -> None:
    result = ctl("submit", str(spec_file), "--dry-run", "-n", "team-a", "--kubeconfig", str(kubeconfig))
    assert result.exit_code == 0, result.output
    obj = yaml.safe_load(result.output)
    assert obj["metadata"] == {"name": "s1", "namespace": "team-a"}
    assert obj["spec"]["strategy"] == {"name": "random"}
    assert resource_calls(apiserver) == []


def test_submit_of_a_bad_spec_names_every_bad_field_and_creates_nothing(
        apiserver: FakeApiServer, kubeconfig: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**SPEC, "budget": {"trials": -1}, "parallelism": "many"}))
    result = ctl("submit", str(bad), "--kubeconfig", str(kubeconfig))
    assert result.exit_code == 1
    assert "budget.trials" in result.output and "parallelism" in result.output
    assert "Traceback" not in result.output
    assert resource_calls(apiserver) == []
    local = tmp_path / "local.yaml"
    local.write_text(yaml.safe_dump({**SPEC, "backend": {"kind": "local"}}))
    result = ctl("submit", str(local), "--kubeconfig", str(kubeconfig))
    assert result.exit_code == 1 and "backend.kind is 'local'" in result.output
    assert resource_calls(apiserver) == []


def test_submitting_an_existing_search_again_says_so_and_changes_nothing(
        apiserver: FakeApiServer, kubeconfig: Path, spec_file: Path) -> None:
    assert ctl("submit", str(spec_file), "--kubeconfig", str(kubeconfig)).exit_code == 0
    before = apiserver.get("activationsearches", NAMESPACE, "s1")
    result = ctl("submit", str(spec_file), "--kubeconfig", str(kubeconfig))
    assert result.exit_code == 1
    assert "already exists in namespace 'research'" in result.output
    assert "actsearch-ctl cancel s1" in result.output
    assert apiserver.get("activationsearches", NAMESPACE, "s1") == before


def test_a_cluster_without_the_crd_gets_the_install_command(
        kubeconfig: Path, spec_file: Path, apiserver: FakeApiServer) -> None:
    apiserver.crd_installed = False
    for args in (["submit", str(spec_file)], ["list"], ["status", "s1"], ["cancel", "s1"]):
        result = ctl(*args, "--kubeconfig", str(kubeconfig))
        assert result.exit_code == 1, args
        assert "the ActivationSearch CRD is not installed" in result.output
        assert "helm install actsearch" in result.output and "Traceback" not in result.output


def test_a_refused_permission_names_the_verb_and_the_resource(
        apiserver: FakeApiServer, kubeconfig: Path) -> None:
    apiserver.fail("list", "activationsearches", 403)
    result = ctl("list", "--kubeconfig", str(kubeconfig))
    assert result.exit_code == 1
    assert "forbidden (403)" in result.output
    assert 'cannot list resource "activationsearches"' in result.output


def test_an_unreachable_cluster_is_reported_in_one_sentence(tmp_path: Path) -> None:
    dead = FakeApiServer().start()
    config = dead.write_kubeconfig(tmp_path / "kubeconfig", NAMESPACE)
    dead.stop()
    result = ctl("list", "--kubeconfig", str(config))
    assert result.exit_code == 1
    assert "could not be reached" in result.output and dead.url in result.output
    assert "Traceback" not in result.output


def test_a_missing_kubeconfig_is_reported_with_what_to_do(tmp_path: Path) -> None:
    result = ctl("list", "--kubeconfig", str(tmp_path / "nowhere"))
    assert result.exit_code == 1 and "no Kubernetes configuration found" in result.output


def with_status(apiserver: FakeApiServer, name: str, namespace: str = NAMESPACE,
                **status: Any) -> dict[str, Any]:
    obj = apiserver.put_object("activationsearches", namespace, search_object(name))
    apiserver.set_status("activationsearches", namespace, name, status)
    return obj


def test_list_shows_phase_progress_and_best_function_of_each_search(
        apiserver: FakeApiServer, kubeconfig: Path) -> None:
    with_status(apiserver, "s1", phase="Running", trialsDone=3, trialsRunning=2, trialsFailed=1,
                bestAccuracy=0.91234, bestFunction="x * sigmoid(x)")
    with_status(apiserver, "s2", phase="Succeeded", trialsDone=4)
    with_status(apiserver, "other", "team-b", phase="Pending")
    result = ctl("list", "--kubeconfig", str(kubeconfig))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    row = next(line.split() for line in lines if line.split()[:1] == ["s1"])
    assert row[:6] == ["s1", "Running", "3/4", "2", "1", "0.9123"]
    assert "x * sigmoid(x)" in result.output and "other" not in result.output
    everywhere = ctl("list", "-A", "--kubeconfig", str(kubeconfig))
    assert "team-b" in everywhere.output and "other" in everywhere.output


def test_status_shows_phase_counts_best_age_and_the_mlflow_run(
        apiserver: FakeApiServer, kubeconfig: Path) -> None:
    with_status(apiserver, "s1", phase="Running", trialsDone=3, trialsRunning=2, trialsFailed=0,
                cacheHits=5, bestAccuracy=0.9, bestFunction="max(x, 0)", bestFingerprint="ab12",
                parentRunId="0123abcd", message="3 of 4 children trained.", observedGeneration=1)
    result = ctl("status", "s1", "--kubeconfig", str(kubeconfig))
    assert result.exit_code == 0, result.output
    out = result.output
    for needle in ("research/s1", "Running", "3/4 trained, 2 running, 0 failed, 5 answered",
                   "0.9000  max(x, 0)  (ab12)", "0123abcd", "3 of 4 children trained."):
        assert needle in out
    assert any(line.startswith("age") and line.split()[1].endswith("s") for line in out.splitlines())
    missing = ctl("status", "nope", "--kubeconfig", str(kubeconfig))
    assert missing.exit_code == 1
    assert "there is no ActivationSearch 'nope' in namespace 'research'" in missing.output


def test_logs_of_a_trial_come_from_its_pod_found_by_label(
        apiserver: FakeApiServer, kubeconfig: Path) -> None:
    apiserver.put_object("pods", NAMESPACE, {"metadata": {
        "name": "s1-t00003-x7k2p", "labels": {"actsearch.io/trial": "s1-t00003"}}})
    apiserver.put_object("pods", NAMESPACE, {"metadata": {
        "name": "s1-t00004-a1b2c", "labels": {"actsearch.io/trial": "s1-t00004"}}})
    apiserver.logs[(NAMESPACE, "s1-t00003-x7k2p")] = "step 100 loss 0.5\nval_accuracy 0.91\n"
    apiserver.logs[(NAMESPACE, "s1-t00004-a1b2c")] = "another trial\n"
    for trial in ("3", "t00003", "s1-t00003"):
        result = ctl("logs", "s1", trial, "--kubeconfig", str(kubeconfig))
        assert result.exit_code == 0, result.output
        assert result.output == "step 100 loss 0.5\nval_accuracy 0.91\n"
    gone = ctl("logs", "s1", "7", "--kubeconfig", str(kubeconfig))
    assert gone.exit_code == 1 and "no pods of trial s1-t00007" in gone.output


def test_logs_of_a_packed_trial_come_from_its_packs_pod_found_by_annotation(
        apiserver: FakeApiServer, kubeconfig: Path) -> None:
    from orchestrator.backends.base import Launch
    from orchestrator.backends.kubernetes import job_manifest
    from orchestrator.spec import KubernetesBackendSpec

    def pack_pod(search: str, first: int, size: int, log: str) -> None:
        trials = tuple(f"{search}-t{i:05d}" for i in range(first, first + size))
        pack = f"{search}-p{first:05d}"
        manifest = job_manifest(Launch(pack, None, {"pack": []}, {}, trials), search, NAMESPACE,
                                KubernetesBackendSpec())
        apiserver.put_object("pods", NAMESPACE, {
            "metadata": {"name": f"{pack}-x7k2p", **manifest["spec"]["template"]["metadata"]}})
        apiserver.logs[(NAMESPACE, f"{pack}-x7k2p")] = log

    pack_pod("s1", 0, 4, "pack 0: members t0-t3\n")
    pack_pod("s1", 4, 4, "pack 4: members t4-t7\n")
    pack_pod("s10", 5, 2, "another search\n")
    for trial in ("5", "t00005", "s1-t00005", "p00004", "s1-p00004"):
        result = ctl("logs", "s1", trial, "--kubeconfig", str(kubeconfig))
        assert result.exit_code == 0, result.output
        assert result.stdout == "pack 4: members t4-t7\n"
        if "p" not in trial:
            assert "trial s1-t00005 trains in pack s1-p00004" in result.stderr
    gone = ctl("logs", "s1", "8", "--kubeconfig", str(kubeconfig))
    assert gone.exit_code == 1 and "no pods of trial s1-t00008" in gone.output


def test_logs_without_a_trial_are_the_controller_lines_about_that_search(
        apiserver: FakeApiServer, kubeconfig: Path) -> None:
    labels = dict(kv.split("=") for kv in CONTROLLER_SELECTOR.split(","))
    apiserver.put_object("pods", NAMESPACE, {"metadata": {"name": "actsearch-controller-0",
                                                          "labels": labels}})
    apiserver.logs[(NAMESPACE, "actsearch-controller-0")] = "\n".join([
        "INFO trial s1-t00001 launched: relu(x)",
        "INFO trial s10-t00001 launched: sin(x)",
        "INFO trial s1-t00002 launched in pack s1-p00002: relu(x)",
        "WARNING trial s10-t00003: child not found; launching it again in pack s10-p00002",
        "INFO [research/s1] search research/s1 started",
        "INFO watching ActivationSearches in research",
    ])
    result = ctl("logs", "s1", "--kubeconfig", str(kubeconfig))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["INFO trial s1-t00001 launched: relu(x)",
                                          "INFO trial s1-t00002 launched in pack s1-p00002: relu(x)",
                                          "INFO [research/s1] search research/s1 started"]


def test_cancel_delete_deletes_the_search_and_its_jobs_go_with_it(
        apiserver: FakeApiServer, kubeconfig: Path) -> None:
    from orchestrator.backends.base import Launch
    from orchestrator.backends.kubernetes import job_manifest
    from orchestrator.spec import KubernetesBackendSpec

    obj = with_status(apiserver, "s1", phase="Running")
    launch = Launch("s1-t00000", "run-1", {"expression": "relu(x)"}, {})
    apiserver.put_object("jobs", NAMESPACE, job_manifest(
        launch, "s1", NAMESPACE, KubernetesBackendSpec(), obj["metadata"]["uid"]))
    result = ctl("cancel", "s1", "--delete", "--kubeconfig", str(kubeconfig))
    assert result.exit_code == 0, result.output
    assert apiserver.get("activationsearches", NAMESPACE, "s1") is None
    assert apiserver.items("jobs") == []
    again = ctl("cancel", "s1", "--delete", "--kubeconfig", str(kubeconfig))
    assert again.exit_code == 1 and "there is no ActivationSearch 's1'" in again.output


def test_top_of_a_cluster_search_reads_the_tracking_uri_from_the_object(
        apiserver: FakeApiServer, kubeconfig: Path, mlflow_env: dict[str, str],
        mlflow_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestrator.adapters.tracking import MlflowTracker
    from orchestrator.cluster.incluster import identity_of

    obj = apiserver.put_object("activationsearches", NAMESPACE, search_object(
        "topsearch", tracking={"uri": mlflow_server.url, "experiment": "cli-top"}))
    tracker = MlflowTracker(mlflow_server.url, "cli-top", owner=identity_of(obj))
    parent = tracker.start_search("topsearch", {})
    other = MlflowTracker(mlflow_server.url, "cli-top")  # another search of the same name
    other.record_outcome(other.create_trial_run("topsearch", "elsewhere", "topsearch-t00000", {
        "actsearch.expression": "neg(x)", "actsearch.fingerprint": "fpx"}), 0.99, None)
    for i, (expr, reward) in enumerate([("relu(x)", 0.8), ("sin(x)", 0.6), ("tanh(x)", 0.9)]):
        run = tracker.create_trial_run("topsearch", parent, f"topsearch-t{i:05d}", {
            "actsearch.expression": expr, "actsearch.fingerprint": f"fp{i}"})
        tracker.record_outcome(run, reward, None)
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    result = ctl("top", "topsearch", "-n", NAMESPACE, "--kubeconfig", str(kubeconfig), "--json")
    assert result.exit_code == 0, result.output
    import json

    rows = json.loads(result.output)
    assert [(r["expression"], r["reward"]) for r in rows] == [
        ("tanh(x)", 0.9), ("relu(x)", 0.8), ("sin(x)", 0.6)]
    apiserver.put_object("activationsearches", NAMESPACE, search_object("untracked"))
    result = ctl("top", "untracked", "--cluster", "--kubeconfig", str(kubeconfig))
    assert result.exit_code == 1 and "pass --tracking-uri" in result.output


def test_the_operator_command_refuses_conflicting_or_malformed_options_before_connecting(
        apiserver: FakeApiServer, kubeconfig: Path) -> None:
    both = ctl("operator", "-n", "a", "--all-namespaces", "--kubeconfig", str(kubeconfig))
    assert both.exit_code == 1 and "either --namespace or --all-namespaces" in both.output
    local = ctl("operator", "--storage-uri", "/data/checkpoints", "--kubeconfig", str(kubeconfig))
    assert local.exit_code == 1 and "must look like s3://bucket/prefix" in local.output
    assert apiserver.requests == []


def test_the_operator_refuses_a_defaults_or_policy_file_with_a_key_given_twice_before_connecting(
        apiserver: FakeApiServer, kubeconfig: Path, tmp_path: Path) -> None:
    """Both files are read strictly (UTF-8, no key twice: PyYAML would keep the last one)."""
    defaults = tmp_path / "defaults.yaml"
    defaults.write_text("backend:\n  kubernetes: {image: 'a:1'}\n  kubernetes: {image: 'b:1'}\n")
    twice = ctl("operator", "--defaults", str(defaults), "--kubeconfig", str(kubeconfig))
    assert twice.exit_code == 1
    assert "line 3: key 'kubernetes' is given twice" in twice.output
    policy = tmp_path / "policy.yaml"
    policy.write_text("maxTrials: 10\nimages: []\nmaxTrials: 100000\n")
    twice = ctl("operator", "--policy", str(policy), "--kubeconfig", str(kubeconfig))
    assert twice.exit_code == 1 and "key 'maxTrials' is given twice" in twice.output
    policy.write_text("maxGpus: 2\n")
    unknown = ctl("operator", "--policy", str(policy), "--kubeconfig", str(kubeconfig))
    assert unknown.exit_code == 1 and "maxGpus: unknown field" in unknown.output
    assert "Traceback" not in unknown.output
    assert apiserver.requests == []
