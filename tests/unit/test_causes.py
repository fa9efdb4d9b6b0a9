"""The causes of failed children (``contract.Cause``): what each backend reports, what the brake
and the cannot-start report make of each (``loop.causes.READINGS``), and trials checkpointed
before causes were stored.

The fixture ``fixtures/checkpoint_before_causes`` is a checkpoint written by the code before
this change (``make.py`` there), with the failure texts it wrote and its brake's and report's
decisions on them: today's backends must write the same texts, and decide the same, but for
the one grouping changed on purpose (a quota refusal is reported as ``QuotaExceeded``, no
longer as ``FailedCreate``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from orchestrator.adapters.storage import LocalStore
from orchestrator.backends.kubernetes import job_state, with_exit
from orchestrator.cluster.cannot_start import kubernetes_reason
from orchestrator.contract import Cause, exit_cause
from orchestrator.loop import checkpoint
from orchestrator.loop.causes import READINGS, infrastructure_cause, legacy_cause
from orchestrator.loop.ledger import DONE, crash_cause, crash_failure
from orchestrator.loop.trials import Trial
from orchestrator.search.base import Candidate
from orchestrator.spec import SearchSpec
from tests.unit.fixtures.checkpoint_before_causes.make import HERE as OLD
from tests.unit.fixtures.checkpoint_before_causes.make import states

IMAGE = "the image cannot be pulled"
CONFIG = "a Secret or ConfigMap the child needs is missing (CreateContainerConfigError)"
CREATE = "no pod could be created (FailedCreate)"
UNREACHABLE = "MLflow, S3 or the data source could not be reached (exit code 4)"

TABLE = [  # cause, the brake's infrastructure label, the cannot-start reason
    (Cause.IMAGE_PULL_BACK_OFF, IMAGE, "ImagePullBackOff"),
    (Cause.ERR_IMAGE_PULL, IMAGE, "ErrImagePull"),
    (Cause.INVALID_IMAGE_NAME, IMAGE, "InvalidImageName"),
    (Cause.CREATE_CONTAINER_CONFIG_ERROR, CONFIG, "CreateContainerConfigError"),
    (Cause.FAILED_CREATE, CREATE, "FailedCreate"),
    (Cause.QUOTA_EXCEEDED, None, "QuotaExceeded"),  # a busy cluster is not a broken one
    (Cause.PENDING_TOO_LONG, None, "PendingTooLong"),
    (Cause.UNREACHABLE, UNREACHABLE, None),  # the child started; the servers are down
    (Cause.OUT_OF_MEMORY, None, None),
    (Cause.OOM_KILLED, None, None),
    (Cause.INTERRUPTED, None, None),
    (Cause.EXITED, None, None),
    (Cause.DEADLINE_EXCEEDED, None, None),
    (Cause.LOST, None, None),
    (Cause.UNKNOWN, None, None),
]

REPORTED = {  # fixture scenario -> the cause today's backends report
    "ImagePullBackOff": Cause.IMAGE_PULL_BACK_OFF, "ErrImagePull": Cause.ERR_IMAGE_PULL,
    "InvalidImageName": Cause.INVALID_IMAGE_NAME,
    "CreateContainerConfigError": Cause.CREATE_CONTAINER_CONFIG_ERROR,
    "PendingTooLong": Cause.PENDING_TOO_LONG, "FailedCreate": Cause.FAILED_CREATE,
    "QuotaExceeded": Cause.QUOTA_EXCEEDED, "Unreachable": Cause.UNREACHABLE,
    "Exited": Cause.EXITED, "OOMKilled": Cause.OOM_KILLED, "OutOfMemory": Cause.OUT_OF_MEMORY,
    "DeadlineExceeded": Cause.DEADLINE_EXCEEDED, "Lost": Cause.LOST,
    "LocalExited": Cause.EXITED, "LocalUnreachable": Cause.UNREACHABLE,
    "LocalInterrupted": Cause.INTERRUPTED,
}
CHANGED = {"QuotaExceeded": "QuotaExceeded"}  # cannot-start reasons changed on purpose


def before() -> dict[str, dict[str, str | None]]:
    """The failure texts and decisions of the code before causes, per scenario."""
    loaded: dict[str, dict[str, str | None]] = json.loads((OLD / "failures.json").read_text())
    return loaded


def test_every_cause_has_exactly_one_reading() -> None:
    assert set(READINGS) == set(Cause)
    assert [c for c, _, _ in TABLE] == list(Cause)


@pytest.mark.parametrize(("cause", "brake", "reason"), TABLE)
def test_each_cause_is_grouped_for_the_brake_and_the_cannot_start_report(
        cause: Cause, brake: str | None, reason: str | None) -> None:
    assert infrastructure_cause(cause) == brake
    assert kubernetes_reason(cause) == reason


@pytest.mark.parametrize(("code", "cause"), [
    (4, Cause.UNREACHABLE), (5, Cause.OUT_OF_MEMORY), (137, Cause.OOM_KILLED),
    (143, Cause.INTERRUPTED), (-15, Cause.INTERRUPTED), (0, Cause.EXITED), (1, Cause.EXITED),
    (3, Cause.EXITED), (-9, Cause.EXITED),
])
def test_an_exit_code_has_its_cause(code: int, cause: Cause) -> None:
    assert exit_cause(code) is cause


def test_the_backends_report_each_cause_and_write_the_same_failure_texts_as_before(
        tmp_path: Path) -> None:
    old = before()
    found = states(tmp_path)
    assert set(found) == set(REPORTED) == set(old)
    for name, state in found.items():
        assert crash_cause(state) is REPORTED[name], name
        assert crash_failure(state) == old[name]["failure"], name  # byte for byte


def test_the_brake_and_the_report_decide_as_before_but_where_changed_on_purpose(
        tmp_path: Path) -> None:
    old = before()
    for name, state in states(tmp_path).items():
        cause = crash_cause(state)
        assert infrastructure_cause(cause) == old[name]["brake"], name
        assert kubernetes_reason(cause) == CHANGED.get(name, old[name]["cannot_start"]), name
    assert old["QuotaExceeded"]["cannot_start"] == "FailedCreate"  # what changed


def test_a_checkpoint_from_before_causes_loads_with_the_causes_read_from_its_texts(
        tmp_path: Path) -> None:
    shutil.copytree(OLD, tmp_path / "store", ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    saved = checkpoint.read(LocalStore(tmp_path / "store"), "old")
    assert saved is not None
    old = before()
    crashed = saved.trials[:len(old)]
    assert [t.failure for t in crashed] == [d["failure"] for d in old.values()]  # unchanged
    assert [t.cause for t in crashed] == [REPORTED[name] for name in old]
    nan, success = saved.trials[len(old):]
    assert (nan.failure, nan.cause, success.reward, success.cause) == ("nan", None, 0.91, None)
    for t, name in zip(crashed, old, strict=True):
        assert infrastructure_cause(t.cause) == old[name]["brake"], name
        assert kubernetes_reason(t.cause) == CHANGED.get(name, old[name]["cannot_start"]), name


def test_a_trials_cause_is_checkpointed_and_read_back(tmp_path: Path) -> None:
    candidate = Candidate(tokens=(), expression="id(x)", log_prob=0.0, policy_version=0)
    crashed = Trial("s-t00000", 0, candidate, "0" * 16, DONE, run_id="r0",
                    failure="crashed: reworded", cause=Cause.QUOTA_EXCEEDED, finished=1.0)
    ran = Trial("s-t00001", 1, candidate, "0" * 16, DONE, run_id="r1",
                failure="crashed: pod p cannot start: ImagePullBackOff", finished=2.0)
    assert json.loads(json.dumps(crashed.as_dict()))["cause"] == "QuotaExceeded"
    store = LocalStore(tmp_path)
    spec = SearchSpec.model_validate({"name": "s"})
    checkpoint.write(store, spec, {}, [crashed, ran], 0, checkpoint.Segments())
    saved = checkpoint.read(store, "s")
    assert saved is not None
    assert [(t.failure, t.cause) for t in saved.trials] == [
        ("crashed: reworded", Cause.QUOTA_EXCEEDED),
        # stored with no cause (its run said why): never read from its text
        ("crashed: pod p cannot start: ImagePullBackOff", None)]


def test_a_stored_cause_this_version_does_not_know_is_refused_naming_the_field() -> None:
    record = Trial("s-t00007", 7, Candidate((), "id(x)", 0.0, 0), "0" * 16, DONE).as_dict()
    record["cause"] = "Gremlins"
    with pytest.raises(ValueError, match=r"trial 's-t00007': cause must be one of "
                                         r"ImagePullBackOff, .*Unknown \(or null\); got 'Gremlins'"):
        Trial.from_dict(record)


@pytest.mark.parametrize(("failure", "cause"), [
    (None, None), ("nan", None), ("error", None), ("run ended KILLED", None),
    ("crashed: something new (exit code 4)", Cause.UNREACHABLE),
    ("crashed: something new", Cause.UNKNOWN),
])
def test_legacy_texts_without_a_known_shape(failure: str | None, cause: Cause | None) -> None:
    assert legacy_cause(failure) is cause


def test_a_job_past_its_deadline_keeps_that_cause_whatever_its_last_pod_exited_with() -> None:
    """A Job's own reason names the cause only for a deadline (its last pod was stopped);
    otherwise the trainer's exit code says more than ``BackoffLimitExceeded``."""
    ended = {"metadata": {"creationTimestamp": "2027-01-15T07:00:00Z"}, "status": {
        "phase": "Failed", "containerStatuses": [{"name": "trainer", "state": {
            "terminated": {"exitCode": 4, "reason": "Error"}}}]}}

    def failed(reason: str) -> dict[str, object]:
        return {"status": {"conditions": [{"type": "Failed", "status": "True",
                                           "reason": reason, "message": "m"}]}}

    late = with_exit(job_state(failed("DeadlineExceeded")), [ended])
    assert (late.exit_code, late.cause) == (4, Cause.DEADLINE_EXCEEDED)
    retried = with_exit(job_state(failed("BackoffLimitExceeded")), [ended])
    assert (retried.exit_code, retried.cause) == (4, Cause.UNREACHABLE)
