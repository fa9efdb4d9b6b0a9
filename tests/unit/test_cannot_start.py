"""Which trial failures are Kubernetes refusing to start a child, and when they are systemic
(``orchestrator.cluster.cannot_start``), and the ``ChildrenCannotStart`` condition built from
them (``orchestrator.cluster.conditions.with_children_condition``): pure functions over the
trials' causes, which the Kubernetes backend reports beside the failure text."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.cluster.cannot_start import Streak, kubernetes_reason, systemic
from orchestrator.cluster.conditions import conditions, with_children_condition
from orchestrator.contract import Cause
from orchestrator.loop.trials import Trial
from orchestrator.search.base import Candidate

PULL = ("crashed: pod s-t00001-x cannot start: ImagePullBackOff: Back-off pulling image \"nope:1\"",
        Cause.IMAGE_PULL_BACK_OFF)
CONFIG = ("crashed: pod s-t00002-y cannot start: CreateContainerConfigError: secret \"s3-keys\" "
          "not found", Cause.CREATE_CONTAINER_CONFIG_ERROR)


@pytest.mark.parametrize(("cause", "reason"), [
    (Cause.IMAGE_PULL_BACK_OFF, "ImagePullBackOff"),
    (Cause.CREATE_CONTAINER_CONFIG_ERROR, "CreateContainerConfigError"),
    (Cause.PENDING_TOO_LONG, "PendingTooLong"), (Cause.FAILED_CREATE, "FailedCreate"),
    (Cause.QUOTA_EXCEEDED, "QuotaExceeded"),
    (Cause.EXITED, None), (Cause.UNREACHABLE, None), (Cause.LOST, None), (None, None),
])
def test_the_kubernetes_reason_is_the_cannot_start_cause(cause: Cause | None, reason: str | None
                                                         ) -> None:
    assert kubernetes_reason(cause) == reason


def trial(index: int, failure: tuple[str, Cause] | None, finished: float,
          source: str = "trained") -> Trial:
    text, cause = failure or (None, None)
    return Trial(f"s-t{index:05d}", index, Candidate((1,), "relu(x)", 0.0, 0), "f", "done",
                 source=source, reward=None if failure else 0.9, failure=text, cause=cause,
                 finished=finished)


def test_the_same_reason_for_the_last_three_children_is_systemic() -> None:
    trials = [trial(0, None, 1.0), trial(1, PULL, 2.0), trial(2, PULL, 3.0)]
    assert systemic(trials) is None  # two in a row
    trials.append(trial(3, PULL, 4.0))
    found = systemic(trials)
    assert found is not None and (found.reason, found.count) == ("ImagePullBackOff", 3)
    assert systemic([*trials, trial(4, CONFIG, 5.0)]) is None  # another reason: not yet
    assert systemic([*trials, trial(4, None, 5.0)]) is None  # a child started: over
    # cache hits and duplicates say nothing about the cluster; order is by settling time
    assert systemic([*trials, trial(5, None, 0.5), trial(6, None, 6.0, "cache")]) == found


EXITED = ("crashed: exit code 1", Cause.EXITED)
settles = st.lists(st.lists(st.tuples(
    st.sampled_from([None, PULL, CONFIG, EXITED]), st.integers(0, 12),
    st.sampled_from(["trained", "trained", "trained", "cache", "duplicate"]),
    st.booleans()), max_size=4), max_size=14)


@settings(max_examples=400, deadline=None)
@given(settles, st.integers(1, 4))
def test_the_streak_kept_as_children_settle_equals_systemic_over_every_trial(
        batches: list[list[tuple[tuple[str, Cause] | None, int, str, bool]]], after: int) -> None:
    """Batches of settles (a watcher's ticks), their ``finished`` times in any order (equal
    ones too, and some earlier than children settled before: a clock set back, a resume), of any
    source, some done with neither result nor failure: after each, the streak answers as
    ``systemic`` over every trial so far."""
    streak, everything = Streak(after), list[Trial]()
    for batch in batches:
        new = []
        for failure, finished, source, complete in batch:
            t = trial(len(everything) + len(new), failure, float(finished), source)
            if not complete and failure is None:
                t.reward = None  # stopped with no result: not a settled child
            new.append(t)
        everything += new
        streak.add(new)
        assert streak.systemic() == systemic(everything, after)
    assert Streak.of(everything, after).systemic() == systemic(everything, after)


def test_the_condition_appears_when_true_and_stays_false_after() -> None:
    base = conditions(None, "Running", "running", 1, now="t0")
    assert with_children_condition(base, None, "", 1) == base  # never true: not written
    stuck = with_children_condition(base, "ImagePullBackOff", "Children cannot start", 1, now="t1")
    (c,) = [c for c in stuck if c["type"] == "ChildrenCannotStart"]
    assert (c["status"], c["reason"], c["lastTransitionTime"]) == ("True", "ImagePullBackOff", "t1")
    again = with_children_condition(stuck, "ImagePullBackOff", "still", 1, now="t2")
    assert [c["lastTransitionTime"] for c in again if c["type"] == "ChildrenCannotStart"] == ["t1"]
    over = with_children_condition(again, None, "The latest children started.", 2, now="t3")
    (c,) = [c for c in over if c["type"] == "ChildrenCannotStart"]
    assert (c["status"], c["reason"], c["lastTransitionTime"]) == ("False", "ChildrenStarted", "t3")
    with pytest.raises(ValueError, match="CamelCase"):
        with_children_condition(base, "not camel", "", 1)


def test_the_streak_follows_the_cause_not_the_words() -> None:
    """A reworded message keeps the reason; words of a refusal on a child that ran do not make
    one (the cause says it exited)."""
    reworded = [trial(i, ("crashed: no image", Cause.ERR_IMAGE_PULL), float(i)) for i in range(3)]
    found = systemic(reworded)
    assert found is not None and (found.reason, found.count, found.failure) == (
        "ErrImagePull", 3, "crashed: no image")
    assert systemic([trial(i, (PULL[0], Cause.EXITED), float(i)) for i in range(3)]) is None
