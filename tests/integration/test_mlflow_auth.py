"""MLflow's basic authentication, as the chart runs it (mlflow.auth.enabled): a real `mlflow
server` started on 127.0.0.1 by the chart's own start script (helm/actsearch/files/mlflow-server.sh,
which tests/chart/test_credentials.py checks the chart embeds), with its secrets in the
environment only. Our tracking adapter works with credentials from MLFLOW_TRACKING_USERNAME /
MLFLOW_TRACKING_PASSWORD, a request without them is refused, artifacts go through the server's
proxy with no S3 key on the client, no secret is on any of the server's command lines, and a
``user:pass@`` URI leaves no password in the parent run's params or spec."""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.adapters.tracking import MlflowTracker
from orchestrator.errors import ConfigError
from tests.servers import FAST_FAILING_MLFLOW_CLIENT, HOST, S3_CREDENTIALS, Server, free_port, start

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
START_SCRIPT = ROOT / "helm" / "actsearch" / "files" / "mlflow-server.sh"
ADMIN_PASSWORD = "adm1n-Secret-4d7e"
DB_MARKER = "store-marker-91c3"  # in the backend store URI: it stands for a database password


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory, s3_server: Server, s3_bucket: str
                ) -> Iterator[Server]:
    """`sh -c <the chart's script> mlflow-server <the chart's flags>`, with the environment the
    chart gives the container (secrets as env values, as the kubelet resolves secretKeyRefs)."""
    workdir = tmp_path_factory.mktemp("mlflow-auth")
    port = free_port()
    env = {
        **S3_CREDENTIALS,
        "MLFLOW_S3_ENDPOINT_URL": s3_server.url,
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "MLFLOW_BACKEND_STORE_URI": f"sqlite:///{workdir / DB_MARKER}.db",
        "ACTSEARCH_MLFLOW_AUTH": "basic",
        "ACTSEARCH_MLFLOW_DEFAULT_PERMISSION": "NO_PERMISSIONS",
        "MLFLOW_AUTH_ADMIN_USERNAME": "admin",
        "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "MLFLOW_FLASK_SERVER_SECRET_KEY": "flask-key-for-the-test",
        "TMPDIR": str(workdir),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    argv = ["sh", "-c", START_SCRIPT.read_text(), "mlflow-server", f"--host={HOST}",
            f"--port={port}", "--workers=1", "--serve-artifacts",
            f"--artifacts-destination=s3://{s3_bucket}/auth-artifacts"]
    server = start("mlflow-basic-auth", argv, f"http://{HOST}:{port}", "/health", "OK", workdir,
                   env=env, deadline_s=120)
    yield server
    server.stop()


@pytest.fixture
def no_ambient_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """A client with neither S3 keys nor MLflow credentials unless a test sets them."""
    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN",
                 "MLFLOW_TRACKING_URI", "MLFLOW_S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID",
                 "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    for k, v in FAST_FAILING_MLFLOW_CLIENT.items():
        monkeypatch.setenv(k, v)


def test_a_request_without_credentials_is_refused(auth_server: Server) -> None:
    url = f"{auth_server.url}/api/2.0/mlflow/experiments/get-by-name?experiment_name=x"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url, timeout=10)
    refused.value.close()
    assert refused.value.code == 401


def test_the_tracker_without_credentials_fails_with_what_to_set(
        auth_server: Server, no_ambient_credentials: None) -> None:
    with pytest.raises(ConfigError, match=r"refused access.*MLFLOW_TRACKING_USERNAME"):
        MlflowTracker(auth_server.url, "auth-refused", connect_timeout=20)


def test_the_tracker_works_with_credentials_from_the_environment_and_artifacts_need_no_s3_key(
        auth_server: Server, no_ambient_credentials: None, monkeypatch: pytest.MonkeyPatch,
        s3_client: object, s3_bucket: str) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN_PASSWORD)
    tracker = MlflowTracker(auth_server.url, "auth-env", connect_timeout=20)
    parent = tracker.start_search("auth-env", {"name": "auth-env", "budget": {"trials": 1}})
    run_id = tracker.create_trial_run("auth-env", parent, "auth-env-t00000", {})
    tracker.record_outcome(run_id, 0.75, None)
    tracker.log_text(parent, "through the proxy", "note.txt")  # no AWS key in this process
    assert tracker.trial_runs("auth-env")["auth-env-t00000"].reward == 0.75
    keys = [o["Key"] for o in s3_client.list_objects_v2(  # type: ignore[attr-defined]
        Bucket=s3_bucket, Prefix="auth-artifacts/").get("Contents", [])]
    assert any(k.endswith(f"{parent}/artifacts/note.txt") for k in keys)


def test_a_password_in_the_tracking_uri_reaches_no_param_and_no_logged_spec(
        auth_server: Server, no_ambient_credentials: None) -> None:
    uri = auth_server.url.replace("http://", f"http://admin:{ADMIN_PASSWORD}@")
    spec = {"name": "auth-uri", "tracking": {"uri": uri, "experiment": "auth-uri"}}
    tracker = MlflowTracker(uri, "auth-uri", connect_timeout=20)  # the URI's credentials work
    parent = tracker.start_search("auth-uri", spec)
    run = tracker.client.get_run(parent)
    assert run.data.params["tracking.uri"] == auth_server.url.replace("http://", "http://***@")
    logged = tracker.client.download_artifacts(parent, "search_spec.json")
    text = Path(logged).read_text()
    assert ADMIN_PASSWORD not in text and ADMIN_PASSWORD not in json.dumps(run.data.params)
    assert json.loads(text)["tracking"]["uri"] == run.data.params["tracking.uri"]


def test_no_secret_is_on_the_command_line_of_any_server_process(auth_server: Server) -> None:
    """/proc/<pid>/cmdline is readable by every user of the node: the admin password and the
    backend store URI stay in the environment of mlflow and its workers."""
    group = auth_server.process.pid
    cmdlines = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) != group:
                continue
            cmdlines.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except (OSError, ProcessLookupError):
            continue
    assert any("mlflow" in c for c in cmdlines), cmdlines  # the server and its workers
    assert not [c for c in cmdlines if ADMIN_PASSWORD in c or DB_MARKER in c]
