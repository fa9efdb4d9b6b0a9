"""A tracking URI that is not there, not MLflow or not usable ends a command with one line, soon.

Real HTTP throughout: a stdlib web server on 127.0.0.1 plays the wrong server (an HTML page, a
401), and a port nothing listens on plays the unreachable one (the connection is refused by the
kernel). The default wait is checked with a simulated clock, so no test waits 60 s.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.adapters.tracking import (
    DEFAULT_TRACKING_TIMEOUT,
    TRACKING_TIMEOUT_ENV,
    MlflowTracker,
    check_server,
    tracking_timeout,
)
from orchestrator.cli import main
from orchestrator.errors import ConfigError, ServiceRefused, TemporaryUnavailable
from tests.servers import free_port


def _web_server(status: int, body: bytes, content_type: str) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def html_site() -> Iterator[str]:
    yield from _web_server(200, b"<html><body>welcome</body></html>", "text/html")


@pytest.fixture
def not_found_site() -> Iterator[str]:
    yield from _web_server(404, b"<html>nothing here</html>", "text/html")


@pytest.fixture
def locked_site() -> Iterator[str]:
    yield from _web_server(401, b'{"error_code": "UNAUTHENTICATED"}', "application/json")


def test_a_web_server_that_is_not_mlflow_is_a_config_error_naming_the_uri(html_site: str,
                                                                         not_found_site: str) -> None:
    for url, status in ((html_site, 200), (not_found_site, 404)):
        with pytest.raises(ConfigError) as info:
            MlflowTracker(url, "e", connect_timeout=5)
        assert str(info.value) == (
            f"{url} does not answer as an MLflow tracking server (GET "
            f"/api/2.0/mlflow/experiments/get-by-name: HTTP {status}, text/html); check the tracking URI")
        assert isinstance(info.value, ServiceRefused) and info.value.reason == "NotMlflow"


def test_a_server_that_refuses_access_says_which_credentials_to_set(locked_site: str) -> None:
    with pytest.raises(ServiceRefused, match="refused access \\(HTTP 401\\): set MLFLOW_TRACKING_USERNAME") as info:
        MlflowTracker(locked_site, "e", connect_timeout=5)
    assert info.value.reason == "TrackingRefused"


def test_an_unreachable_server_is_given_up_after_the_connect_timeout() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there: refused at once
    started = time.monotonic()
    with pytest.raises(TemporaryUnavailable) as info:
        MlflowTracker(url, "e", connect_timeout=1.5)
    assert time.monotonic() - started < 30  # MLflow's own retries alone took minutes per call
    message = str(info.value)
    assert message.startswith(f"MLflow tracking server {url} did not answer within 1.5 s")
    assert TRACKING_TIMEOUT_ENV in message and "\n" not in message


def test_by_default_an_unreachable_server_is_waited_for_60_seconds_at_most() -> None:
    from mlflow.tracking import MlflowClient

    url = f"http://127.0.0.1:{free_port()}"
    now = [0.0]
    waits: list[float] = []

    def sleep(s: float) -> None:
        waits.append(s)
        now[0] += s

    with pytest.raises(TemporaryUnavailable, match="did not answer within 60 s"):
        check_server(MlflowClient(url), url, "e", tracking_timeout({}), clock=lambda: now[0], sleep=sleep)
    assert DEFAULT_TRACKING_TIMEOUT == 60
    assert 30 < sum(waits) <= 60 and len(waits) > 3  # retried with backoff, within the limit


def test_the_wait_is_set_by_the_environment_and_a_bad_value_is_refused() -> None:
    assert tracking_timeout({TRACKING_TIMEOUT_ENV: "5"}) == 5.0
    for bad in ("0", "-1", "soon", "inf", "nan"):
        with pytest.raises(ConfigError, match=f"\\${TRACKING_TIMEOUT_ENV} must be a positive number"):
            tracking_timeout({TRACKING_TIMEOUT_ENV: bad})


def test_a_uri_mlflow_cannot_use_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="tracking URI 'foo://bar' cannot be used"):
        MlflowTracker("foo://bar", "e")


def _spec(tmp_path: Path, tracking: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(f"name: s\nbudget: {{trials: 1}}\ntracking: {{uri: '{tracking}'}}\n"
                    f"backend: {{local: {{workdir: '{tmp_path / 'work'}'}}}}\n")
    return path


def test_run_against_an_unreachable_server_ends_with_one_line_and_exit_1(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TRACKING_TIMEOUT_ENV, "2")
    url = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    result = CliRunner().invoke(main, ["run", str(_spec(tmp_path, url)), "--quiet"],
                                catch_exceptions=False)
    assert time.monotonic() - started < 30
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: MLflow tracking server {url} did not answer within 2 s")
    assert result.output.count("\n") == 1


def test_run_against_a_server_that_is_not_mlflow_ends_with_one_line_and_exit_1(
        tmp_path: Path, html_site: str) -> None:
    result = CliRunner().invoke(main, ["run", str(_spec(tmp_path, html_site)), "--quiet"],
                                catch_exceptions=False)
    assert result.exit_code == 1
    assert "does not answer as an MLflow tracking server" in result.output
    assert result.output.count("\n") == 1
