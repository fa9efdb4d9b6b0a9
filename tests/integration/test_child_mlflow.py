"""A child against a real MLflow server whose artifacts land in a real S3-compatible bucket."""

from __future__ import annotations

from pathlib import Path

from mlflow.tracking import MlflowClient

from orchestrator.trainer.errors import ExitCode
from tests.integration.child import QUICK, child_env, run_child
from tests.servers import Server

SWISH = "sigmul(mul_beta(x), id(x))"


def _precreated_run(client: MlflowClient, name: str, tags: dict[str, str]) -> str:
    """What the controller does before it launches a child."""
    exp = client.get_experiment_by_name(name)
    exp_id = exp.experiment_id if exp else client.create_experiment(name)
    return client.create_run(exp_id, tags=tags).info.run_id


def _objects(s3_client, bucket: str) -> list[str]:  # type: ignore[no-untyped-def]
    pages = s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return [o["Key"] for p in pages for o in p.get("Contents", [])]


def test_params_tags_metrics_and_the_plot_land_where_the_controller_looks(
    mlflow_env: dict[str, str], mlflow_server: Server, s3_client, s3_bucket: str, tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    client = MlflowClient(mlflow_server.url)
    run_id = _precreated_run(client, "logging", {"actsearch.search": "s-demo", "actsearch.trial": "t-0007"})
    env = child_env({**mlflow_env, "MLFLOW_RUN_ID": run_id}, str(tmp_path))
    done = run_child(["-e", SWISH, *QUICK, "--steps", "120", "--log-every", "40", "--eval-every", "60"], env)
    assert done.returncode == ExitCode.OK, done.stderr[-3000:]

    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    p, t, m = run.data.params, run.data.tags, run.data.metrics
    assert p["expression"] == SWISH and p["expression_math"] == "σ(β·x)·x"
    assert (p["model"], p["dataset"], p["steps"], p["seed"]) == ("mlp", "digits", "120", "0")
    assert p["code_version"].startswith(("0.", "unknown")) and "+src." in p["code_version"]
    assert (t["actsearch.search"], t["actsearch.trial"]) == ("s-demo", "t-0007")
    assert len(t["actsearch.fingerprint"]) == 16 and len(t["actsearch.config_hash"]) == 16
    for name in ("val_accuracy", "test_accuracy", "wall_time_s", "steps_per_s", "beta_mean"):
        assert name in m, name
    assert m["val_accuracy"] > 0.5
    assert [x.step for x in client.get_metric_history(run_id, "train_loss")] == [40, 80, 120]
    assert [x.step for x in client.get_metric_history(run_id, "val_accuracy")] == [60, 120]

    artifacts = {f.path for f in client.list_artifacts(run_id)}
    assert {"activation.png", "config.json"} <= artifacts
    keys = [k for k in _objects(s3_client, s3_bucket) if run_id in k]
    png = next(k for k in keys if k.endswith("/activation.png"))
    assert png.startswith(f"{mlflow_server.extra['prefix']}/")
    body = s3_client.get_object(Bucket=s3_bucket, Key=png)["Body"].read()
    assert body[:8] == b"\x89PNG\r\n\x1a\n" and len(body) > 5000


def test_a_child_whose_loss_overflows_ends_failed_with_its_tag_and_exit_code_3(
    mlflow_env: dict[str, str], mlflow_server: Server, tmp_path: Path,
) -> None:
    client = MlflowClient(mlflow_server.url)
    run_id = _precreated_run(client, "nan", {"actsearch.trial": "t-nan"})
    env = child_env({**mlflow_env, "MLFLOW_RUN_ID": run_id}, str(tmp_path))
    # raw ('paper') exp(exp(2x)) overflows float32 at the first batch-normalised input above 2.3
    done = run_child(["-e", "add(exp(mul(exp(x), exp(x))), id(x))", "--numerics", "paper", *QUICK,
                      "--steps", "100"], env)
    assert done.returncode == ExitCode.NON_FINITE_LOSS, done.stderr[-3000:]
    assert "became nan at step 1" in done.stderr
    run = client.get_run(run_id)
    assert run.info.status == "FAILED"
    assert run.data.tags["actsearch.failure"] == "nan"
    assert run.data.tags["actsearch.failure_step"] == "1"
    assert "val_accuracy" not in run.data.metrics


def test_a_run_id_that_does_not_exist_is_bad_input(mlflow_env: dict[str, str], tmp_path: Path) -> None:
    env = child_env({**mlflow_env, "MLFLOW_RUN_ID": "0" * 32}, str(tmp_path))
    done = run_child(["-e", SWISH, *QUICK, "--steps", "5"], env)
    assert done.returncode == ExitCode.BAD_INPUT, done.stderr[-3000:]
    assert "0" * 32 in done.stderr


def test_an_unreachable_tracking_server_is_an_infrastructure_error(tmp_path: Path) -> None:
    from tests.servers import FAST_FAILING_MLFLOW_CLIENT, free_port

    env = child_env({**FAST_FAILING_MLFLOW_CLIENT, "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}"},
                    str(tmp_path))
    env.pop("MLFLOW_RUN_ID", None)
    done = run_child(["-e", SWISH, *QUICK, "--steps", "5"], env)
    assert done.returncode == ExitCode.INFRASTRUCTURE, done.stderr[-3000:]


def test_bad_input_leaves_a_precreated_run_untouched(
    mlflow_env: dict[str, str], mlflow_server: Server, tmp_path: Path,
) -> None:
    client = MlflowClient(mlflow_server.url)
    run_id = _precreated_run(client, "bad", {})
    env = child_env({**mlflow_env, "MLFLOW_RUN_ID": run_id}, str(tmp_path))
    done = run_child(["-e", SWISH, *QUICK, "--steps=-3"], env)
    assert done.returncode == ExitCode.BAD_INPUT
    assert "child.steps" in done.stderr
    run = client.get_run(run_id)
    assert run.data.params == {} and client.list_artifacts(run_id) == []
