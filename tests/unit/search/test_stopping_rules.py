"""The early-stopping rules' decisions on hand-made curves (steps 100..400)."""

from __future__ import annotations

import pytest

from orchestrator.search.stopping import (
    AshaRule,
    MedianRule,
    StoppingError,
    Trial,
    make_rule,
)

STEPS = (100, 200, 300, 400)
# three completed trials; running averages at step 200: 0.55, 0.65, 0.75 -> median 0.65
DONE = [Trial((0.5, 0.6, 0.7, 0.8), True), Trial((0.6, 0.7, 0.8, 0.85), True),
        Trial((0.7, 0.8, 0.85, 0.9), True)]


def test_median_stops_a_trial_whose_best_is_below_the_median_of_running_averages() -> None:
    rule = MedianRule()
    assert rule.decide(STEPS, DONE, (0.5, 0.6)) == "stop"  # best 0.6 < 0.65
    assert rule.decide(STEPS, DONE, (0.66, 0.6)) == "continue"  # best so far counts, not last
    assert rule.decide(STEPS, DONE, (0.71, 0.66, 0.5)) == "continue"  # median 0.7 at 300


def test_median_at_the_first_step_compares_with_first_values() -> None:
    assert MedianRule().decide(STEPS, DONE, (0.55,)) == "stop"  # 0.55 < median 0.6
    assert MedianRule().decide(STEPS, DONE, (0.61,)) == "continue"


def test_median_waits_for_min_trials_completed_and_the_grace_step() -> None:
    stopped = [Trial((0.9, 0.9), False)] * 5  # stopped trials never make the median
    assert MedianRule().decide(STEPS, DONE[:2] + stopped, (0.1, 0.1)) == "continue"
    assert MedianRule(min_trials=2).decide(STEPS, DONE[:2], (0.1, 0.1)) == "stop"
    assert MedianRule(start_step=300).decide(STEPS, DONE, (0.1, 0.1)) == "continue"
    assert MedianRule(start_step=300).decide(STEPS, DONE, (0.1, 0.1, 0.1)) == "stop"


def test_no_rule_stops_at_the_last_step_and_both_stop_a_diverged_trial() -> None:
    for rule in (MedianRule(), AshaRule(eta=2, min_trials=1)):
        assert rule.decide(STEPS, DONE, (0.1, 0.1, 0.1, 0.1)) == "continue"
        assert rule.decide(STEPS, DONE, (0.7, None)) == "stop"


def test_asha_keeps_the_top_one_over_eta_at_each_rung() -> None:
    rule = AshaRule(eta=3, min_trials=3)
    # rung at 100 holds 0.5, 0.6, 0.7 and the new value: 4 values, keep max(1, 4 // 3) = 1
    assert rule.decide(STEPS, DONE, (0.75,)) == "continue"
    assert rule.decide(STEPS, DONE, (0.65,)) == "stop"
    more = DONE + [Trial((v,), False) for v in (0.1, 0.2, 0.3, 0.4, 0.45)]
    # 9 values: keep 3 -> 0.7, 0.6 and the new 0.55 go on; 0.5 does not
    assert rule.decide(STEPS, more, (0.55,)) == "continue"
    assert rule.decide(STEPS, more, (0.49,)) == "stop"


def test_asha_counts_stopped_trials_at_their_rungs_and_waits_for_min_trials() -> None:
    rule = AshaRule(eta=2, min_trials=4)
    early = [Trial((0.9,), False), Trial((0.8,), False)]
    assert rule.decide(STEPS, early, (0.1,)) == "continue"  # 3 values < min_trials
    assert rule.decide(STEPS, [*early, Trial((0.7,), False)], (0.1,)) == "stop"
    # the second rung only holds trials that reached it
    assert rule.decide(STEPS, [*early, Trial((0.7,), False)], (0.95, 0.1)) == "continue"
    assert AshaRule(eta=2, min_trials=1, min_step=300).decide(STEPS, early, (0.1, 0.1)) \
        == "continue"


@pytest.mark.parametrize(("options", "message"), [
    ({"rule": "hyperband"}, "early_stopping.rule must be one of median, asha"),
    ({}, "early_stopping.rule must be one of"),
    ({"rule": "median", "eta": 3}, "unknown early_stopping option(s) 'eta'"),
    ({"rule": "asha", "eta": 1}, "early_stopping.eta must be an integer >= 2"),
    ({"rule": "median", "min_trials": 0}, "early_stopping.min_trials must be an integer >= 1"),
    ({"rule": "asha", "min_step": True}, "early_stopping.min_step must be an integer >= 0"),
])
def test_bad_options_are_refused_naming_the_field(options: dict[str, object],
                                                  message: str) -> None:
    with pytest.raises(StoppingError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make_rule(options)


def test_make_rule_builds_the_named_rule_with_its_options() -> None:
    assert make_rule({"rule": "asha", "eta": 2}) == AshaRule(eta=2)
    assert make_rule({"rule": "median", "start_step": 200}) == MedianRule(start_step=200)
