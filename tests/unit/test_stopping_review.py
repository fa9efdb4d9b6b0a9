"""The loop's early-stopping review: a lone child the rule stops is stopped; a pack only when
every member in flight is stopped; curves are read at the evaluation steps; a stopped child is
no complete result anywhere."""

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


def test_a_curve_is_read_at_the_evaluation_steps_up_to_the_first_one_missing() -> None:
    from orchestrator.loop.stopping import curve_of

    assert curve_of({100: 0.5, 200: 0.6, 400: 0.9}, STEPS) == (0.5, 0.6)
    assert curve_of({50: 0.1, 100: 0.5}, STEPS) == (0.5,)  # off-grid values are not the rule's
    assert curve_of({}, STEPS) == ()


def test_a_stopped_trial_is_no_complete_result_anywhere() -> None:
    """History (complete or not), leaderboard, best so far, duplicates: a stopped child is a
    reward for the strategy and nothing more."""
    from orchestrator.loop.stopping import history
    from orchestrator.loop.trials import Trial as Record
    from orchestrator.loop.trials import entries, original, summarize, trial_points
    from orchestrator.search.base import Candidate
    from orchestrator.space import encode, parse

    def record(i: int, expr: str, reward: float, stopped: int | None) -> Record:
        return Record(f"s-t{i:05d}", i, Candidate(encode(parse(expr)), expr, 0.0, 0), expr,
                      "done", reward=reward, stopped_at=stopped,
                      curve=[0.5, reward] if stopped is None else [reward])

    done = [record(0, "max(id(x), relu(x))", 0.8, None), record(1, "add(sin(x), id(x))", 0.9, 100)]
    assert [t.complete for t in history(done)] == [True, False]
    assert [e.trial_id for e in entries(done)] == ["s-t00000"]
    assert summarize(done, 2, 0).best is done[0] and summarize(done, 2, 0).stopped_early == 1
    points, _, _ = trial_points(done, 0)
    assert [p[1]["best_val_accuracy"] for p in points] == [0.8, 0.8]
    assert points[1][1]["trial_val_accuracy"] == 0.9  # what the strategy saw
    stopped, complete = original(done, "add(sin(x), id(x))"), original(done, done[0].fingerprint)
    assert stopped is not None and stopped.stopped_at == 100
    assert complete is not None and complete.stopped_at is None
