"""The embedded default: one MLflow store per workdir, an old search's own store kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.benchmark.spec import BenchmarkSpec
from orchestrator.cli.ui import runs_url, ui_command
from orchestrator.embedded import layout
from orchestrator.spec import SearchSpec


def test_searches_and_benchmarks_share_one_store_per_workdir(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    search = layout(SearchSpec.model_validate({"name": "quickstart"}), tmp_path)
    bench = layout(BenchmarkSpec.model_validate({"name": "bench", "activations": ["ReLU"], "models": ["mlp"], "datasets": ["digits"]}),
                   tmp_path)
    assert search.tracking_uri == bench.tracking_uri == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert search.artifact_location == (tmp_path / "mlartifacts").as_uri()
    assert search.workdir == tmp_path / "quickstart"  # checkpoints and children stay apart
    assert search.storage_uri == str(tmp_path / "quickstart" / "checkpoints")


def test_a_search_started_with_its_own_store_keeps_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "mlflow.db").write_bytes(b"")
    old = layout(SearchSpec.model_validate({"name": "old"}), tmp_path)
    assert old.tracking_uri == f"sqlite:///{tmp_path / 'old' / 'mlflow.db'}"
    assert old.artifact_location == (tmp_path / "old" / "mlartifacts").as_uri()


def test_the_ui_url_opens_the_runs_table_and_the_server_suits_a_small_machine() -> None:
    url = runs_url("http://127.0.0.1:5000/", "3")
    assert url.startswith("http://127.0.0.1:5000/#/experiments/3/runs?workflowType=machine_learning")
    assert "orderByKey=metrics.%60val_accuracy%60&orderByAsc=false" in url
    cmd = ui_command("sqlite:////w/mlflow.db", "127.0.0.1", 5001)
    assert cmd[cmd.index("--workers") + 1] == "1" and cmd[cmd.index("--port") + 1] == "5001"
