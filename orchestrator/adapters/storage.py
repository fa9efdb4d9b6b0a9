"""Where the controller keeps its checkpoints: a local directory or an S3 bucket (its client
from ``orchestrator.adapters.s3``, the endpoint by that module's rule).

Objects are small (strategy state + trial ledger) and written whole: locally through a
temporary file and ``os.replace``, on S3 by one PUT (S3 replaces an object atomically), so a
reader sees the old checkpoint or the new one, never half of one. The checkpoint format is
``torch.save``'s; torch is imported only to write or read one, so the controller's side can
import this module without it.
"""

from __future__ import annotations

import io
import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from orchestrator.adapters import s3
from orchestrator.adapters.retry import Backoff, retry
from orchestrator.echo import clip
from orchestrator.errors import ConfigError, ServiceRefused

log = logging.getLogger(__name__)
DEFAULT_BACKOFF = Backoff()


class Store(Protocol):
    """A flat key -> bytes store."""

    def put(self, key: str, data: bytes) -> None: ...

    def get(self, key: str) -> bytes | None: ...

    def describe(self, key: str) -> str: ...


class LocalStore:
    """Files under a root directory (the embedded default)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise ConfigError(f"storage key {key!r} escapes the storage root {self.root}")
        return path

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes | None:
        path = self._path(key)
        return path.read_bytes() if path.exists() else None

    def describe(self, key: str) -> str:
        return str(self._path(key))


class S3Store:
    """Objects under ``s3://bucket/prefix/``; transient errors are retried with backoff."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        endpoint_url: str | None = None,
        client: Any = None,
        backoff: Backoff = DEFAULT_BACKOFF,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        # one attempt per call inside botocore: retries happen here, with backoff and a log line
        self.client = client or s3.make_client(endpoint_url, attempts=1, connect_timeout=10,
                                               read_timeout=60)
        self.backoff = backoff

    @classmethod
    def from_uri(cls, uri: str, endpoint_url: str | None = None, **kw: Any) -> S3Store:
        parsed = urlparse(uri)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise ConfigError(f"storage.uri must look like s3://bucket/prefix; got {uri!r}")
        return cls(parsed.netloc, parsed.path, endpoint_url=endpoint_url, **kw)

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, key: str, data: bytes) -> None:
        with self._refusals("put", key):
            retry(
                lambda: self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data),
                f"S3 put {self.describe(key)}", s3.is_transient, self.backoff,
            )

    def get(self, key: str) -> bytes | None:
        def fetch() -> bytes | None:
            try:
                obj = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
            except Exception as e:
                if s3.error_code(e) in ("NoSuchKey", "404"):
                    return None
                raise
            return obj["Body"].read()

        with self._refusals("get", key):
            return retry(fetch, f"S3 get {self.describe(key)}", s3.is_transient, self.backoff)

    @contextmanager
    def _refusals(self, op: str, key: str) -> Iterator[None]:
        """The server's refusals (``NoSuchBucket``, ``AccessDenied``, bad credentials) and a
        client that cannot be used (no credentials, a malformed endpoint) as one ServiceRefused
        naming the object and the code: retrying at once cannot fix them."""
        try:
            yield
        except Exception as e:
            if s3.is_transient(e) or not s3.is_client_failure(e):
                raise
            code = s3.error_code(e)
            hint = {"NoSuchBucket": "the bucket does not exist: create it or fix storage.uri",
                    "AccessDenied": "the credentials may not use it",
                    "InvalidAccessKeyId": "unknown access key",
                    "SignatureDoesNotMatch": "wrong secret key"}.get(code or "", "")
            raise ServiceRefused(
                f"S3 {op} {self.describe(key)} refused: {code or type(e).__name__}"
                f"{': ' + hint if hint else ''} ({clip(str(e), 200)})", "StorageRefused") from e

    def describe(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"


def open_store(uri: str, endpoint_url: str | None = None) -> Store:
    """``s3://bucket/prefix`` or a local directory path (``file://`` accepted)."""
    if uri.startswith("s3://"):
        return S3Store.from_uri(uri, endpoint_url=endpoint_url)
    return LocalStore(uri.removeprefix("file://"))


def dump_state(state: dict[str, Any]) -> bytes:
    """Serialise a checkpoint (tensors, numbers, strings, lists, dicts) with torch.save."""
    import torch

    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def load_state(data: bytes) -> dict[str, Any]:
    """Inverse of ``dump_state``; ``weights_only`` refuses arbitrary pickled objects."""
    import torch

    return torch.load(io.BytesIO(data), weights_only=True)
