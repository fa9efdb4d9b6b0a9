"""``actsearch-ctl benchmark`` end to end on a trimmed copy of examples/benchmark-quick.yaml,
against the real MLflow server (artifacts proxied to the real S3-compatible server), with real
children: every cell is a child run under one parent run, and the table's medians and
win/tie/loss counts equal a hand computation on the values logged in MLflow. A second
``--resume`` trains nothing. The same benchmark with ``packing`` trains its cells side by side,
each still into its own run."""

from __future__ import annotations

import json
import math
import os
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from mlflow.tracking import MlflowClient

from orchestrator.cli import main
from tests.servers import Server

EXAMPLE = Path(__file__).parents[2] / "examples" / "benchmark-quick.yaml"


def trimmed_example(experiment: str) -> dict[str, Any]:
    """The quick example cut to 3 activations × mlp × digits × 3 seeds = 9 short cells, each
    in its own process (the example packs them)."""
    data = yaml.safe_load(EXAMPLE.read_text())
    data.pop("packing", None)
    data["activations"] = ["ReLU", "Swish", "PReLU"]
    data["models"] = ["mlp"]
    data["child"].update(steps=30, log_every=10)
    data["tracking"] = {"experiment": experiment}
    return data


def run_benchmark(data: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                  server: Server) -> tuple[list[str], str, list[Any]]:
    """``actsearch-ctl benchmark`` on ``data`` with real children: (argv, output, MLflow runs)."""
    # children are `python -m orchestrator.trainer` processes: they import this checkout
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        p for p in (os.getcwd(), os.environ.get("PYTHONPATH", "")) if p))
    spec_file = tmp_path / "bench.yaml"
    spec_file.write_text(yaml.safe_dump(data, sort_keys=False))
    argv = ["benchmark", str(spec_file), "--quiet", "--workdir", str(tmp_path / "work")]
    t0 = time.monotonic()
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 0, result.output
    print(f"\n{data['name']} in {time.monotonic() - t0:.0f} s\n{result.output}")
    client = MlflowClient(server.url)
    exp = client.get_experiment_by_name(data["tracking"]["experiment"])
    runs = client.search_runs([exp.experiment_id],
                              f"tags.`actsearch.benchmark` = '{data['name']}'", max_results=100)
    return argv, result.output, runs


def hand_median(values: list[float]) -> float:
    s = sorted(values)
    assert len(s) == 3
    return s[1]


def test_the_quick_benchmark_runs_end_to_end_and_its_table_matches_the_logged_values(
    mlflow_env: dict[str, str], mlflow_server: Server, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    experiment = f"bench-{uuid.uuid4().hex[:8]}"
    argv, output, runs = run_benchmark(trimmed_example(experiment), tmp_path, monkeypatch, mlflow_server)
    client = MlflowClient(mlflow_server.url)
    parents = [r for r in runs if r.data.tags["actsearch.role"] == "benchmark"]
    cells = [r for r in runs if r.data.tags["actsearch.role"] == "cell"]
    assert len(parents) == 1 and len(cells) == 9
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    for r in cells:
        assert r.info.status == "FINISHED"
        assert r.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert r.data.tags["actsearch.cell"].startswith("benchmark-quick-")
        assert r.data.params["child.model"] == "mlp" and r.data.params["child.seed"] == r.data.tags["actsearch.seed"]
    assert {r.data.tags["actsearch.expression"] for r in cells} == {
        "max(relu(x), relu(x))", "sigmul(mul_beta(x), id(x))", "builtin:prelu"}

    # the hand computation, from the logged values alone
    logged: dict[str, list[float]] = {}
    for r in cells:
        logged.setdefault(r.data.tags["actsearch.activation"], []).append(
            r.data.metrics["test_accuracy"])
    medians = {label: hand_median(v) for label, v in logged.items()}
    expected_tests = {}
    for label in ("Swish", "PReLU"):  # one column (mlp / digits): one pair of medians each
        diff = medians[label] - medians["ReLU"]
        expected_tests[label] = (int(diff > 0), int(diff == 0), int(diff < 0))

    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"benchmark.md", "benchmark.json", "benchmark.png"} <= artifacts
    report = json.loads(Path(client.download_artifacts(
        parent.info.run_id, "benchmark.json", str(tmp_path))).read_text())
    table = {row["activation"]: row for row in report["table"]}
    assert list(table) == ["ReLU", "Swish", "PReLU"]
    for label, row in table.items():
        assert row["median"] == medians[label]
        assert row["min"] == min(logged[label]) and row["max"] == max(logged[label])
        assert sorted(row["values"].values()) == sorted(logged[label])
    for test in report["sign_test"]:
        assert (test["wins"], test["ties"], test["losses"]) == expected_tests[test["activation"]]
        assert test["p_value"] == 1.0  # one pair: never significant
    # the terminal shows the same Markdown that was logged
    markdown = Path(client.download_artifacts(parent.info.run_id, "benchmark.md", str(tmp_path)))
    assert markdown.read_text() in output
    relu_row = next(line for line in output.splitlines() if line.startswith("| ReLU |"))
    assert f"{100 * medians['ReLU']:.2f}" in relu_row  # bold when it is the best median
    assert f"[{100 * min(logged['ReLU']):.2f}–{100 * max(logged['ReLU']):.2f}]" in relu_row
    w, t, l_ = expected_tests["Swish"]
    assert f"| {w} | {t} | {l_} | 1.000 |" in output

    # resumed: every cell is finished, so nothing is launched and the table is the same
    trials = tmp_path / "work" / "benchmark-quick" / "trials"
    pids = {p: p.stat().st_mtime_ns for p in trials.glob("*/pid")}
    assert len(pids) == 9
    again = CliRunner().invoke(main, [*argv, "--resume"])
    assert again.exit_code == 0, again.output
    assert {p: p.stat().st_mtime_ns for p in trials.glob("*/pid")} == pids
    exp_id = parent.info.experiment_id
    assert len(client.search_runs([exp_id], "tags.`actsearch.role` = 'cell'")) == 9
    assert markdown.read_text() in again.output

    # and the table again, from MLflow alone
    spec_file = argv[1]
    report_cli = CliRunner().invoke(main, ["benchmark-report", spec_file, "--workdir",
                                           str(tmp_path / "work"), "--json"])
    assert report_cli.exit_code == 0, report_cli.output
    assert json.loads(report_cli.output)["table"] == report["table"]

    # paired by seed: three pairs per candidate, counted and tested by hand
    by_seed = {(r.data.tags["actsearch.activation"], int(r.data.tags["actsearch.seed"])):
               r.data.metrics["test_accuracy"] for r in cells}
    seeds_cli = CliRunner().invoke(main, ["benchmark-report", spec_file, "--workdir",
                                          str(tmp_path / "work"), "--pairs", "seeds", "--json"])
    assert seeds_cli.exit_code == 0, seeds_cli.output
    for test in json.loads(seeds_cli.output)["sign_test"]:
        diffs = [by_seed[(test["activation"], s)] - by_seed[("ReLU", s)] for s in range(3)]
        w, t, l_ = (sum(d > 0 for d in diffs), sum(d == 0 for d in diffs), sum(d < 0 for d in diffs))
        assert (test["wins"], test["ties"], test["losses"]) == (w, t, l_)
        n = w + l_
        p = 1.0 if n == 0 else min(1.0, 2 * sum(math.comb(n, k) for k in range(min(w, l_) + 1)) / 2**n)
        assert test["p_value"] == pytest.approx(p)


def test_a_packed_benchmark_trains_each_cell_into_its_own_run_and_assembles_its_table(
    mlflow_env: dict[str, str], mlflow_server: Server, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    experiment = f"bench-packed-{uuid.uuid4().hex[:8]}"
    data = trimmed_example(experiment)
    # 3 activations × mlp × digits × 2 seeds = 6 cells: one pack of 4 and one of 2, at once
    data.update(name="bench-packed", seeds=2, packing=4, parallelism=2)
    argv, _, runs = run_benchmark(data, tmp_path, monkeypatch, mlflow_server)
    client = MlflowClient(mlflow_server.url)
    parent = next(r for r in runs if r.data.tags["actsearch.role"] == "benchmark")
    cells = [r for r in runs if r.data.tags["actsearch.role"] == "cell"]
    assert len(cells) == 6 and parent.info.status == "FINISHED"
    for r in cells:
        assert r.info.status == "FINISHED"
        assert "val_accuracy" in r.data.metrics and "test_accuracy" in r.data.metrics
        assert r.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert r.data.tags["actsearch.trial"] == r.data.tags["actsearch.cell"]
        assert r.data.params["child.seed"] == r.data.tags["actsearch.seed"]
    assert sorted(int(r.data.tags["actsearch.pack_size"]) for r in cells) == [2, 2, 4, 4, 4, 4]

    # two processes, one per pack, each directory named by its pack id
    trials = tmp_path / "work" / "bench-packed" / "trials"
    pack_dirs = sorted(p.parent for p in trials.glob("*/pid"))
    assert len(pack_dirs) == 2 and all(d.name.startswith("bench-packed-p") for d in pack_dirs)
    members = [json.loads((d / "trial.json").read_text())["pack"] for d in pack_dirs]
    assert sorted(len(m) for m in members) == [2, 4]
    assert sorted(m["run_id"] for pack in members for m in pack) == sorted(
        r.info.run_id for r in cells)

    # the table, per cell from each cell's run
    logged: dict[str, list[float]] = {}
    for r in cells:
        logged.setdefault(r.data.tags["actsearch.activation"], []).append(
            r.data.metrics["test_accuracy"])
    report = json.loads(Path(client.download_artifacts(
        parent.info.run_id, "benchmark.json", str(tmp_path))).read_text())
    table = {row["activation"]: row for row in report["table"]}
    assert list(table) == ["ReLU", "Swish", "PReLU"]
    for label, row in table.items():
        assert row["median"] == pytest.approx(statistics.median(logged[label]))
        assert sorted(row["values"].values()) == sorted(logged[label])

    # resumed: every cell is finished, so no pack is started again
    pids = {p: p.stat().st_mtime_ns for p in trials.glob("*/pid")}
    again = CliRunner().invoke(main, [*argv, "--resume"])
    assert again.exit_code == 0, again.output
    assert {p: p.stat().st_mtime_ns for p in trials.glob("*/pid")} == pids
