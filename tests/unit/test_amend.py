"""The rule for edits of a started search (orchestrator/loop/amend.py): pure, no I/O."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.loop.amend import (
    LIVE_FIELDS,
    UNSET,
    amend,
    changes,
    describe,
    is_live,
    rejection,
)
from orchestrator.spec import SearchSpec, parse_spec

BASE: dict[str, Any] = {"name": "s1", "strategy": {"name": "random"}, "budget": {"trials": 8},
                        "child": {"model": "mlp", "dataset": "digits", "steps": 10}}


def spec(**over: Any) -> SearchSpec:
    return parse_spec({**BASE, **over})


def test_a_search_without_a_stored_spec_runs_what_it_is_given() -> None:
    new = spec(parallelism=4)
    a = amend(None, new)
    assert a.spec is new and a.applied == () and a.rejected == ()


def test_budget_parallelism_packing_and_scheduling_edits_are_applied() -> None:
    old = spec(backend={"kind": "kubernetes"})
    new = spec(budget={"trials": 20, "gpu_hours": 3.5}, parallelism=4, packing=8,
               backend={"kind": "kubernetes", "kubernetes": {
                   "node_selector": {"pool": "h100"}, "priority_class": "low",
                   "tolerations": [{"key": "gpu", "operator": "Exists"}]}})
    a = amend(old, new)
    assert a.spec is new and a.rejected == ()
    fields = [c.field for c in a.applied]
    assert fields == ["backend.kubernetes.node_selector.pool",
                      "backend.kubernetes.priority_class", "backend.kubernetes.tolerations",
                      "budget.gpu_hours", "budget.trials", "packing", "parallelism"]


def test_backend_kind_is_kept_and_a_map_key_added_reads_as_unset_before() -> None:
    old = spec(backend={"kind": "kubernetes"})
    new = spec(backend={"kind": "kubernetes", "kubernetes": {"node_selector": {"pool": "a"}}})
    (c,) = changes(old, new)
    assert (c.field, c.before, c.after) == ("backend.kubernetes.node_selector.pool", UNSET, "a")
    assert str(c) == "backend.kubernetes.node_selector.pool (unset) → 'a'"
    assert amend(spec(backend={"kind": "local"}), old).rejected[0].field == "backend.kind"


@pytest.mark.parametrize("over, field", [
    ({"child": {"model": "mlp", "dataset": "digits", "steps": 11}}, "child.steps"),
    ({"strategy": {"name": "ppo"}}, "strategy.name"),
    ({"space": {"units": 2}}, "space.units"),
    ({"seed": 3}, "seed"),
    ({"generation": 7}, "generation"),
    ({"screen": {"enabled": False}}, "screen.enabled"),
    ({"tracking": {"experiment": "other"}}, "tracking.experiment"),
    ({"backend": {"kind": "kubernetes", "kubernetes": {"image": "t:2"}}},
     "backend.kubernetes.image"),
])
def test_an_edit_touching_anything_else_is_not_applied_at_all(over: dict[str, Any],
                                                               field: str) -> None:
    old = spec(backend={"kind": "kubernetes"}) if "backend" in over else spec()
    new = spec(**over, budget={"trials": 99})  # a live change rides along: dropped with it
    a = amend(old, new)
    assert a.spec is old and a.applied == ()
    assert [c.field for c in a.rejected] == [field]
    message = rejection("search 's1'", a.rejected)
    assert message.startswith(f"search 's1': {field} ") and "another name" in message


def test_describe_lists_each_change_with_before_and_after() -> None:
    a = amend(spec(), spec(budget={"trials": 9}, parallelism=2))
    assert describe(a.applied) == "budget.trials 8 → 9; parallelism 1 → 2"


def test_live_fields_cover_exactly_their_subtrees() -> None:
    assert is_live("budget.trials") and is_live("backend.kubernetes.resources.limits.cpu")
    assert not is_live("budgets") and not is_live("backend.kubernetes.image")
    assert not is_live("backend.kubernetes.namespace") and not is_live("backend.kubernetes.gpus")
    assert all(not f.startswith(("child", "space", "strategy")) for f in LIVE_FIELDS)


@settings(max_examples=60, deadline=None)
@given(trials=st.integers(1, 500), parallelism=st.integers(1, 64), packing=st.integers(1, 64),
       steps=st.integers(1, 10_000))
def test_amend_runs_the_edit_only_when_nothing_outside_the_live_fields_changed(
        trials: int, parallelism: int, packing: int, steps: int) -> None:
    old = spec()
    new = spec(budget={"trials": trials}, parallelism=parallelism, packing=packing,
               child={"model": "mlp", "dataset": "digits", "steps": steps})
    a = amend(old, new)
    assert bool(a.rejected) == (steps != 10)
    assert a.spec is (old if steps != 10 else new)
    everything = changes(old, new)
    assert a.applied == (() if a.rejected else tuple(everything))
    assert list(a.rejected) == [c for c in everything if c.field == "child.steps"]
