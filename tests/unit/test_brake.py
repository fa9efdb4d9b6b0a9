"""The failure brake's rules on plain trials: which failures are infrastructure and which count
against ``budget.max_failed``, and when a streak of them stops a search. Crashed trials are made
as the ledger makes them from a backend's state: the failure text and the cause apart."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.backends.base import ChildState
from orchestrator.contract import Cause
from orchestrator.loop.brake import (
    INFRASTRUCTURE_FAILURES,
    TOO_MANY_FAILURES,
    counts_as_failed,
    infrastructure_cause,
    stop_reason,
)
from orchestrator.loop.ledger import DONE, LAUNCHED, crash_cause, crash_failure
from orchestrator.loop.trials import Trial
from orchestrator.search.base import Candidate
from orchestrator.spec import BudgetSpec

Crash = tuple[str, Cause]  # a crashed trial's failure text and cause, as the ledger stores them


def crash(state: ChildState) -> Crash:
    return crash_failure(state), crash_cause(state)


PULL = crash(ChildState("failed", reason="pod s-t1-x cannot start: ImagePullBackOff: Back-off "
                        "pulling image \"registry.invalid/trainer:9\"",
                        cause=Cause.IMAGE_PULL_BACK_OFF))
PULL_FIRST = crash(ChildState("failed", reason="pod s-t2-x cannot start: ErrImagePull: not found",
                              cause=Cause.ERR_IMAGE_PULL))
CONFIG = crash(ChildState("failed", reason="pod s-t3-x cannot start: CreateContainerConfigError: "
                          "secret \"s3\" not found", cause=Cause.CREATE_CONTAINER_CONFIG_ERROR))
CREATE = crash(ChildState("failed", reason="FailedCreate: pods \"s-t4-x\" is forbidden: error "
                          "looking up service account research/trainer",
                          cause=Cause.FAILED_CREATE))
MLFLOW = crash(ChildState("failed", reason="actsearch-train: MLflow: attaching to run r1 failed: "
                          "Connection refused", exit_code=4))
QUOTA = crash(ChildState("failed", reason="no pod could be created for 1900 s, more than "
                         "max_pending_seconds (1800): FailedCreate: exceeded quota",
                         cause=Cause.QUOTA_EXCEEDED))
PENDING = crash(ChildState("failed", reason="pod s-t5-x was Pending for 1900 s, more than "
                           "max_pending_seconds (1800): Unschedulable",
                           cause=Cause.PENDING_TOO_LONG))
OOM = crash(ChildState("failed", reason="OOMKilled", exit_code=137))
LOST = crash(ChildState("missing"))
CANDIDATE = Candidate(tokens=(), expression="id(x)", log_prob=0.0, policy_version=0)


def trial(i: int, failure: Crash | str | None, finished: float | None = None,
          source: str = "trained", state: str = DONE) -> Trial:
    """A settled trial; ``failure`` a crash (text and cause), or a text its run gave (no cause)."""
    text, cause = failure if isinstance(failure, tuple) else (failure, None)
    return Trial(f"s-t{i:05d}", i, CANDIDATE, "0" * 16, state, source=source,
                 reward=None if failure else 0.9, failure=text, cause=cause,
                 finished=float(i) if finished is None else finished)


def budget(**over: Any) -> BudgetSpec:
    return BudgetSpec.model_validate({"trials": 100, **over})


@pytest.mark.parametrize(("failure", "cause"), [
    (PULL, "the image cannot be pulled"),
    (PULL_FIRST, "the image cannot be pulled"),
    (CONFIG, "a Secret or ConfigMap the child needs is missing (CreateContainerConfigError)"),
    (CREATE, "no pod could be created (FailedCreate)"),
    (MLFLOW, "MLflow, S3 or the data source could not be reached (exit code 4)"),
])
def test_kubernetes_reasons_and_exit_code_4_are_infrastructure_causes(failure: Crash, cause: str
                                                                       ) -> None:
    assert infrastructure_cause(failure[1]) == cause


@pytest.mark.parametrize("failure", [OOM, QUOTA, PENDING, LOST])
def test_the_functions_own_failures_and_a_busy_cluster_are_not_infrastructure(failure: Crash
                                                                              ) -> None:
    assert infrastructure_cause(failure[1]) is None
    assert infrastructure_cause(None) is None  # a failure its run gave ("nan", "error", ...)


def test_max_failed_counts_trained_failures_but_not_diverged_losses() -> None:
    assert counts_as_failed(trial(0, OOM)) and counts_as_failed(trial(1, "error"))
    assert not counts_as_failed(trial(2, "nan"))  # the function's own verdict
    assert not counts_as_failed(trial(3, None))
    assert not counts_as_failed(trial(4, "screened: constant", source="screen"))
    assert not counts_as_failed(trial(5, OOM, source="duplicate"))
    trials = [trial(0, OOM), trial(1, "nan"), trial(2, "error"), trial(3, None), trial(4, "nan")]
    assert stop_reason(trials, budget(max_failed=3), since=0.0) is None
    stop = stop_reason(trials + [trial(5, "oom")], budget(max_failed=3), since=0.0)
    assert stop is not None and stop.reason == TOO_MANY_FAILURES
    assert stop.message == "3 trained children failed, the limit budget.max_failed is 3"
    assert stop_reason(trials + [trial(5, "oom")], budget(), since=0.0) is None  # no limit


def test_k_children_in_a_row_failing_for_one_infrastructure_cause_stop_the_search() -> None:
    trials = [trial(0, PULL), trial(1, PULL_FIRST), trial(2, PULL)]
    assert stop_reason(trials[:2], budget(stop_after_infrastructure_failures=3), 0.0) is None
    stop = stop_reason(trials, budget(stop_after_infrastructure_failures=3), 0.0)
    assert stop is not None and stop.reason == INFRASTRUCTURE_FAILURES
    assert stop.message.startswith("the last 3 children failed because the image cannot be "
                                   "pulled (budget.stop_after_infrastructure_failures is 3)")
    assert stop.message.endswith(f"the last one: {PULL[0]}")
    assert stop_reason(trials, budget(stop_after_infrastructure_failures=0), 0.0) is None


def test_a_success_another_cause_or_a_restart_breaks_the_streak() -> None:
    k = budget(stop_after_infrastructure_failures=3)
    assert stop_reason([trial(0, MLFLOW), trial(1, None), trial(2, MLFLOW), trial(3, MLFLOW)],
                       k, 0.0) is None
    assert stop_reason([trial(0, MLFLOW), trial(1, CONFIG), trial(2, MLFLOW)], k, 0.0) is None
    assert stop_reason([trial(0, MLFLOW), trial(1, OOM), trial(2, MLFLOW)], k, 0.0) is None
    # settled before the controller (re)started: a resumed search whose cause was fixed goes on
    assert stop_reason([trial(0, MLFLOW), trial(1, MLFLOW), trial(2, MLFLOW)], k, 1.0) is None
    # the order is the order of settling, not of proposal; unsettled trials do not count
    late_success = [trial(0, MLFLOW, 5.0), trial(1, MLFLOW), trial(2, MLFLOW), trial(3, None, 1.5)]
    assert stop_reason(late_success, k, 0.0) is None
    in_flight = [trial(0, MLFLOW), trial(1, MLFLOW), trial(2, None, state=LAUNCHED)]
    assert stop_reason(in_flight, k, 0.0) is None
    assert stop_reason(in_flight + [trial(3, MLFLOW)], k, 0.0) is not None


@pytest.mark.parametrize("cause", [PULL, CONFIG, CREATE, MLFLOW])
def test_a_reworded_message_does_not_change_the_brakes_decision(cause: Crash) -> None:
    """The brake reads the cause, never the failure text: a message reworded (or a child's log
    line that happens to name a Kubernetes reason) changes neither way what it decides."""
    k = budget(stop_after_infrastructure_failures=3)
    reworded = ("crashed: the child did not come up", cause[1])
    stop = stop_reason([trial(i, reworded) for i in range(3)], k, 0.0)
    assert stop is not None and stop.reason == INFRASTRUCTURE_FAILURES
    assert stop.message.startswith(f"the last 3 children failed because "
                                   f"{infrastructure_cause(cause[1])} ")
    # the words of an infrastructure failure, with the cause of a child that just exited 1
    misleading = (cause[0], Cause.EXITED)
    assert stop_reason([trial(i, misleading) for i in range(3)], k, 0.0) is None
