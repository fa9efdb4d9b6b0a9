"""Start a child the way a backend does: a separate process, configuration by options and env."""

from __future__ import annotations

import os
import subprocess
import sys

QUICK = ["--model", "mlp", "--dataset", "digits", "--batch-size", "64", "--crop-padding", "0",
         "--no-flip", "--device", "cpu"]


def child_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "orchestrator.trainer", *args]


def child_env(extra: dict[str, str], cache_dir: str) -> dict[str, str]:
    env = {**os.environ, **extra, "ACTSEARCH_CACHE_DIR": cache_dir, "OMP_NUM_THREADS": "1"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (os.getcwd(), os.environ.get("PYTHONPATH", "")) if p)
    return env


def run_child(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(child_argv(*args), env=env, capture_output=True, text=True, timeout=timeout)
