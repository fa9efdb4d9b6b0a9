"""actsearch-train in-process: spec file + options, exit codes, nothing started on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.contract import ExitCode
from orchestrator.trainer.cli import main

QUICK = ["--model", "mlp", "--dataset", "digits", "--steps", "30", "--batch-size", "64",
         "--crop-padding", "0", "--no-flip", "--device", "cpu", "--log-every", "10"]


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    monkeypatch.setenv("ACTSEARCH_CACHE_DIR", str(tmp_path / "cache"))
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def _runs(uri: str) -> list:  # type: ignore[type-arg]
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    return [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]


def test_a_bad_spec_exits_2_naming_every_bad_field_and_starts_no_run(tmp_path: Path, store: str) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"expression": "sigmul(mul_beta(x), id(x))",
                                "child": {"model": "vgg", "bogus": 1}}))
    result = CliRunner().invoke(main, ["--spec", str(spec), "--steps", "0", "--tracking-uri", store])
    assert result.exit_code == ExitCode.BAD_INPUT
    for needle in ("child.model: Input should be 'resnet20'", "child.bogus: unknown field",
                   "child.steps: steps must be at least 1"):
        assert needle in result.output
    assert not Path(store.removeprefix("sqlite:///")).exists()  # no store, let alone a run


def test_an_unparsable_expression_exits_2_with_the_position(store: str) -> None:
    result = CliRunner().invoke(main, ["-e", "sigmul(mul_beta(x), idd(x))", *QUICK, "--tracking-uri", store])
    assert result.exit_code == ExitCode.BAD_INPUT
    assert "expression" in result.output and "position 20" in result.output


@pytest.mark.parametrize(("depth", "spaces"), [(500, True), (250, False)])
def test_an_expression_nested_too_deep_exits_2_naming_the_limit_and_starts_no_run(
        store: str, depth: int, spaces: bool) -> None:
    """500 deep was a RecursionError (exit 1, which a Job retries): now bad input, exit 2."""
    text = "x"
    for _ in range(depth):
        text = f"add(id({text}), id(x))" if spaces else f"add(id({text}),id(x))"
    result = CliRunner().invoke(main, ["-e", text, *QUICK, "--tracking-uri", store])
    assert result.exit_code == ExitCode.BAD_INPUT, result.output
    assert "expression" in result.output and "at most" in result.output
    assert len(result.output) < 1000  # the expression is not echoed whole
    assert not Path(store.removeprefix("sqlite:///")).exists()


def test_options_override_the_spec_file_and_a_run_is_created_and_finished(tmp_path: Path, store: str) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"expression": "max(id(x), relu(x))", "trial": "t-0001",
                                "child": {"steps": 10_000, "model": "resnet20"}}))
    result = CliRunner().invoke(main, ["--spec", str(spec), *QUICK, "--tracking-uri", store, "--json"])
    assert result.exit_code == ExitCode.OK, result.output
    out = json.loads(result.output.strip().splitlines()[-1])
    (run,) = _runs(store)
    assert run.info.run_id == out["run_id"] and run.info.status == "FINISHED"
    assert run.data.params["child.steps"] == "30" and run.data.params["child.model"] == "mlp"
    assert run.data.tags["actsearch.trial"] == "t-0001"
    assert run.data.metrics["val_accuracy"] == pytest.approx(out["val_accuracy"])


def test_a_diverging_child_exits_3_and_its_run_is_failed(store: str) -> None:
    result = CliRunner().invoke(main, ["-e", "add(exp(mul(exp(x), exp(x))), id(x))", "--numerics", "paper",
                                       *QUICK, "--tracking-uri", store])
    assert result.exit_code == ExitCode.NON_FINITE_LOSS
    (run,) = _runs(store)
    assert run.info.status == "FAILED"
    assert (run.data.tags["actsearch.failure"], run.data.tags["actsearch.failure_step"]) == ("nan", "1")


def test_without_spec_the_trial_spec_is_read_from_the_environment_as_a_job_passes_it(
        tmp_path: Path) -> None:
    from orchestrator.trainer.cli import build_spec

    env = json.dumps({"expression": "max(id(x), relu(x))", "search": "s", "trial": "s-t00001",
                      "child": {"model": "mlp", "steps": 7}})
    spec = build_spec(None, {}, {"steps": 9}, env)
    assert (spec.expression, spec.trial, spec.child.model, spec.child.steps) == \
        ("max(id(x), relu(x))", "s-t00001", "mlp", 9)
    file = tmp_path / "spec.json"
    file.write_text(json.dumps({"expression": "add(id(x), sin(x))"}))
    assert build_spec(file, {}, {}, env).expression == "add(id(x), sin(x))"  # an explicit --spec wins


def test_a_bad_trial_spec_in_the_environment_exits_2_naming_the_variable(
        store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACTSEARCH_TRIAL_SPEC", "{not json")
    result = CliRunner().invoke(main, ["--tracking-uri", store])
    assert result.exit_code == ExitCode.BAD_INPUT
    assert "$ACTSEARCH_TRIAL_SPEC: cannot read a JSON trial spec" in result.output
    monkeypatch.setenv("ACTSEARCH_TRIAL_SPEC", json.dumps({"expression": "idd(x)"}))
    result = CliRunner().invoke(main, ["--tracking-uri", store])
    assert result.exit_code == ExitCode.BAD_INPUT and "expression" in result.output
    assert not Path(store.removeprefix("sqlite:///")).exists()
