"""TrainConfig / TrialSpec: defaults from the paper, clear errors, a hash that means something."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from orchestrator.contract import OPERATIONAL_FIELDS, TrainConfig, TrialSpec
from orchestrator.validation import describe

SWISH = "sigmul(mul_beta(x), id(x))"


def test_defaults_are_the_papers_child_protocol() -> None:
    c = TrainConfig()
    assert (c.model, c.dataset, c.steps, c.batch_size) == ("resnet20", "cifar10", 10_000, 128)
    assert (c.optimizer, c.momentum, c.nesterov, c.lr, c.schedule, c.weight_decay) == (
        "sgd", 0.9, True, 0.1, "cosine", 5e-4)
    assert round(50_000 * c.val_fraction) == 5_000


@pytest.mark.parametrize(("field", "value", "needle"), [
    ("model", "vgg16", "'resnet20'"),
    ("optimizer", "rmsprop", "'sgd'"),
    ("numerics", "fast", "'paper'"),
    ("steps", 0, "at least 1"),
    ("lr", -1.0, "positive"),
    ("val_fraction", 1.0, "between 0 and 1"),
    ("data_sha256", "abc", "64 hexadecimal"),
])
def test_a_bad_value_names_its_field_and_what_is_allowed(field: str, value: object, needle: str) -> None:
    with pytest.raises(ValidationError) as info:
        TrialSpec(expression=SWISH, child={field: value})
    text = describe(info.value, "trial spec")
    assert text.startswith(f"child.{field}: ")
    assert needle in text


def test_unknown_fields_are_rejected_by_name() -> None:
    with pytest.raises(ValidationError) as info:
        TrialSpec.model_validate({"expression": SWISH, "child": {"stpes": 10}})
    assert describe(info.value, "trial spec") == "child.stpes: unknown field (not part of the trial spec)"


def test_an_unparsable_expression_is_a_validation_error_with_the_position() -> None:
    with pytest.raises(ValidationError) as info:
        TrialSpec(expression="sigmul(mul_beta(x), idd(x))")
    assert "expression" in describe(info.value, "trial spec") and "idd" in describe(info.value, "trial spec")


def test_the_expression_is_stored_canonically() -> None:
    assert TrialSpec(expression="sigmul( mul_beta(x) ,id(x) )").expression == SWISH


def test_the_config_is_frozen() -> None:
    with pytest.raises(ValidationError):
        TrainConfig().steps = 5  # type: ignore[misc]


def test_the_hash_changes_with_what_affects_the_result_only() -> None:
    base = TrainConfig()
    assert base.config_hash() == TrainConfig.model_validate(json.loads(base.model_dump_json())).config_hash()
    assert TrainConfig(lr=0.05).config_hash() != base.config_hash()
    assert TrainConfig(seed=1).config_hash() != base.config_hash()
    operational = TrainConfig(data_source="s3://b/cifar.tgz", log_every=7, checkpoint_every=50,
                              eval_every=10, save_weights=True, device="cpu", compile="eager")
    assert operational.config_hash() == base.config_hash()
    assert set(TrainConfig.model_fields) >= OPERATIONAL_FIELDS


def test_every_field_is_documented() -> None:
    for name, f in {**TrainConfig.model_fields, **TrialSpec.model_fields}.items():
        assert f.description, name


def test_contradictory_settings_are_refused() -> None:
    with pytest.raises(ValidationError, match="CUDA graphs"):
        TrainConfig(device="cpu", compile="graph")
    with pytest.raises(ValidationError, match="compile='eager_graph' needs device 'cuda'"):
        TrainConfig(device="cpu", compile="eager_graph")
    with pytest.raises(ValidationError, match="warmup_steps"):
        TrainConfig(steps=10, warmup_steps=10)
