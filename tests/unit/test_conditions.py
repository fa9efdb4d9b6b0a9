"""The standard conditions of a search's status, derived from its phase (orchestrator.cluster.conditions)."""

from __future__ import annotations

import pytest

from orchestrator.cluster.conditions import PHASES, TYPES, conditions, derive


def by_type(items: list[dict[str, object]]) -> dict[object, dict[str, object]]:
    return {c["type"]: c for c in items}


@pytest.mark.parametrize("phase", PHASES)
def test_every_phase_has_ready_succeeded_and_failed_each_true_or_false(phase: str) -> None:
    out = conditions(None, phase, "a message", 3, now="2026-01-01T00:00:00Z")
    assert [c["type"] for c in out] == list(TYPES)
    for c in out:
        assert c["status"] in ("True", "False")
        assert str(c["reason"])[:1].isupper() and str(c["reason"]).isalnum()
        assert c["message"] == "a message" and c["observedGeneration"] == 3
        assert c["lastTransitionTime"] == "2026-01-01T00:00:00Z"


def test_only_a_succeeded_search_has_succeeded_true_and_only_a_failed_one_failed_true() -> None:
    true = {phase: {t for t, (status, _) in derive(phase).items() if status == "True"}
            for phase in PHASES}
    assert true == {"Pending": set(), "Running": {"Ready"}, "Succeeded": {"Ready", "Succeeded"},
                    "Failed": {"Failed"}, "Cancelled": set()}


def test_a_failed_search_carries_its_reason_in_all_three_conditions() -> None:
    assert {r for _, r in derive("Failed", "InvalidSpec").values()} == {"InvalidSpec"}
    assert derive("Failed")["Failed"] == ("True", "SearchFailed")
    assert {r for _, r in derive("Cancelled").values()} == {"Cancelled"}


def test_a_later_write_of_a_failed_search_keeps_the_reason_it_failed_for() -> None:
    failed = conditions(None, "Failed", "bad spec", 1, "InvalidSpec", now="t0")
    noted = by_type(conditions(failed, "Failed", "bad spec; an edit was refused", 2, now="t1"))
    assert {c["reason"] for c in noted.values()} == {"InvalidSpec"}
    assert noted["Failed"]["lastTransitionTime"] == "t0"


def test_an_outage_makes_a_running_search_not_ready_without_changing_its_phase() -> None:
    assert derive("Running", "Unavailable")["Ready"] == ("False", "Unavailable")
    assert derive("Running")["Ready"] == ("True", "Running")


def test_what_a_pending_or_running_search_waits_out_is_its_ready_reason() -> None:
    """A refusing service (the operator's reasons) makes Ready False with that reason, in either
    phase, and neither Succeeded nor Failed changes: the search is waiting, not failed."""
    for phase in ("Pending", "Running"):
        found = derive(phase, "StorageRefused")
        assert found["Ready"] == ("False", "StorageRefused")
        assert found["Failed"] == found["Succeeded"] == ("False", "InProgress")
    assert derive("Pending")["Ready"] == ("False", "Starting")
    assert derive("Running")["Ready"] == ("True", "Running")


def test_a_condition_keeps_its_transition_time_while_its_status_holds() -> None:
    first = conditions(None, "Pending", "starting", 1, now="t0")
    running = by_type(conditions(first, "Running", "1 of 4 trained", 1, now="t1"))
    assert running["Ready"]["lastTransitionTime"] == "t1"  # False -> True
    assert running["Succeeded"]["lastTransitionTime"] == "t0"  # still False
    assert running["Succeeded"]["message"] == "1 of 4 trained"
    later = by_type(conditions(list(running.values()), "Running", "2 of 4", 2, now="t2"))
    assert later["Ready"]["lastTransitionTime"] == "t1" and later["Ready"]["observedGeneration"] == 2
    done = by_type(conditions(list(later.values()), "Succeeded", "done", 2, now="t3"))
    assert done["Succeeded"]["lastTransitionTime"] == "t3" and done["Ready"]["lastTransitionTime"] == "t1"


def test_conditions_of_other_writers_are_kept_after_ours() -> None:
    theirs = {"type": "Audited", "status": "True", "reason": "Checked", "message": "",
              "lastTransitionTime": "t0"}
    out = conditions([theirs], "Running", "m", None, now="t1")
    assert out[-1] == theirs and "observedGeneration" not in out[0]


@pytest.mark.parametrize(("phase", "reason", "needle"), [
    ("Failed", "not camel case", "CamelCase"),
    ("Done", None, "unknown phase 'Done'"),
])
def test_a_bad_reason_or_phase_is_refused_by_name(phase: str, reason: str | None,
                                                   needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        derive(phase, reason)
