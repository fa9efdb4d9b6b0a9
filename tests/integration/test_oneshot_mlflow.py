"""A one-shot child against the real MLflow server: architecture weights over time, the heatmap,
the candidates retrained beside ReLU, the result expression, and the evaluation child that trains
it from scratch."""

from __future__ import annotations

import json
from pathlib import Path

from mlflow.tracking import MlflowClient

from orchestrator.contract import ExitCode
from orchestrator.space import SearchSpace, parse, to_text
from tests.integration.child import child_env, run_child
from tests.servers import Server

UNARY = ["id", "neg", "relu", "tanh", "sin", "exp"]
BINARY = ["add", "mul", "max"]
RELU = "max(relu(x), relu(x))"


def test_a_oneshot_child_logs_its_search_and_hands_the_result_to_an_evaluation_child(
    mlflow_env: dict[str, str], mlflow_server: Server, tmp_path: Path,
) -> None:
    client = MlflowClient(mlflow_server.url)
    exp = client.get_experiment_by_name("oneshot") or client.create_experiment("oneshot")
    exp_id = exp if isinstance(exp, str) else exp.experiment_id
    run_id = client.create_run(exp_id, tags={"actsearch.search": "s-os"}).info.run_id
    spec = tmp_path / "oneshot.json"
    spec.write_text(json.dumps({
        "oneshot": {"variant": "drnas", "units": 2, "unary": UNARY, "binary": BINARY,
                    "search_steps": 40, "warmstart_steps": 5,
                    "candidates": 2, "select_seeds": 1, "select_steps": 20},
        "search": "s-os", "trial": "t-0001", "experiment": "oneshot",
        "child": {"model": "mlp", "dataset": "digits", "steps": 40, "batch_size": 64, "crop_padding": 0,
                  "flip": False, "device": "cpu", "log_every": 15},
    }))
    env = child_env({**mlflow_env, "MLFLOW_RUN_ID": run_id}, str(tmp_path))
    done = run_child(["--spec", str(spec)], env)
    assert done.returncode == ExitCode.OK, done.stderr[-3000:]

    run = client.get_run(run_id)
    t, p, m = run.data.tags, run.data.params, run.data.metrics
    assert run.info.status == "FINISHED"
    assert (t["actsearch.role"], t["actsearch.trial"], t["actsearch.oneshot_variant"]) == ("oneshot", "t-0001", "drnas")
    expression = t["actsearch.result_expression"]
    assert to_text(parse(expression)) == expression
    # the result is a derived function of the template, or the baseline it did not beat
    assert expression == RELU or SearchSpace(units=2, unary=tuple(UNARY), binary=tuple(BINARY)).contains(
        parse(expression))
    assert m["selected_val_accuracy"] >= m["baseline_val_accuracy"]
    assert (p["oneshot.variant"], p["oneshot.search_steps"], p["model"]) == ("drnas", "40", "mlp")
    history = client.get_metric_history(run_id, "alpha.u1.relu")
    assert [x.step for x in history] == [15, 30, 45]  # the search steps, after 5 warm-start steps
    assert all(0.0 <= x.value <= 1.0 for x in history)
    assert sum(m[f"alpha.b2.{op}"] for op in BINARY) == 1.0  # shrunk to one op
    assert m["active_ops"] == 6 and "supernet_val_accuracy" in m
    artifacts = {f.path for f in client.list_artifacts(run_id)}
    assert {"oneshot_heatmap.png", "architecture.json"} <= artifacts
    png = Path(client.download_artifacts(run_id, "oneshot_heatmap.png", str(tmp_path)))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    arch = json.loads(Path(client.download_artifacts(run_id, "architecture.json", str(tmp_path))).read_text())
    retrained = [r["expression"] for r in arch["retrained"]]
    assert retrained == [RELU, *(c["expression"] for c in arch["candidates"])] and expression in retrained

    evaluation = client.get_run(t["actsearch.evaluation_run"])
    assert evaluation.info.status == "FINISHED"
    et = evaluation.data.tags
    assert et["actsearch.oneshot_of"] == run_id and et["actsearch.expression"] == expression
    assert (et["actsearch.role"], et["actsearch.search"], et["actsearch.trial"]) == ("trial", "s-os", "t-0001-eval")
    assert evaluation.data.metrics["val_accuracy"] > 0.5
