"""actsearch-ctl in kubectl's habits, against the fake API server of tests/k8s (no real API
server can run here): submit of a spec or of a manifest, list -o, status --watch, logs -f,
cancel and retry of a cancelled search."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.adapters.kube import CANCEL_ANNOTATION
from orchestrator.cluster.submission import is_manifest
from tests.k8s.conftest import NAMESPACE
from tests.k8s.fake_apiserver import FakeApiServer
from tests.k8s.test_cli import SPEC, ctl, resource_calls, with_status

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
BEST = {"trial": "s1-t00007", "expression": "x * sigmoid(x)", "valAccuracy": 0.95,
        "fingerprint": "fp7", "runId": "run-7"}


def searches_in_examples() -> list[Path]:
    """The examples that are an ActivationSearch manifest or a search spec (a table spec, which
    lists `functions`, is neither)."""
    found = []
    for path in sorted(EXAMPLES.glob("*.yaml")):
        raw = yaml.safe_load(path.read_text())
        if is_manifest(raw) or (isinstance(raw, dict) and "space" in raw and "functions" not in raw):
            found.append(path)
    return found


def manifest(**overrides: Any) -> dict[str, Any]:
    spec = {k: v for k, v in SPEC.items() if k != "name"}
    return {"apiVersion": "actsearch.io/v1alpha1", "kind": "ActivationSearch",
            "metadata": {"name": "m1"}, "spec": spec, **overrides}


def write(tmp_path: Path, obj: Any, name: str = "search.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(obj))
    return path


def test_every_search_in_examples_is_accepted_by_submit(
        apiserver: FakeApiServer, kubeconfig: Path) -> None:
    paths = searches_in_examples()
    assert {"search-cpu.yaml", "search-paper.yaml", "quickstart.yaml"} <= {p.name for p in paths}
    for path in paths:
        result = ctl("submit", str(path), "--kubeconfig", str(kubeconfig))
        assert result.exit_code == 0, (path, result.output)
        raw = yaml.safe_load(path.read_text())
        name = raw["metadata"]["name"] if is_manifest(raw) else raw["name"]
        obj = apiserver.get("activationsearches", NAMESPACE, name)
        assert obj is not None and obj["spec"]["backend"]["kind"] == "kubernetes", path
        assert "name" not in obj["spec"]


def test_submit_takes_a_manifest_with_its_namespace_labels_and_annotations(
        apiserver: FakeApiServer, kubeconfig: Path, tmp_path: Path) -> None:
    path = write(tmp_path, manifest(metadata={
        "name": "m1", "namespace": "team-a", "labels": {"team": "a"},
        "annotations": {"owner": "ada"}}))
    result = ctl("submit", str(path), "--kubeconfig", str(kubeconfig))
    assert result.exit_code == 0, result.output
    assert "created in namespace team-a" in result.output
    obj = apiserver.get("activationsearches", "team-a", "m1")
    assert obj is not None and obj["metadata"]["labels"] == {"team": "a"}
    assert obj["metadata"]["annotations"] == {"owner": "ada"}
    # what the manifest says is kept; the API server fills in the CRD's defaults beside it
    assert obj["spec"]["budget"]["trials"] == 6
    assert apiserver.get("activationsearches", NAMESPACE, "m1") is None


def test_the_namespace_option_wins_over_the_manifests_namespace(
        apiserver: FakeApiServer, kubeconfig: Path, tmp_path: Path) -> None:
    path = write(tmp_path, manifest(metadata={"name": "m1", "namespace": "team-a"}))
    result = ctl("submit", str(path), "-n", "team-b", "--kubeconfig", str(kubeconfig))
    assert result.exit_code == 0, result.output
    assert apiserver.get("activationsearches", "team-b", "m1") is not None
    assert apiserver.get("activationsearches", "team-a", "m1") is None


@pytest.mark.parametrize(("overrides", "needles"), [
    ({"apiVersion": "actsearch.io/v1"},
     ["apiVersion: must be actsearch.io/v1alpha1; got 'actsearch.io/v1'"]),
    ({"kind": "Experiment"}, ["kind: must be ActivationSearch; got 'Experiment'"]),
    ({"metadata": {"namespace": "x"}}, ["metadata.name: required"]),
    ({"metadata": {"name": "m1", "finalizers": ["a"]}}, ["metadata.finalizers: not taken"]),
    ({"spec": None}, ["spec: required"]),
    ({"spec": {**manifest()["spec"], "name": "other"}}, ["spec.name: a manifest names"]),
    ({"extra": 1}, ["extra: unknown field"]),
    ({"spec": {**manifest()["spec"], "budget": {"trials": -1}}}, ["budget.trials"]),
    ({"spec": {**manifest()["spec"], "backend": {"kind": "local"}}}, ["backend.kind is 'local'"]),
])
def test_a_bad_manifest_is_refused_with_the_field_named_and_nothing_is_created(
        apiserver: FakeApiServer, kubeconfig: Path, tmp_path: Path, overrides: dict[str, Any],
        needles: list[str]) -> None:
    path = write(tmp_path, manifest(**overrides))
    result = ctl("submit", str(path), "--kubeconfig", str(kubeconfig))
    assert result.exit_code == 1, result.output
    for needle in needles:
        assert needle in result.output
    assert "Traceback" not in result.output and resource_calls(apiserver) == []


def test_submit_dry_run_of_a_manifest_prints_the_object_it_would_create(
        apiserver: FakeApiServer, kubeconfig: Path, tmp_path: Path) -> None:
    path = write(tmp_path, manifest(metadata={"name": "m1", "namespace": "team-a"}))
    result = ctl("submit", str(path), "--dry-run", "--kubeconfig", str(kubeconfig))
    assert result.exit_code == 0, result.output
    obj = yaml.safe_load(result.output)
    assert obj["metadata"] == {"name": "m1", "namespace": "team-a"}
    assert obj["spec"]["backend"] == {"kind": "kubernetes"}
    assert resource_calls(apiserver) == []


def test_list_output_json_and_yaml_are_the_objects_as_kubectl_prints_them(
        apiserver: FakeApiServer, kubeconfig: Path) -> None:
    with_status(apiserver, "s1", phase="Running", trialsDone=3, best=BEST)
    with_status(apiserver, "s2", phase="Succeeded")
    as_json = ctl("list", "-o", "json", "--kubeconfig", str(kubeconfig))
    assert as_json.exit_code == 0, as_json.output
    listing = json.loads(as_json.output)
    assert listing["kind"] == "List" and [o["metadata"]["name"] for o in listing["items"]] == [
        "s1", "s2"]
    assert listing["items"][0]["status"]["best"] == BEST
    as_yaml = ctl("list", "-o", "yaml", "--kubeconfig", str(kubeconfig))
    assert yaml.safe_load(as_yaml.output) == listing
    empty = ctl("list", "-o", "json", "-n", "nobody", "--kubeconfig", str(kubeconfig))
    assert json.loads(empty.output)["items"] == []


def test_list_output_wide_adds_the_best_trial_cache_hits_ready_and_the_message(
        apiserver: FakeApiServer, kubeconfig: Path) -> None:
    with_status(apiserver, "s1", phase="Running", trialsDone=3, trialsBudget=9, cacheHits=2,
                best=BEST, parentRunId="parent-1", message="3 of 9 children trained.",
                conditions=[{"type": "Ready", "status": "True", "reason": "Running"}])
    plain = ctl("list", "--kubeconfig", str(kubeconfig))
    header = plain.output.splitlines()[0].split()
    assert header == ["NAME", "PHASE", "DONE", "RUNNING", "FAILED", "BEST", "FUNCTION", "AGE"]
    row = next(line.split() for line in plain.output.splitlines() if line.split()[:1] == ["s1"])
    assert row[:6] == ["s1", "Running", "3/9", "0", "0", "0.9500"]
    assert "x * sigmoid(x)" in plain.output
    wide = ctl("list", "-o", "wide", "--kubeconfig", str(kubeconfig))
    assert wide.exit_code == 0, wide.output
    for needle in ("TRIAL", "MLFLOW RUN", "MESSAGE", "s1-t00007", "True (Running)", "parent-1",
                   "3 of 9 children trained."):
        assert needle in wide.output
    bad = ctl("list", "-o", "table", "--kubeconfig", str(kubeconfig))
    assert bad.exit_code == 2 and "'table' is not one of 'wide', 'json', 'yaml'" in bad.output


def test_status_shows_the_best_trial_and_the_conditions(
        apiserver: FakeApiServer, kubeconfig: Path) -> None:
    with_status(apiserver, "s1", phase="Failed", best=BEST, message="no MLflow", conditions=[
        {"type": "Ready", "status": "False", "reason": "SearchFailed"},
        {"type": "Succeeded", "status": "False", "reason": "SearchFailed"},
        {"type": "Failed", "status": "True", "reason": "SearchFailed"}])
    result = ctl("status", "s1", "--kubeconfig", str(kubeconfig))
    assert result.exit_code == 0, result.output
    assert "0.9500  x * sigmoid(x)  (fp7)  trial s1-t00007" in result.output
    assert ("Ready=False (SearchFailed), Succeeded=False (SearchFailed), "
            "Failed=True (SearchFailed)") in result.output


def test_status_watch_prints_each_change_until_the_search_ends(
        apiserver: FakeApiServer, kubeconfig: Path) -> None:
    with_status(apiserver, "s1", phase="Running", trialsDone=1, observedGeneration=1)

    def progress() -> None:
        time.sleep(0.5)
        apiserver.set_status("activationsearches", NAMESPACE, "s1",
                             {"phase": "Running", "trialsDone": 3, "observedGeneration": 1})
        time.sleep(0.5)
        apiserver.set_status("activationsearches", NAMESPACE, "s1",
                             {"phase": "Succeeded", "trialsDone": 4, "observedGeneration": 1})

    writer = threading.Thread(target=progress)
    writer.start()
    started = time.monotonic()
    result = ctl("status", "s1", "--watch", "--interval", "0.2", "--kubeconfig", str(kubeconfig))
    writer.join()
    assert result.exit_code == 0, result.output
    phases = [line.split()[1] for line in result.output.splitlines() if line.startswith("phase")]
    assert phases == ["Running", "Running", "Succeeded"]  # one print per change, no repeats
    assert time.monotonic() - started < 10
    gets = list(apiserver.calls("get", "activationsearches"))
    assert 4 <= len(gets) <= 20  # polled at the interval, not in a busy loop
    as_json = ctl("status", "s1", "--watch", "--json", "--kubeconfig", str(kubeconfig))
    assert json.loads(as_json.output)["phase"] == "Succeeded"  # ended: one line, then done
    slow = ctl("status", "s1", "--watch", "--interval", "0", "--kubeconfig", str(kubeconfig))
    assert slow.exit_code == 2 and "--interval" in slow.output


def test_logs_follow_streams_the_newest_pod_of_a_trial(
        apiserver: FakeApiServer, kubeconfig: Path) -> None:
    for pod, log in (("s1-t00003-aaaaa", "first attempt\n"), ("s1-t00003-bbbbb", "step 1\nstep 2")):
        apiserver.put_object("pods", NAMESPACE, {"metadata": {
            "name": pod, "labels": {"actsearch.io/trial": "s1-t00003"}}})
        apiserver.logs[(NAMESPACE, pod)] = log
        time.sleep(1.1)  # creationTimestamps a second apart: the second pod is the newest
    result = ctl("logs", "s1", "3", "-f", "--kubeconfig", str(kubeconfig))
    assert result.exit_code == 0, result.output
    assert result.output == "step 1\nstep 2"
    (call,) = list(apiserver.calls("get", "pods/log"))
    assert call.name == "s1-t00003-bbbbb"


def test_cancel_requests_a_stop_and_keeps_the_search_and_its_jobs_to_the_controller(
        apiserver: FakeApiServer, kubeconfig: Path) -> None:
    with_status(apiserver, "s1", phase="Running")
    result = ctl("cancel", "s1", "--kubeconfig", str(kubeconfig))
    assert result.exit_code == 0, result.output
    assert "cancel requested" in result.output
    assert "kubectl wait --for=jsonpath='{.status.phase}'=Cancelled" in result.output
    obj = apiserver.get("activationsearches", NAMESPACE, "s1")
    assert obj is not None and CANCEL_ANNOTATION in obj["metadata"]["annotations"]
    assert obj["metadata"]["generation"] == 1  # not an edit of the spec
    assert apiserver.calls("delete") == []
    shown = ctl("status", "s1", "--kubeconfig", str(kubeconfig))
    assert "cancel requested" in shown.output


def test_cancel_of_a_finished_search_changes_nothing_and_says_how_to_delete_it(
        apiserver: FakeApiServer, kubeconfig: Path) -> None:
    with_status(apiserver, "s1", phase="Succeeded")
    with_status(apiserver, "s2", phase="Cancelled")
    done = ctl("cancel", "s1", "--kubeconfig", str(kubeconfig))
    assert done.exit_code == 1 and "is Succeeded: there is nothing to cancel" in done.output
    assert "actsearch-ctl cancel s1 -n research --delete" in done.output
    again = ctl("cancel", "s2", "--kubeconfig", str(kubeconfig))
    assert again.exit_code == 0 and "already Cancelled" in again.output
    assert apiserver.calls("patch") == []


def test_retry_of_a_cancelled_search_withdraws_the_cancel_request(
        apiserver: FakeApiServer, kubeconfig: Path) -> None:
    with_status(apiserver, "s1", phase="Cancelled", observedGeneration=1)
    apiserver.patch_object("activationsearches", NAMESPACE, "s1",
                           {"metadata": {"annotations": {CANCEL_ANNOTATION: "t"}}})
    result = ctl("retry", "s1", "--kubeconfig", str(kubeconfig))
    assert result.exit_code == 0, result.output
    obj = apiserver.get("activationsearches", NAMESPACE, "s1")
    assert obj is not None and CANCEL_ANNOTATION not in (obj["metadata"].get("annotations") or {})
    assert "observedGeneration" not in obj["status"]
    with_status(apiserver, "s2", phase="Running")
    running = ctl("retry", "s2", "--kubeconfig", str(kubeconfig))
    assert running.exit_code == 1 and "not Failed or Cancelled" in running.output
