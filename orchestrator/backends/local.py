"""Children as local processes (``actsearch-train``), the embedded default.

Each launch gets a directory ``<workdir>/trials/<launch-id>/`` holding its trial spec, its log and
a pid file, so a restarted controller finds children that outlived it (by pid, checked against
the process's command line) instead of starting them twice. The launch id is the trial id, or for
a pack (several children in one process, ``packing``) the pack id: its members share the pack's
directory and log. GPUs, when there are any, are handed out round-robin, one per process,
through ``CUDA_VISIBLE_DEVICES``.

``cancel`` stops a child as Kubernetes stops a pod: SIGTERM to its process group, then SIGKILL
after ``grace_seconds``. The trainer answers SIGTERM by storing a checkpoint and exiting
``ExitCode.INTERRUPTED``; such a child reads as ``missing``, so the search launches it again
(same run: it resumes) as it does a lost one.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from orchestrator.backends.base import ChildState, Launch
from orchestrator.contract import Cause, ExitCode, exit_cause

log = logging.getLogger(__name__)


def visible_gpus() -> list[int]:
    """Indices of the GPUs this process may use (none without CUDA)."""
    try:
        import torch

        return list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    except Exception:  # a broken CUDA install must not stop a CPU search
        return []


class LocalBackend:
    """Runs ``python -m orchestrator.trainer --spec <trial.json>`` per launch (trial or pack)."""

    def __init__(
        self,
        workdir: str | Path,
        gpus: list[int] | None = None,
        python: str = sys.executable,
        extra_env: dict[str, str] | None = None,
        cpu_threads: int | None = None,
        grace_seconds: float = 30.0,
    ) -> None:
        self.root = Path(workdir) / "trials"
        self.root.mkdir(parents=True, exist_ok=True)
        self.gpus = visible_gpus() if gpus is None else list(gpus)
        self.gpus_per_child = 1 if self.gpus else 0
        self.reports_start = False  # a process starts when it is launched
        self.python = python
        self.extra_env = extra_env or {}
        # CPU children share the cores: without a cap, each would start one thread per core
        self.cpu_threads = cpu_threads
        self.grace_seconds = grace_seconds  # Kubernetes' default terminationGracePeriodSeconds
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._next_gpu = 0

    def _dir(self, trial_id: str) -> Path:
        return self.root / trial_id

    def launch(self, launch: Launch) -> None:
        if self.state(launch.trial_id).phase in ("running", "queued"):
            log.info("%s %s already running; not starting it twice",
                     "pack" if launch.is_pack else "trial", launch.trial_id)
            return
        d = self._dir(launch.trial_id)
        d.mkdir(parents=True, exist_ok=True)
        spec_path = d / "trial.json"
        spec_path.write_text(json.dumps(launch.trial_spec, indent=2))
        env = {**os.environ, **self.extra_env, **launch.env}
        if self.gpus:
            env["CUDA_VISIBLE_DEVICES"] = str(self.gpus[self._next_gpu % len(self.gpus)])
            self._next_gpu += 1
        elif self.cpu_threads:
            env.setdefault("OMP_NUM_THREADS", str(self.cpu_threads))
        cmd = [self.python, "-m", "orchestrator.trainer", "--spec", str(spec_path)]
        with open(d / "log.txt", "ab") as out:
            proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        (d / "pid").write_text(str(proc.pid))
        (d / "exit_code").unlink(missing_ok=True)
        self._procs[launch.trial_id] = proc

    def state(self, trial_id: str) -> ChildState:
        proc = self._procs.get(trial_id)
        if proc is not None:
            code = proc.poll()
            if code is None:
                return ChildState("running")
            (self._dir(trial_id) / "exit_code").write_text(str(code))
            return _ended(code, self._dir(trial_id))
        d = self._dir(trial_id)
        if (d / "exit_code").exists():
            return _ended(int((d / "exit_code").read_text()), d)
        pid_file = d / "pid"
        if pid_file.exists() and _alive(int(pid_file.read_text()), str(d / "trial.json")):
            return ChildState("running")  # started by an earlier controller: re-attached
        return ChildState("missing")

    def cancel(self, trial_id: str) -> None:
        """SIGTERM, and SIGKILL if the child still runs ``grace_seconds`` later."""
        pid_file = self._dir(trial_id) / "pid"
        if self.state(trial_id).phase != "running" or not pid_file.exists():
            return
        pid = int(pid_file.read_text())
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + self.grace_seconds
        while self.state(trial_id).phase == "running":
            if time.monotonic() >= deadline:
                log.warning("trial %s: child %d still running %.0f s after SIGTERM; killing it",
                            trial_id, pid, self.grace_seconds)
                try:
                    os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                return
            time.sleep(0.05)

    def reap(self) -> None:
        """Collect every child of this backend that has exited (the ledger settles a pack by
        its MLflow runs and may never ask for its process again): no zombies pile up, and their
        CPU time counts in ``os.times()`` from then on."""
        for proc in self._procs.values():
            proc.poll()

    def close(self, timeout: float = 60.0) -> None:
        """Wait for children to exit: when a search ends, each has finished its run and is
        only shutting down. One still running after ``timeout`` is left alone (and logged)."""
        deadline = time.monotonic() + timeout
        for trial_id, proc in self._procs.items():
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("trial %s: child %d still running; leaving it", trial_id, proc.pid)


def _ended(code: int, d: Path) -> ChildState:
    if code == 0:
        return ChildState("succeeded", exit_code=0)
    if code in (int(ExitCode.INTERRUPTED), -signal.SIGTERM):  # stopped, not failed: goes again
        return ChildState("missing", reason="stopped by SIGTERM", exit_code=code,
                          cause=Cause.INTERRUPTED)
    tail = ""
    log_file = d / "log.txt"
    if log_file.exists():
        lines = log_file.read_text(errors="replace").strip().splitlines()
        tail = lines[-1][:300] if lines else ""
    return ChildState("failed", reason=tail or "child process failed", exit_code=code,
                      cause=exit_cause(code))


def _alive(pid: int, marker: str) -> bool:
    """Whether ``pid`` runs and is our child (its command line names its trial spec)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return True  # no /proc (macOS): trust the pid
    return marker in cmdline
