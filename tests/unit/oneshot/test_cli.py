"""``actsearch-ctl oneshot`` and the one-shot path of ``actsearch-train``, in-process."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from click.testing import CliRunner

from orchestrator.cli import main as ctl
from orchestrator.contract import ExitCode
from orchestrator.oneshot.config import OneShotSpec
from orchestrator.trainer.cli import main as train

QUICKSTART = "examples/quickstart.yaml"


def test_the_trial_spec_takes_the_space_and_child_from_the_search_spec() -> None:
    done = CliRunner().invoke(ctl, ["oneshot", QUICKSTART, "--print-trial-spec",
                                    "-o", "variant=darts", "-o", "search_steps=50", "-o", "clamp=null"])
    assert done.exit_code == 0, done.output
    raw = json.loads(done.output)
    spec = yaml.safe_load(Path(QUICKSTART).read_text())
    assert raw["oneshot"]["unary"] == spec["space"]["unary"] and raw["oneshot"]["units"] == 1
    assert (raw["search"], raw["trial"]) == ("quickstart", "quickstart-oneshot")
    parsed = OneShotSpec.model_validate(raw)
    assert (parsed.oneshot.variant, parsed.oneshot.search_steps, parsed.oneshot.clamp) == ("darts", 50, None)
    assert parsed.child.model == spec["child"]["model"] and parsed.child.dataset == spec["child"]["dataset"]


def test_a_bad_option_is_named_and_nothing_runs() -> None:
    done = CliRunner().invoke(ctl, ["oneshot", QUICKSTART, "-o", "variant=enas"])
    assert done.exit_code == 1 and "oneshot.variant" in done.output and "enas" in done.output
    done = CliRunner().invoke(ctl, ["oneshot", QUICKSTART, "-o", "variant"])
    assert done.exit_code == 2 and "key=value" in done.output


def test_the_trainer_refuses_a_oneshot_spec_that_also_names_an_expression(tmp_path: Path) -> None:
    spec = tmp_path / "t.json"
    spec.write_text(json.dumps({"oneshot": {"units": 1}, "child": {"dataset": "digits", "model": "mlp"}}))
    done = CliRunner().invoke(train, ["--spec", str(spec), "-e", "add(id(x), id(x))"])
    assert done.exit_code == ExitCode.BAD_INPUT and "searches for the expression" in done.output
    spec.write_text(json.dumps({"oneshot": {"units": 9}}))
    done = CliRunner().invoke(train, ["--spec", str(spec)])
    assert done.exit_code == ExitCode.BAD_INPUT and "oneshot.units" in done.output
