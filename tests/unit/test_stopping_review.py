"""The loop's early-stopping review: a lone child the rule stops is stopped; a pack only when
every member in flight is stopped."""

from __future__ import annotations

from orchestrator.loop.stopping import Running, review
from orchestrator.search.stopping import MedianRule, Trial

STEPS = (100, 200, 300)
DONE = [Trial((0.6, 0.7, 0.8), True), Trial((0.62, 0.72, 0.82), True),
        Trial((0.64, 0.74, 0.84), True)]  # median of running averages at 100: 0.62


def test_a_lone_child_below_the_median_is_stopped_and_one_above_is_not() -> None:
    out = review(MedianRule(), STEPS, DONE, {"t1": Running("t1", (0.3,)),
                                             "t2": Running("t2", (0.7,)),
                                             "t3": Running("t3", ())})  # nothing logged yet
    assert out.stopped == {"t1"} and out.launches == ("t1",)


def test_a_pack_is_stopped_only_when_every_member_is() -> None:
    mixed = {"a": Running("p0", (0.3,)), "b": Running("p0", (0.7,))}
    out = review(MedianRule(), STEPS, DONE, mixed)
    assert out.stopped == {"a"} and out.launches == ()
    bad = {"a": Running("p0", (0.3,)), "b": Running("p0", (0.4,)), "c": Running("p1", (0.1,))}
    assert review(MedianRule(), STEPS, DONE, bad).launches == ("p0", "p1")


def test_nothing_is_stopped_before_min_trials_have_ended() -> None:
    out = review(MedianRule(), STEPS, DONE[:2], {"t1": Running("t1", (0.1,))})
    assert not out.stopped and out.launches == ()
