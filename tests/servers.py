"""Real servers on 127.0.0.1 for integration tests: an S3-compatible server (moto) and MLflow.

Each server runs in its own process group on a free port, logs to a file, is polled for readiness
against a deadline (a failure says which server, why, and the tail of its log), and is stopped by
its process-group id. The controller's tests reuse these through the fixtures in
``tests/integration/conftest.py``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

HOST = "127.0.0.1"
S3_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",  # never probe the instance-metadata address
}
FAST_FAILING_MLFLOW_CLIENT = {
    # a dead server otherwise stalls each client call for minutes of retries
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _bin(name: str) -> str:
    """A console script of the running interpreter's environment (no reliance on PATH)."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


@dataclass
class Server:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    extra: dict[str, str] = field(default_factory=dict)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, grace_s: float = 5.0) -> None:
        """SIGTERM the whole process group (servers fork workers), SIGKILL after ``grace_s``."""
        if self.process.poll() is not None:
            return
        pgid = self.process.pid  # started with start_new_session: its pid is the group id
        os.killpg(pgid, signal.SIGTERM)
        try:
            self.process.wait(grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(pgid, signal.SIGKILL)
            self.process.wait(grace_s)


def start(name: str, argv: list[str], url: str, ready_path: str, expect: str | None,
          log_dir: Path, env: dict[str, str] | None = None, deadline_s: float = 60.0) -> Server:
    """Start ``argv`` and wait until GET ``url + ready_path`` answers 200 (and ``expect`` in the body)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, **(env or {})})
    server = Server(name, url, proc, log_path)
    t_end = time.monotonic() + deadline_s
    last = "no answer yet"
    while time.monotonic() < t_end:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode} before it was ready; "
                               f"its log ends:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(url + ready_path, timeout=2) as r:
                body = r.read().decode(errors="replace")
                if r.status == 200 and (expect is None or expect in body):
                    return server
                last = f"HTTP {r.status}: {body[:200]}"
        except (urllib.error.URLError, OSError) as e:
            last = str(e)
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"{name} was not ready at {url}{ready_path} within {deadline_s:.0f} s "
                       f"(last: {last}); its log ends:\n{server.log_tail()}")


def start_s3(log_dir: Path) -> Server:
    """moto's S3-compatible server, in memory; accepts any credentials."""
    port = free_port()
    url = f"http://{HOST}:{port}"
    return start("moto", [_bin("moto_server"), "-H", HOST, "-p", str(port)], url, "/", None,
                 log_dir, deadline_s=30)


def start_mlflow(log_dir: Path, s3: Server, bucket: str, prefix: str = "mlartifacts") -> Server:
    """An MLflow tracking server (SQLite) proxying artifacts to ``s3://bucket/prefix`` on ``s3``."""
    port = free_port()
    url = f"http://{HOST}:{port}"
    env = {
        **S3_CREDENTIALS,
        "MLFLOW_S3_ENDPOINT_URL": s3.url,
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",  # otherwise ~10 extra processes, 2.4 GB
    }
    argv = [
        _bin("mlflow"), "server", "--host", HOST, "--port", str(port), "--workers", "1",
        "--backend-store-uri", f"sqlite:///{log_dir / 'mlflow.db'}",
        "--artifacts-destination", f"s3://{bucket}/{prefix}",
    ]
    server = start("mlflow", argv, url, "/health", "OK", log_dir, env=env, deadline_s=90)
    server.extra = {"bucket": bucket, "prefix": prefix}
    return server


def client_env(mlflow: Server, s3: Server) -> dict[str, str]:
    """Environment for a process that logs to ``mlflow`` and reads ``s3`` (a child, a controller)."""
    return {
        **S3_CREDENTIALS,
        **FAST_FAILING_MLFLOW_CLIENT,
        "MLFLOW_TRACKING_URI": mlflow.url,
        "MLFLOW_S3_ENDPOINT_URL": s3.url,
    }


class OutageProxy:
    """A TCP forwarder in front of a real server whose listening socket can be closed for a
    while: clients then get "connection refused", as when a server or its network is down."""

    def __init__(self, target_url: str) -> None:
        import threading
        from urllib.parse import urlparse

        parsed = urlparse(target_url)
        self._target = (parsed.hostname or HOST, parsed.port or 80)
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self._threading = threading
        self._listener: socket.socket | None = None
        self._open()

    def _open(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((HOST, self.port))
        listener.listen(16)
        self._listener = listener
        self._threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # closed by down()
                return
            upstream = socket.create_connection(self._target)
            for a, b in ((client, upstream), (upstream, client)):
                self._threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def down_for(self, seconds: float) -> None:
        """Refuse connections now; accept them again after ``seconds`` (in the background)."""
        self.close()
        timer = self._threading.Timer(seconds, self._open)
        timer.daemon = True
        timer.start()
        self.timer = timer

    def close(self) -> None:
        if self._listener is not None:
            try:  # wakes the thread blocked in accept(); close() alone would not on Linux
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._listener.close()
            self._listener = None
