"""Editing a search that already started, end to end: `actsearch-ctl submit --update` and merge
patches (what `kubectl edit`/`kubectl patch` send) against the operator, over real HTTP through
the fake API server of tests/k8s (no real API server can run here; the fake bumps
``metadata.generation`` on spec changes as the API does). Children are simulated as in
test_operator.py."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

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
from tests.k8s.test_cli import ctl
from tests.k8s.test_operator import event_reasons, phase, wait_for_event


def spec_of_object(**spec: Any) -> dict[str, Any]:
    """The spec file whose ActivationSearch is ``search_object(**spec)``."""
    return {"name": "s1", **search_object(**spec)["spec"]}


def write_spec(tmp_path: Path, **spec: Any) -> Path:
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(spec_of_object(**spec)))
    return path


def patch_spec(api_client: Any, patch: dict[str, Any]) -> None:
    """A merge patch of the spec, as `kubectl patch --type merge` sends it."""
    from kubernetes import client

    client.CustomObjectsApi(api_client).patch_namespaced_custom_object(
        "actsearch.io", "v1alpha1", NAMESPACE, "activationsearches", "s1", {"spec": patch})


def trained(tracker: LockedTracker) -> list[str]:
    return sorted(r.trial_id for r in tracker.runs.values()
                  if r.tags.get("actsearch.source") == "trained")


def trial_steps(apiserver: FakeApiServer) -> set[int]:
    steps = set()
    for job in apiserver.items("jobs", NAMESPACE):
        env = {e["name"]: e.get("value") for e in
               job["spec"]["template"]["spec"]["containers"][0]["env"]}
        steps.add(json.loads(env["ACTSEARCH_TRIAL_SPEC"])["child"]["steps"])
    return steps


def running_jobs(apiserver: FakeApiServer) -> int:
    return sum(1 for j in apiserver.items("jobs", NAMESPACE)
               if not (j.get("status") or {}).get("conditions"))


def test_raising_budget_and_parallelism_of_a_running_search_applies_both_at_once(
        apiserver: FakeApiServer, api_client: Any, kubeconfig: Path, tmp_path: Path) -> None:
    """`submit --update` of a running search: the next launches use the new parallelism and
    the search trains up to the new budget, without training anything twice."""
    tracker = LockedTracker()
    assert ctl("submit", str(write_spec(tmp_path)), "--kubeconfig", str(kubeconfig)).exit_code == 0
    children = Children(apiserver, tracker, hold=True)
    with children.running(), operator_running(api_client, defaults(tracker, str(tmp_path))):
        wait_for(lambda: status_of(apiserver).get("trialsRunning") == 2, 15, "two running")
        edited = write_spec(tmp_path, budget={"trials": 7}, parallelism=3)
        result = ctl("submit", str(edited), "--update", "--kubeconfig", str(kubeconfig))
        assert result.exit_code == 0, result.output
        assert "budget.trials 4 → 7" in result.output and "parallelism 2 → 3" in result.output
        wait_for(lambda: running_jobs(apiserver) == 3, 15, "a third Job (parallelism 3)")
        wait_for_event(apiserver, "SpecUpdated")
        children.hold = False
        final = wait_for(lambda: phase(apiserver, "Succeeded"), 30, "phase Succeeded")
        wait_for_event(apiserver, "Succeeded")
    names = trained(tracker)
    assert final["trialsDone"] == len(names) == len(set(names)) == 7
    assert final["observedGeneration"] == 2
    assert final["message"].startswith("Finished: 7 of 7 children trained")
    assert "Resumed" in event_reasons(apiserver)  # the rebuilt loop resumed its checkpoint


def test_an_edit_of_a_field_a_search_keeps_is_reported_and_the_search_runs_on_unchanged(
        apiserver: FakeApiServer, api_client: Any, kubeconfig: Path, tmp_path: Path) -> None:
    """A merge patch of child.steps and budget together (as `kubectl patch` would send; the CLI
    refuses it before sending): nothing of it is applied, the Event and the status say why."""
    tracker = LockedTracker()
    apiserver.put_object("activationsearches", NAMESPACE, search_object())
    children = Children(apiserver, tracker, hold=True)
    with children.running(), operator_running(api_client, defaults(tracker, str(tmp_path))):
        wait_for(lambda: status_of(apiserver).get("trialsRunning") == 2, 15, "two running")
        patch_spec(api_client, {"child": {"steps": 99}, "budget": {"trials": 6}})
        wait_for_event(apiserver, "SpecChangeRejected")
        wait_for(lambda: status_of(apiserver).get("observedGeneration") == 2, 15,
                 "generation 2 observed")
        assert "child.steps 10 → 99" in status_of(apiserver)["message"]
        children.hold = False
        final = wait_for(lambda: phase(apiserver, "Succeeded"), 30, "phase Succeeded")
    assert final["trialsDone"] == len(trained(tracker)) == 4  # the budget edit went with it
    assert trial_steps(apiserver) == {10}
    assert "was not applied (child.steps 10 → 99)" in final["message"]
    rejected = [e for e in apiserver.items("events", NAMESPACE)
                if e.get("reason") == "SpecChangeRejected"]
    assert "a started search keeps its space, strategy, children's training" in \
        rejected[0]["message"]


def test_the_cli_refuses_an_update_that_changes_what_a_search_keeps_and_sends_nothing(
        apiserver: FakeApiServer, kubeconfig: Path, tmp_path: Path) -> None:
    assert ctl("submit", str(write_spec(tmp_path)), "--kubeconfig", str(kubeconfig)).exit_code == 0
    apiserver.set_status("activationsearches", NAMESPACE, "s1",
                         {"phase": "Running", "parentRunId": "run-1"})  # it started
    before = apiserver.get("activationsearches", NAMESPACE, "s1")
    edited = write_spec(tmp_path, child={"model": "mlp", "dataset": "digits", "steps": 20},
                        budget={"trials": 8})
    result = ctl("submit", str(edited), "--update", "--kubeconfig", str(kubeconfig))
    assert result.exit_code == 1
    assert "nothing was changed: child.steps 10 → 20" in result.output
    assert "budget.trials" not in result.output.split("nothing was changed")[1].split(":")[1]
    assert apiserver.get("activationsearches", NAMESPACE, "s1") == before
    same = ctl("submit", str(write_spec(tmp_path)), "--update", "--kubeconfig", str(kubeconfig))
    assert same.exit_code == 0 and "unchanged; nothing to do" in same.output
    assert apiserver.get("activationsearches", NAMESPACE, "s1") == before
    missing = write_spec(tmp_path)
    missing.write_text(missing.read_text().replace("name: s1", "name: s2"))
    result = ctl("submit", str(missing), "--update", "--kubeconfig", str(kubeconfig))
    assert result.exit_code == 1 and "there is no ActivationSearch 's2'" in result.output


@pytest.mark.controller_traffic
def test_a_finished_search_goes_on_when_its_budget_is_raised_and_holds_no_loop_meanwhile(
        apiserver: FakeApiServer, api_client: Any, kubeconfig: Path, tmp_path: Path) -> None:
    """Once Succeeded the daemon is stopped by its filter (nothing polls a finished search);
    raising the budget brings the loop back, which resumes from the checkpoint."""
    tracker = LockedTracker()
    apiserver.put_object("activationsearches", NAMESPACE, search_object())
    with Children(apiserver, tracker).running(), \
            operator_running(api_client, defaults(tracker, str(tmp_path))):
        first = wait_for(lambda: phase(apiserver, "Succeeded"), 30, "phase Succeeded")
        writes = len(apiserver.calls(resource="activationsearches/status"))
        time.sleep(0.5)  # ten poll intervals: a loop still running would write its status
        assert len(apiserver.calls(resource="activationsearches/status")) == writes
        patch_spec(api_client, {"budget": {"trials": 6}})
        wait_for(lambda: status_of(apiserver).get("observedGeneration") == 2 and
                 phase(apiserver, "Succeeded"), 30, "Succeeded at generation 2")
        final = status_of(apiserver)
    assert first["trialsDone"] == 4 and final["trialsDone"] == 6
    names = trained(tracker)
    assert len(names) == len(set(names)) == 6
    assert len(apiserver.calls(resource="activationsearches/status")) > writes
    assert "SpecUpdated" in event_reasons(apiserver)


def test_a_finished_search_is_deleted_at_once_though_no_loop_runs_for_it(
        apiserver: FakeApiServer, api_client: Any, tmp_path: Path) -> None:
    """kopf drops its finalizer on deletion although the daemon's filter no longer matches."""
    tracker = LockedTracker()
    apiserver.put_object("activationsearches", NAMESPACE, search_object())
    with Children(apiserver, tracker).running(), \
            operator_running(api_client, defaults(tracker, str(tmp_path))):
        wait_for(lambda: phase(apiserver, "Succeeded"), 30, "phase Succeeded")
        apiserver.delete_object("activationsearches", NAMESPACE, "s1")
        wait_for(lambda: apiserver.get("activationsearches", NAMESPACE, "s1") is None, 15,
                 "the search gone")


def test_a_search_that_failed_on_its_spec_runs_once_the_spec_is_fixed(
        apiserver: FakeApiServer, api_client: Any, kubeconfig: Path, tmp_path: Path) -> None:
    tracker = LockedTracker()
    apiserver.put_object("activationsearches", NAMESPACE, search_object(
        backend={"kind": "kubernetes", "kubernetes": {"namespace": "elsewhere"}}))
    with Children(apiserver, tracker).running(), \
            operator_running(api_client, defaults(tracker, str(tmp_path))):
        failed = wait_for(lambda: phase(apiserver, "Failed"), 15, "phase Failed")
        assert "must live in its own namespace" in failed["message"]
        result = ctl("submit", str(write_spec(tmp_path)), "--update",
                     "--kubeconfig", str(kubeconfig))
        assert result.exit_code == 0, result.output
        final = wait_for(lambda: phase(apiserver, "Succeeded"), 30, "phase Succeeded")
    assert final["trialsDone"] == 4 and final["observedGeneration"] == 2


def test_retry_resumes_a_failed_search_from_its_checkpoint_and_refuses_a_running_one(
        apiserver: FakeApiServer, api_client: Any, kubeconfig: Path, tmp_path: Path) -> None:
    """A refused permission fails the search; once it is granted, `actsearch-ctl retry`
    resumes it without training anything twice."""
    tracker = LockedTracker()
    apiserver.put_object("activationsearches", NAMESPACE, search_object())
    children = Children(apiserver, tracker)
    with children.running(), operator_running(api_client, defaults(tracker, str(tmp_path))):
        wait_for(lambda: len(children.finished) >= 2, 15, "two children finished")
        apiserver.fail("create", "jobs", 403, times=1)
        failed = wait_for(lambda: phase(apiserver, "Failed"), 15, "phase Failed")
        assert "`actsearch-ctl retry`" in failed["message"]
        result = ctl("retry", "s1", "--kubeconfig", str(kubeconfig))
        assert result.exit_code == 0, result.output
        final = wait_for(lambda: phase(apiserver, "Succeeded"), 30, "phase Succeeded")
        refused = ctl("retry", "s1", "--kubeconfig", str(kubeconfig))
    assert refused.exit_code == 1 and "is Succeeded, not Failed" in refused.output
    names = trained(tracker)
    assert final["trialsDone"] == len(names) == len(set(names)) == 4
    assert final["observedGeneration"] == 1
