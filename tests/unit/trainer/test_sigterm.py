"""SIGTERM to a real ``actsearch-train`` process (a subprocess, MLflow in a SQLite file): it
stops within seconds with ``ExitCode.INTERRUPTED``, its checkpoint stored and its run left
RUNNING, and the next attempt on the same run resumes where it stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator.contract import PERMANENT_EXIT_CODES, ExitCode, Tag

ROOT = Path(__file__).resolve().parents[3]
STEPS = "200000"  # far more than the test waits for: only SIGTERM ends the child
ARGS = ["-e", "max(id(x), tanh(x))", "--model", "mlp", "--dataset", "digits", "--steps", STEPS,
        "--batch-size", "32", "--crop-padding", "0", "--no-flip", "--device", "cpu",
        "--log-every", "50"]


def start(tmp_path: Path, uri: str, *extra: str) -> tuple[subprocess.Popen[bytes], Path]:
    """The child, its log in a file (a pipe nobody reads would block it)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ACTSEARCH_CACHE_DIR": str(tmp_path / "cache"),
           "OMP_NUM_THREADS": "1"}
    env.pop("MLFLOW_RUN_ID", None)
    log = tmp_path / f"child-{time.monotonic_ns()}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "orchestrator.trainer", *ARGS,
                                 "--tracking-uri", uri, *extra], cwd=tmp_path, env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    return proc, log


def until_training(child: tuple[subprocess.Popen[bytes], Path], needle: str,
                   timeout: float = 300.0) -> None:
    """Wait until the child's log shows ``needle`` (it trains)."""
    proc, log = child
    deadline = time.monotonic() + timeout
    while needle not in log.read_text():
        assert proc.poll() is None, f"child ended: {log.read_text()[-2000:]}"
        assert time.monotonic() < deadline, f"child stalled: {log.read_text()[-2000:]}"
        time.sleep(0.1)


def terminate(child: tuple[subprocess.Popen[bytes], Path]) -> tuple[int, float, str]:
    proc, log = child
    time.sleep(1.0)  # some steps in
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return code, time.monotonic() - sent, log.read_text()


def test_sigterm_checkpoints_exits_143_and_the_retry_resumes_from_the_step_it_reached(
        tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    assert int(ExitCode.INTERRUPTED) == 143 and 143 not in PERMANENT_EXIT_CODES
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    first = start(tmp_path, uri)
    until_training(first, "training mlp")
    code, took, log = terminate(first)
    assert code == ExitCode.INTERRUPTED, log
    assert took < 15.0  # a step and a checkpoint, on a loaded machine
    assert "stopped by SIGTERM after step" in log
    client = MlflowClient(uri)
    (run,) = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]
    assert run.info.status == "RUNNING"  # the retry attaches to it
    stopped_at = int(run.data.tags[Tag.CHECKPOINT_STEP])
    assert 0 < stopped_at < int(STEPS)
    assert [f.path for f in client.list_artifacts(run.info.run_id, "checkpoints")] == [
        "checkpoints/last.pt"]

    second = start(tmp_path, uri, "--run-id", run.info.run_id)  # the Job's next pod
    until_training(second, f"resuming at step {stopped_at} of {STEPS}")
    code, _, log = terminate(second)
    assert code == ExitCode.INTERRUPTED, log
    again = client.get_run(run.info.run_id)
    assert again.data.tags[Tag.RESUMED_FROM_STEP] == str(stopped_at)
    assert int(again.data.tags[Tag.CHECKPOINT_STEP]) > stopped_at  # the step counter went on


def test_sigterm_before_training_exits_143_at_once(tmp_path: Path) -> None:
    """While the data loads and nothing is worth saving, SIGTERM ends the child at once."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc, _ = start(tmp_path, uri)
    time.sleep(0.5)  # importing, before the first step
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=60)
    assert code in (ExitCode.INTERRUPTED, -signal.SIGTERM)  # handler not yet installed: killed


@pytest.mark.parametrize("code", [int(ExitCode.INTERRUPTED), -signal.SIGTERM])
def test_a_local_child_stopped_by_sigterm_reads_as_missing_so_it_goes_again(tmp_path: Path,
                                                                             code: int) -> None:
    from orchestrator.backends.local import LocalBackend

    backend = LocalBackend(tmp_path, gpus=[])
    d = tmp_path / "trials" / "t1"
    d.mkdir(parents=True)
    (d / "exit_code").write_text(str(code))
    assert backend.state("t1").phase == "missing"
