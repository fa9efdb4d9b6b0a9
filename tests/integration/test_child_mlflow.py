"""A child against a real MLflow server whose artifacts land in a real S3-compatible bucket."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from mlflow.tracking import MlflowClient

from orchestrator.contract import ExitCode, TrainConfig
from orchestrator.space import parse
from orchestrator.space.fingerprint import fingerprint
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
    assert (p["child.model"], p["child.dataset"], p["child.steps"], p["child.seed"]) == (
        "mlp", "digits", "120", "0")  # the names the search's parent run uses
    assert (p["unit1.binary"], p["unit1.unary1"], p["unit1.unary2"], p["unit1.inputs"]) == (
        "sigmul", "mul_beta", "id", "x,x")  # the function's structure, for the compare view
    assert p["code_version"].startswith(("0.", "unknown")) and "+src." in p["code_version"]
    assert (t["actsearch.search"], t["actsearch.trial"]) == ("s-demo", "t-0007")
    assert t["actsearch.fingerprint"] == fingerprint(parse(SWISH), "safe")  # the child's numerics
    assert t["actsearch.config_hash"] == TrainConfig(
        model="mlp", dataset="digits", batch_size=64, crop_padding=0, flip=False, steps=120,
    ).config_hash()  # device and logging are operational: not in the hash
    for name in ("val_accuracy", "test_accuracy", "wall_time_s", "steps_per_s", "beta_mean"):
        assert name in m, name
    assert m["val_accuracy"] > 0.5
    assert [x.step for x in client.get_metric_history(run_id, "train_loss")] == [40, 80, 120]
    assert [x.step for x in client.get_metric_history(run_id, "val_accuracy")] == [60, 120]

    artifacts = {f.path for f in client.list_artifacts(run_id)}
    assert {"activation.png", "config.json"} <= artifacts
    assert "images" in artifacts  # the plot as an MLflow image too (the charts view shows it)
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


def test_a_pack_logs_each_member_to_its_own_run_and_a_diverging_member_fails_alone(
    mlflow_env: dict[str, str], mlflow_server: Server, tmp_path: Path,
) -> None:
    client = MlflowClient(mlflow_server.url)
    exprs = [SWISH, "add(exp(mul(exp(x), exp(x))), id(x))", "max(id(x), relu(x))"]
    run_ids = [_precreated_run(client, "pack", {"actsearch.trial": f"t-{i}"}) for i in range(3)]
    child = {"model": "mlp", "dataset": "digits", "batch_size": 64, "crop_padding": 0, "flip": False,
             "device": "cpu", "numerics": "paper", "steps": 60, "log_every": 20, "save_weights": True}
    spec = {"pack": [{"expression": e, "trial": f"t-{i}", "run_id": r, "child": child}
                     for i, (e, r) in enumerate(zip(exprs, run_ids, strict=True))]}
    path = tmp_path / "pack.json"
    path.write_text(json.dumps(spec))
    done = run_child(["--spec", str(path), "--json"], child_env(mlflow_env, str(tmp_path)))
    assert done.returncode == ExitCode.OK, done.stderr[-3000:]
    summary = json.loads(done.stdout)  # stdout holds the summary alone (MLflow's links go to stderr)
    assert [s["run_id"] for s in summary] == run_ids
    assert summary[1] == {"run_id": run_ids[1], "failure": "nan", "failure_step": 1}

    diverged = client.get_run(run_ids[1])
    assert diverged.info.status == "FAILED" and diverged.data.tags["actsearch.failure"] == "nan"
    assert "val_accuracy" not in diverged.data.metrics
    for i in (0, 2):
        run = client.get_run(run_ids[i])
        assert run.info.status == "FINISHED", i
        assert run.data.metrics["val_accuracy"] == summary[i]["val_accuracy"] > 0.5
        assert run.data.tags["actsearch.pack_size"] == "3"
        assert run.data.params["expression"] == exprs[i]
        assert [x.step for x in client.get_metric_history(run_ids[i], "train_loss")] == [20, 40, 60]
        # the weights are the plain network's: loadable without knowing about packing
        local = client.download_artifacts(run_ids[i], "weights/model.pt", str(tmp_path))
        state = torch.load(local, weights_only=True)
        assert state["body.1.weight"].shape == (128, 64)


def test_a_pack_whose_members_all_diverge_exits_3(mlflow_env: dict[str, str], tmp_path: Path) -> None:
    child = {"model": "mlp", "dataset": "digits", "batch_size": 64, "device": "cpu", "numerics": "paper",
             "steps": 20}
    bad = "add(exp(mul(exp(x), exp(x))), id(x))"
    path = tmp_path / "pack.json"
    path.write_text(json.dumps({"pack": [{"expression": bad, "child": child}] * 2}))
    done = run_child(["--spec", str(path)], child_env(mlflow_env, str(tmp_path)))
    assert done.returncode == ExitCode.NON_FINITE_LOSS, done.stderr[-3000:]
    assert "every member of the pack diverged" in done.stderr


def test_a_pack_whose_members_disagree_on_training_is_bad_input(mlflow_env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "pack.json"
    path.write_text(json.dumps({"pack": [{"expression": SWISH, "child": {"lr": 0.1}},
                                         {"expression": SWISH, "child": {"lr": 0.2}}]}))
    done = run_child(["--spec", str(path)], child_env(mlflow_env, str(tmp_path)))
    assert done.returncode == ExitCode.BAD_INPUT
    assert "pack[1].child differs from pack[0].child in lr" in done.stderr
