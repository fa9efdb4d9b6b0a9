"""Credentials in URIs never reach what is recorded or shown (orchestrator/redact.py), and never
reach a child Job as a plain value (orchestrator/backends/kubernetes.py): the pure parts."""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Iterator

import pytest

from orchestrator.adapters.retry import Backoff, retry
from orchestrator.backends.base import Launch
from orchestrator.backends.kubernetes import job_manifest, plain_credentials
from orchestrator.errors import ConfigError, TemporaryUnavailable
from orchestrator.log_setup import configure_logging
from orchestrator.redact import RedactingFilter, has_credentials, redact, redact_data
from orchestrator.spec import KubernetesBackendSpec

SECRET = "s3cr3t-Pa55"
URI = f"http://alice:{SECRET}@mlflow.example:5000/"


@pytest.mark.parametrize(("text", "clean"), [
    (URI, "http://***@mlflow.example:5000/"),
    (f"postgresql+psycopg2://mlflow:{SECRET}@db:5432/runs", "postgresql+psycopg2://***@db:5432/runs"),
    (f"https://token-only-{SECRET}@host/path?x=1", "https://***@host/path?x=1"),
    (f"GET failed for '{URI}api/2.0' (HTTPConnectionPool(host='mlflow.example'))",
     "GET failed for 'http://***@mlflow.example:5000/api/2.0' (HTTPConnectionPool(host='mlflow.example'))"),
    (f"two: {URI} and s3://k:{SECRET}@minio/b", "two: http://***@mlflow.example:5000/ and s3://***@minio/b"),
])
def test_the_user_information_of_every_uri_in_a_text_is_hidden(text: str, clean: str) -> None:
    assert redact(text) == clean
    assert SECRET not in redact(text)


@pytest.mark.parametrize("text", [
    "http://mlflow.example:5000/", "s3://bucket/key@v2", "mail alice@example.com",
    "sqlite:////data/mlflow.db", "an @ sign and a :// apart", "",
])
def test_text_without_credentials_is_left_as_it_is(text: str) -> None:
    assert redact(text) == text
    assert not has_credentials(text)


def test_a_uri_with_a_user_or_a_password_has_credentials() -> None:
    assert has_credentials(URI)
    assert has_credentials("http://alice@mlflow:5000")
    assert has_credentials(f"postgresql://u:{SECRET}@db/x")


def test_every_string_of_a_spec_is_redacted_and_the_rest_kept() -> None:
    spec = {"name": "s1", "tracking": {"uri": URI, "experiment": "e"}, "budget": {"trials": 3},
            "tolerations": [{"key": URI}], "screen": {"enabled": True}}
    clean = redact_data(spec)
    assert clean["tracking"] == {"uri": "http://***@mlflow.example:5000/", "experiment": "e"}
    assert clean["tolerations"] == [{"key": "http://***@mlflow.example:5000/"}]
    assert clean["budget"] == {"trials": 3} and clean["screen"] == {"enabled": True}
    assert spec["tracking"]["uri"] == URI  # the input is not changed


def test_retry_warnings_and_its_final_error_carry_no_password(caplog: pytest.LogCaptureFixture) -> None:
    """A retried call's warning is what the operator's log (and, through kopf, a search's Events)
    shows; its final error becomes the search's status message."""
    def down() -> None:
        raise ConnectionError(f"Max retries exceeded with url: {URI}api/2.0/mlflow/runs/get")

    with caplog.at_level(logging.WARNING), pytest.raises(TemporaryUnavailable) as failed:
        retry(down, f"MLflow get_run at {URI}", lambda e: True, Backoff(0.0, 1.0, 0.0, 3),
              sleep=lambda s: None)
    warnings = [r.getMessage() for r in caplog.records if r.name == "orchestrator.adapters.retry"]
    assert len(warnings) == 2
    assert all(SECRET not in w and "http://***@mlflow.example:5000/" in w for w in warnings)
    assert SECRET not in str(failed.value) and "failed 3 times" in str(failed.value)


def test_the_logging_filter_redacts_the_message_its_arguments_and_the_traceback() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("tests.redact.filter")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("tracking server %s not answering", URI)
        try:
            raise ValueError(f"cannot reach {URI}")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    out = stream.getvalue()
    assert SECRET not in out
    assert "tracking server http://***@mlflow.example:5000/ not answering" in out
    assert "ValueError: cannot reach http://***@mlflow.example:5000/" in out


@pytest.fixture
def fresh_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_the_programs_log_setup_redacts_every_line(fresh_logging: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """``configure_logging`` is what actsearch-ctl, the operator and actsearch-train use."""
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    configure_logging(0, replace=True)
    logging.getLogger("orchestrator.some.module").warning("using %s", URI)
    assert stream.getvalue().rstrip().endswith("using http://***@mlflow.example:5000/")


# --- child Jobs ---------------------------------------------------------------------------

def _launch(tracking_uri: str) -> Launch:
    return Launch("s1-t00000", "run-1", {"expression": "relu(x)"},
                  {"MLFLOW_RUN_ID": "run-1", "MLFLOW_TRACKING_URI": tracking_uri})


def test_a_job_is_never_built_with_a_password_in_a_plain_env_value() -> None:
    with pytest.raises(ConfigError) as refused:
        job_manifest(_launch(URI), "s1", "research", KubernetesBackendSpec())
    message = str(refused.value)
    assert SECRET not in message
    assert "MLFLOW_TRACKING_URI" in message and "backend.kubernetes.tracking_secret" in message
    assert "MLFLOW_TRACKING_USERNAME" in message and "MLFLOW_TRACKING_PASSWORD" in message


def test_plain_credentials_passes_an_environment_without_them() -> None:
    plain_credentials({"MLFLOW_TRACKING_URI": "http://mlflow:5000", "HOME": "/tmp"})


def test_children_get_their_credentials_from_the_named_secrets_only() -> None:
    settings = KubernetesBackendSpec(credentials_secret="datasets-readonly",
                                     tracking_secret="mlflow-auth")
    job = job_manifest(_launch("http://mlflow:5000"), "s1", "research", settings, instance="rel")
    pod = job["spec"]["template"]
    container = pod["spec"]["containers"][0]
    assert container["envFrom"] == [{"secretRef": {"name": "datasets-readonly"}},
                                    {"secretRef": {"name": "mlflow-auth"}}]
    assert not [e for e in container["env"] if "valueFrom" in e or has_credentials(e["value"])]
    assert job["metadata"]["labels"]["app.kubernetes.io/instance"] == "rel"
    assert pod["metadata"]["labels"]["app.kubernetes.io/instance"] == "rel"
    assert pod["spec"]["automountServiceAccountToken"] is False


def test_without_secrets_or_instance_a_child_gets_neither() -> None:
    job = job_manifest(_launch("http://mlflow:5000"), "s1", "research", KubernetesBackendSpec())
    assert "envFrom" not in job["spec"]["template"]["spec"]["containers"][0]
    assert "app.kubernetes.io/instance" not in job["metadata"]["labels"]


def test_a_printed_runs_url_carries_no_password() -> None:
    """``actsearch-ctl run`` and ``ui`` print where to browse the runs."""
    from orchestrator.cli.ui import runs_url

    url = runs_url(URI, "7")
    assert url.startswith("http://***@mlflow.example:5000/#/experiments/7/runs") and SECRET not in url
