"""The child's side of the contract: it records the controller's fingerprint as given, and its
command line offers one option per ``TrainConfig`` field."""

from __future__ import annotations

from orchestrator.contract import Tag, TrainConfig, TrialSpec
from orchestrator.space import parse
from orchestrator.space.fingerprint import fingerprint
from orchestrator.trainer.cli import CHILD_OPTIONS
from orchestrator.trainer.run import tags_of

PROBE = "max(id(x), sinh(x))"  # safe and paper fingerprints differ


def test_the_child_tags_its_run_with_the_fingerprint_the_controller_gave() -> None:
    given = fingerprint(parse(PROBE), "paper")
    spec = TrialSpec(expression=PROBE, search="s", trial="s-t00000", fingerprint=given,
                     child=TrainConfig(numerics="paper"))
    tags = tags_of(spec)
    assert tags[Tag.FINGERPRINT] == given
    assert (tags[Tag.SEARCH], tags[Tag.TRIAL]) == ("s", "s-t00000")


def test_a_hand_written_spec_gets_the_fingerprint_of_its_childs_numerics() -> None:
    spec = TrialSpec(expression=PROBE, child=TrainConfig(numerics="paper"))
    assert tags_of(spec)[Tag.FINGERPRINT] == fingerprint(parse(PROBE), "paper")
    assert tags_of(spec)[Tag.FINGERPRINT] != fingerprint(parse(PROBE), "safe")


def test_every_train_config_field_is_a_command_line_option_of_its_type() -> None:
    assert list(CHILD_OPTIONS) == list(TrainConfig.model_fields)
    kinds = {name: kind for name, (kind, _) in CHILD_OPTIONS.items()}
    assert (kinds["steps"], kinds["lr"], kinds["flip"], kinds["model"], kinds["data_source"]) == (
        int, float, bool, str, str)
    assert all(help_text for _, help_text in CHILD_OPTIONS.values())
