"""``actsearch-ctl table build`` end to end on digits against the real MLflow server, with real
packed children: killed after its first pack, a partial export holds exactly the functions
whose seeds all ended; ``--resume`` keeps every finished run and trains only the rest; the
table's values are the ones MLflow holds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from mlflow.tracking import MlflowClient

from orchestrator.cli import main
from orchestrator.table import load
from tests.servers import Server

STEPS, EVERY = 20, 10


def tiny_spec(experiment: str, output: Path) -> dict[str, object]:
    """3 functions × 2 seeds = 6 children on digits, 2 packs of 4 and 2 (whole functions)."""
    return {
        "name": "tiny-table",
        "functions": {"sample": 2, "sample_seed": 1, "include": ["ReLU"]},
        "seeds": 2,
        "model": "mlp",
        "dataset": "digits",
        "child": {"steps": STEPS, "eval_every": EVERY, "log_every": STEPS, "batch_size": 32,
                  "lr": 0.05, "crop_padding": 0, "flip": False, "device": "cpu", "plot": False},
        "parallelism": 1,
        "packing": 4,
        "output": str(output),
        "tracking": {"experiment": experiment},
    }


def cell_runs(server: Server, experiment: str) -> list[object]:
    client = MlflowClient(server.url)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return []
    return client.search_runs([exp.experiment_id], "tags.`actsearch.role` = 'cell'",
                              max_results=100)


@pytest.mark.slow
def test_a_killed_build_exports_whole_functions_and_resumes_without_retraining(
    mlflow_env: dict[str, str], mlflow_server: Server, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    experiment = f"table-{uuid.uuid4().hex[:8]}"
    out = tmp_path / "t.jsonl.gz"
    spec_file = tmp_path / "table.yaml"
    spec_file.write_text(yaml.safe_dump(tiny_spec(experiment, out)))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        p for p in (os.getcwd(), os.environ.get("PYTHONPATH", "")) if p))
    work = str(tmp_path / "work")
    argv = ["table", "build", str(spec_file), "--quiet", "--workdir", work]
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator.cli", *argv],
                            env={**os.environ}, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:
            ended = [r for r in cell_runs(mlflow_server, experiment) if r.info.status != "RUNNING"]
            if len(ended) >= 4:
                break
            time.sleep(0.5)
        else:
            pytest.fail("the first pack did not finish in time")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the build, not its pack (a session of its own)
        proc.wait()
    first = {r.info.run_id: r.info.start_time for r in cell_runs(mlflow_server, experiment)
             if r.info.status != "RUNNING"}

    partial = CliRunner().invoke(main, ["table", "export", str(spec_file), "--workdir", work])
    assert partial.exit_code == 0, partial.output
    t = load(out)
    assert t.meta["functions"]["planned"] == 3
    assert len(t) == (3 if len(first) == 6 else 2)  # the first pack: two whole functions
    assert t.meta["partial"] is (len(t) < 3)
    assert t.meta["build"]["sessions"] == 1

    done = CliRunner().invoke(main, [*argv, "--resume"])
    assert done.exit_code == 0, done.output
    runs = cell_runs(mlflow_server, experiment)
    assert len(runs) == 6  # no cell got a second run
    for r in runs:
        if r.info.run_id in first:  # finished before the kill: kept as it was
            assert r.info.start_time == first[r.info.run_id]
    t = load(out)
    assert t.meta["partial"] is False and len(t) == 3 and t.seeds == (0, 1)
    assert t.steps == (EVERY, STEPS) and t.meta["build"]["sessions"] == 2
    assert t.entries[0].expression == "max(relu(x), relu(x))"
    client = MlflowClient(mlflow_server.url)
    finished = next(r for r in runs if r.info.status == "FINISHED")
    artifacts = {a.path for a in client.list_artifacts(finished.info.run_id)}
    assert "config.json" in artifacts and "activation.png" not in artifacts  # plot: false
    by_cell = {(r.data.tags["actsearch.expression"], int(r.data.tags["actsearch.seed"])): r
               for r in runs}
    for e in t.entries:
        for seed, curve in e.curves.items():
            run = by_cell[(e.expression, seed)]
            if run.info.status == "FINISHED":
                assert curve.failure is None
                assert curve.final == pytest.approx(run.data.metrics["val_accuracy"], abs=1e-5)
                assert curve.test == pytest.approx(run.data.metrics["test_accuracy"], abs=1e-5)
                assert all(v is not None and 0 <= v <= 1 for v in curve.val)
            else:
                assert curve.final is None and curve.failure is not None
