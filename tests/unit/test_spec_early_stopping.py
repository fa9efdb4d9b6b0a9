"""The ``early_stopping`` option of a search spec: off by default, validated strictly (each error
names the field and what is allowed), and the evaluation steps come from ``child.eval_every``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import ConfigError
from orchestrator.search.stopping import AshaRule, MedianRule
from orchestrator.spec import evaluation_steps, load_spec, parse_spec

EXAMPLES = Path(__file__).parents[2] / "examples"
CHILD = {"steps": 400, "eval_every": 100}


def test_off_by_default() -> None:
    assert parse_spec({"name": "s"}).early_stopping is None


def test_the_rule_and_the_steps_it_reads_come_from_the_spec() -> None:
    spec = parse_spec({"name": "s", "child": CHILD, "early_stopping": {"rule": "median"}})
    assert spec.early_stopping is not None
    assert spec.early_stopping.make() == MedianRule(min_trials=3, start_step=0)
    assert evaluation_steps(spec.child) == (100, 200, 300, 400)
    asha = parse_spec({"name": "s", "child": {"steps": 350, "eval_every": 100},
                       "early_stopping": {"rule": "asha", "eta": 2, "min_step": 200}})
    assert asha.early_stopping is not None
    assert asha.early_stopping.make() == AshaRule(eta=2, min_step=200, min_trials=3)
    assert evaluation_steps(asha.child) == (100, 200, 300, 350)  # and the last step


@pytest.mark.parametrize(
    ("early_stopping", "child", "expected"),
    [
        ({"rule": "hyperband"}, CHILD, "early_stopping.rule: Input should be 'median' or 'asha'"),
        ({}, CHILD, "early_stopping.rule: Field required"),
        ({"rule": "asha", "eta": 1}, CHILD,
         "early_stopping.eta: Input should be greater than or equal to 2"),
        ({"rule": "median", "eta": 3}, CHILD, "eta is an option of rule 'asha' only"),
        ({"rule": "median", "min_trials": 0}, CHILD,
         "early_stopping.min_trials: Input should be greater than or equal to 1"),
        ({"rule": "median", "grace": 3}, CHILD, "early_stopping.grace: unknown field"),
        ({"rule": "median"}, {"steps": 400}, "early_stopping needs child.eval_every between 1 and"),
        ({"rule": "median"}, {"steps": 400, "eval_every": 400},
         "early_stopping needs child.eval_every between 1 and child.steps - 1 (399)"),
        ({"rule": "asha", "min_step": 400}, CHILD,
         "early_stopping.min_step must be below child.steps (400)"),
    ],
)
def test_bad_options_are_refused_naming_the_field(early_stopping: dict[str, Any],
                                                  child: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_spec({"name": "s", "child": child, "early_stopping": early_stopping}, "spec.yaml")
    assert expected in str(info.value)
    assert str(info.value).startswith("spec.yaml is not a valid search spec")


def test_the_example_is_the_quickstart_with_early_stopping() -> None:
    spec = load_spec(EXAMPLES / "quickstart-early-stopping.yaml")
    plain = load_spec(EXAMPLES / "quickstart.yaml")
    assert spec.early_stopping is not None and spec.early_stopping.rule == "asha"
    assert evaluation_steps(spec.child) == (100, 200, 300, 400)
    assert (spec.space, spec.strategy, spec.budget) == (plain.space, plain.strategy, plain.budget)
    assert spec.child.config_hash() == plain.child.config_hash()  # eval_every is operational
