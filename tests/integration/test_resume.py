"""Preemption: a child SIGKILLed after a checkpoint resumes in the same run, its metrics continuing."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from mlflow.tracking import MlflowClient

from orchestrator.contract import ExitCode
from tests.integration.child import QUICK, child_argv, child_env, run_child
from tests.servers import Server

STEPS, EVERY, LOG = 2000, 100, 50


def test_a_killed_child_resumes_from_its_last_checkpoint_and_its_metrics_continue(
    mlflow_env: dict[str, str], mlflow_server: Server, tmp_path: Path,
) -> None:
    client = MlflowClient(mlflow_server.url)
    exp = client.get_experiment_by_name("resume")
    run_id = client.create_run(exp.experiment_id if exp else client.create_experiment("resume")).info.run_id
    env = child_env({**mlflow_env, "MLFLOW_RUN_ID": run_id}, str(tmp_path))
    args = ["-e", "sigmul(mul_beta(x), id(x))", *QUICK, "--steps", str(STEPS),
            "--checkpoint-every", str(EVERY), "--log-every", str(LOG)]

    first = subprocess.Popen(child_argv(*args), env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while "actsearch.checkpoint_step" not in client.get_run(run_id).data.tags:
            assert first.poll() is None, f"the first attempt ended ({first.returncode}) before a checkpoint"
            assert time.monotonic() < deadline, "no checkpoint within 90 s"
            time.sleep(0.1)
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(10)
    killed = client.get_run(run_id)
    assert killed.info.status == "RUNNING", "the first attempt finished before it could be killed"
    # the tag lags the upload, so the stored checkpoint is at this step or a later one
    seen_ckpt = int(killed.data.tags["actsearch.checkpoint_step"])
    logged_before = [m.step for m in client.get_metric_history(run_id, "train_loss")]
    assert max(logged_before) < STEPS

    second = run_child(args, env, timeout=150)
    assert second.returncode == ExitCode.OK, second.stderr[-3000:]

    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    resumed_from = int(run.data.tags["actsearch.resumed_from_step"])
    assert resumed_from >= seen_ckpt and resumed_from % EVERY == 0 and resumed_from < STEPS
    steps = [m.step for m in client.get_metric_history(run_id, "train_loss")]
    # every step up to the checkpoint was logged exactly once: the second attempt did not restart
    before = sorted(s for s in steps if s <= resumed_from)
    assert before == list(range(LOG, resumed_from + 1, LOG))
    # and the rest continues the step numbers to the end
    assert sorted(set(steps)) == list(range(LOG, STEPS + 1, LOG))
    assert [m.step for m in client.get_metric_history(run_id, "val_accuracy")] == [STEPS]
    assert run.data.metrics["val_accuracy"] > 0.8
