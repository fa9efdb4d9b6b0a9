"""One S3 endpoint rule for the controller's checkpoints and the child's data
(orchestrator.adapters.s3), and a checkpoint store that does not need torch to be imported."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from orchestrator.adapters import s3
from orchestrator.adapters.storage import S3Store, dump_state, load_state

MINIO = "http://minio.test:9000"
OTHER = "http://other.test:9000"


@pytest.mark.parametrize(("explicit", "environ", "expected"), [
    (MINIO, {"MLFLOW_S3_ENDPOINT_URL": OTHER, "AWS_ENDPOINT_URL": OTHER}, MINIO),
    (None, {"MLFLOW_S3_ENDPOINT_URL": MINIO, "AWS_ENDPOINT_URL": OTHER}, MINIO),
    (None, {"AWS_ENDPOINT_URL": MINIO}, MINIO),
    (None, {"MLFLOW_S3_ENDPOINT_URL": "", "AWS_ENDPOINT_URL": MINIO}, MINIO),
    (None, {}, None),
])
def test_the_endpoint_is_the_named_one_then_mlflows_variable_then_aws(
        explicit: str | None, environ: dict[str, str], expected: str | None) -> None:
    assert s3.endpoint_url(explicit, environ) == expected


def test_the_checkpoint_store_and_the_childs_client_follow_the_same_rule(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", MINIO)
    monkeypatch.setenv("AWS_ENDPOINT_URL", OTHER)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    assert S3Store("bucket").client.meta.endpoint_url == MINIO
    assert s3.make_client().meta.endpoint_url == MINIO
    assert S3Store("bucket", endpoint_url=OTHER).client.meta.endpoint_url == OTHER


def test_a_checkpoint_store_is_imported_without_torch() -> None:
    code = ("import sys, orchestrator.adapters.storage, orchestrator.adapters.s3; "
            "sys.exit(1 if 'torch' in sys.modules or 'boto3' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_checkpoints_stay_torch_save_files_readable_both_ways() -> None:
    import torch

    state = {"step": 3, "names": ["a", "b"], "weights": torch.arange(4.0)}
    written_before = io.BytesIO()
    torch.save(state, written_before)  # how checkpoints were always written
    loaded = load_state(written_before.getvalue())
    assert loaded["step"] == 3 and loaded["names"] == ["a", "b"]
    assert torch.equal(loaded["weights"], state["weights"])
    again = torch.load(io.BytesIO(dump_state(state)), weights_only=True)
    assert torch.equal(again["weights"], state["weights"]) and again["names"] == ["a", "b"]
