"""Suite-wide settings: one torch thread (the suite shares 2 cores), GPU tests skipped without CUDA.

Session fixtures: one real S3-compatible server and one real MLflow server for all tests, started
on first use. Use ``mlflow_env`` in a test that talks to MLflow in-process (it sets the
environment for the test's duration) or pass ``mlflow_env`` (a dict) to a subprocess:
``env={**os.environ, **mlflow_env}``. ``s3_client`` is a boto3 client on the same server, for
looking at what landed in the bucket.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from tests.servers import S3_CREDENTIALS, Server, client_env, start_mlflow, start_s3

os.environ.setdefault("OMP_NUM_THREADS", "1")  # inherited by child processes the tests start
torch.set_num_threads(1)


BUCKET = "actsearch-test"


@pytest.fixture(scope="session")
def servers_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("servers")


@pytest.fixture(scope="session")
def s3_server(servers_dir: Path) -> Iterator[Server]:
    server = start_s3(servers_dir)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3_client(s3_server: Server):  # type: ignore[no-untyped-def]
    import boto3

    return boto3.client("s3", endpoint_url=s3_server.url, region_name=S3_CREDENTIALS["AWS_DEFAULT_REGION"],
                        aws_access_key_id=S3_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"])


@pytest.fixture(scope="session")
def s3_bucket(s3_client) -> str:  # type: ignore[no-untyped-def]
    """A bucket that exists on ``s3_server``; MLflow's artifacts live under ``mlartifacts/``."""
    s3_client.create_bucket(Bucket=BUCKET)
    return BUCKET


@pytest.fixture(scope="session")
def mlflow_server(servers_dir: Path, s3_server: Server, s3_bucket: str) -> Iterator[Server]:
    server = start_mlflow(servers_dir, s3_server, s3_bucket)
    yield server
    server.stop()


@pytest.fixture
def mlflow_env(mlflow_server: Server, s3_server: Server, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Client environment for both servers, applied to this test's process and returned for children."""
    env = client_env(mlflow_server, s3_server)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    return env


@pytest.fixture
def s3_env(s3_server: Server, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Client environment for the S3 server alone (AWS_ENDPOINT_URL + test credentials)."""
    env = {**S3_CREDENTIALS, "AWS_ENDPOINT_URL": s3_server.url}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
