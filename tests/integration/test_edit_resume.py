"""`actsearch-ctl run --resume` with an edited spec, as a user runs it: the real CLI in a
subprocess, real children, the embedded MLflow (SQLite) and checkpoints of a local search."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from orchestrator.adapters.storage import LocalStore, load_state
from orchestrator.loop.checkpoint import read

SPEC: dict[str, Any] = {
    "name": "edited",
    "space": {"units": 1, "unary": ["id", "relu", "tanh", "sin"], "binary": ["add", "max"]},
    "strategy": {"name": "random"},
    "budget": {"trials": 2},
    "parallelism": 2,
    "generation": 2,
    "child": {"model": "mlp", "dataset": "digits", "steps": 10, "batch_size": 32,
              "crop_padding": 0, "flip": False, "device": "cpu", "log_every": 5},
    "backend": {"kind": "local"},
}


def ctl_run(tmp_path: Path, spec: dict[str, Any], *extra: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(spec))
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "run", str(path), "--workdir",
         str(tmp_path / "work"), "--quiet", *extra],
        capture_output=True, text=True, timeout=300, cwd=Path(__file__).parents[2])


def stored(tmp_path: Path) -> dict[str, Any]:
    """The checkpoint's spec and every trial, read as a resuming controller reads them (the
    checkpoint and the blocks of done trials it names, ``orchestrator.loop.checkpoint``)."""
    (ckpt,) = (tmp_path / "work").rglob("controller.pt")
    saved = read(LocalStore(ckpt.parent), "edit")
    assert saved is not None
    return {**load_state(ckpt.read_bytes()), "trials": [t.as_dict() for t in saved.trials]}


def test_a_resumed_local_search_takes_a_raised_budget_and_refuses_a_new_child_config(
        tmp_path: Path) -> None:
    first = ctl_run(tmp_path, SPEC)
    assert first.returncode == 0, first.stderr[-3000:]
    assert stored(tmp_path)["spec"]["budget"]["trials"] == 2

    more = ctl_run(tmp_path, {**SPEC, "budget": {"trials": 4}}, "--resume")
    assert more.returncode == 0, more.stderr[-3000:]
    state = stored(tmp_path)
    assert state["spec"]["budget"]["trials"] == 4
    done = [t for t in state["trials"] if t["source"] == "trained" and t["state"] == "done"]
    assert len(done) == len({t["trial_id"] for t in done}) == 4

    refused = ctl_run(tmp_path, {**SPEC, "budget": {"trials": 6},
                                 "child": {**SPEC["child"], "steps": 20}}, "--resume")
    assert refused.returncode != 0
    assert "child.steps 10 → 20" in refused.stderr and "Traceback" not in refused.stderr
    assert "edit applied on resume: budget.trials 2 → 4" in more.stdout
    assert stored(tmp_path) == state  # nothing written
