"""The local backend with a stand-in interpreter (a shell script that behaves like a child):
launching, exit codes, re-attaching to children that outlived their controller, idempotency."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

from orchestrator.backends.base import Launch
from orchestrator.backends.local import LocalBackend


def script(tmp_path: Path, name: str, body: str) -> str:
    """An executable stand-in for the interpreter: the backend runs it as `python -m ...`."""
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def wait_for(backend: LocalBackend, trial: str, phase: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while backend.state(trial).phase != phase:
        assert time.monotonic() < deadline, backend.state(trial)
        time.sleep(0.05)


def test_a_child_that_exits_0_succeeded_and_one_that_fails_reports_code_and_last_line(
    tmp_path: Path,
) -> None:
    ok = script(tmp_path, "ok.sh", 'echo "child $MLFLOW_RUN_ID threads=$OMP_NUM_THREADS"')
    backend = LocalBackend(tmp_path, gpus=[], python=ok, cpu_threads=1)
    backend.launch(Launch("t1", "r1", {"expression": "x"}, {"MLFLOW_RUN_ID": "r1"}))
    wait_for(backend, "t1", "succeeded")
    assert "child r1 threads=1" in (tmp_path / "trials" / "t1" / "log.txt").read_text()
    assert (tmp_path / "trials" / "t1" / "trial.json").read_text().startswith("{")
    backend.python = script(tmp_path, "nan.sh", 'echo "loss became NaN at step 7"; exit 3')
    backend.launch(Launch("t2", "r2", {}, {}))
    wait_for(backend, "t2", "failed")
    state = backend.state("t2")
    assert state.exit_code == 3 and state.reason == "loss became NaN at step 7"
    # a restarted controller reads the recorded exit code
    assert LocalBackend(tmp_path, gpus=[]).state("t2").exit_code == 3


def test_a_new_backend_re_attaches_to_a_running_child_instead_of_starting_it_again(
    tmp_path: Path,
) -> None:
    sleeper = script(tmp_path, "sleeper.sh", "sleep 30")
    first = LocalBackend(tmp_path, gpus=[], python=sleeper)
    first.launch(Launch("t1", "r1", {}, {}))
    pid = int((tmp_path / "trials" / "t1" / "pid").read_text())
    deadline = time.monotonic() + 10  # until the child has exec'd (its command line is its own)
    while b"sleeper.sh" not in Path(f"/proc/{pid}/cmdline").read_bytes():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    try:
        second = LocalBackend(tmp_path, gpus=[], python=sleeper)  # a restarted controller
        assert second.state("t1").phase == "running"
        second.launch(Launch("t1", "r1", {}, {}))  # idempotent: no second process
        assert int((tmp_path / "trials" / "t1" / "pid").read_text()) == pid
        second.cancel("t1")
        deadline = time.monotonic() + 5
        while first.state("t1").phase == "running":
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        try:
            os.killpg(pid, 9)
        except ProcessLookupError:
            pass
        first.close(timeout=5)


def test_a_trial_never_launched_or_lost_with_its_host_is_missing(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path, gpus=[])
    assert backend.state("never").phase == "missing"
    d = tmp_path / "trials" / "gone"
    d.mkdir(parents=True)
    (d / "trial.json").write_text("{}")
    (d / "pid").write_text(str(os.getpid()))  # alive, but not our child: its cmdline differs
    assert backend.state("gone").phase == "missing"


def test_gpus_are_handed_out_round_robin(tmp_path: Path) -> None:
    env = script(tmp_path, "env.sh", 'echo "gpu=$CUDA_VISIBLE_DEVICES"')
    backend = LocalBackend(tmp_path, gpus=[2, 5], python=env)
    assert backend.gpus_per_child == 1
    for t in ("a", "b", "c"):
        backend.launch(Launch(t, t, {}, {}))
    for t, gpu in (("a", 2), ("b", 5), ("c", 2)):
        wait_for(backend, t, "succeeded")
        assert f"gpu={gpu}" in (tmp_path / "trials" / t / "log.txt").read_text()


def test_a_pack_is_one_process_on_one_gpu_in_the_packs_directory(tmp_path: Path) -> None:
    env = script(tmp_path, "env.sh", 'echo "gpu=$CUDA_VISIBLE_DEVICES run=${MLFLOW_RUN_ID:-none}"')
    backend = LocalBackend(tmp_path, gpus=[2, 5], python=env)
    members = [{"expression": "relu(x)", "trial": f"s-t0000{i}", "run_id": f"r{i}"}
               for i in range(3)]
    backend.launch(Launch("s-p00000", None, {"pack": members}, {},
                          tuple(m["trial"] for m in members)))
    wait_for(backend, "s-p00000", "succeeded")
    d = tmp_path / "trials" / "s-p00000"
    assert "gpu=2 run=none" in (d / "log.txt").read_text()
    assert json.loads((d / "trial.json").read_text()) == {"pack": members}
    assert sorted(p.name for p in (tmp_path / "trials").iterdir()) == ["s-p00000"]
    backend.launch(Launch("s-t00009", "r9", {}, {"MLFLOW_RUN_ID": "r9"}))
    wait_for(backend, "s-t00009", "succeeded")
    assert "gpu=5 run=r9" in (tmp_path / "trials" / "s-t00009" / "log.txt").read_text()


def test_reap_collects_exited_children_without_losing_their_state(tmp_path: Path) -> None:
    busy = script(tmp_path, "busy.sh", "i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done")
    backend = LocalBackend(tmp_path, gpus=[], python=busy, cpu_threads=1)
    before = os.times()
    backend.launch(Launch("t1", "r1", {"expression": "x"}))
    pid = int((tmp_path / "trials" / "t1" / "pid").read_text())
    deadline = time.monotonic() + 30
    while Path(f"/proc/{pid}/stat").exists() and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    backend.reap()
    assert not Path(f"/proc/{pid}").exists()  # reaped: no zombie left
    after = os.times()
    assert after.children_user + after.children_system > before.children_user + before.children_system
    assert backend.state("t1").phase == "succeeded"  # the exit code survives the reaping
