"""Fetch one object from S3 (or an S3-compatible server) into a local cache, checksum verified.

The client comes from ``orchestrator.adapters.s3``, the project's one S3 adapter: the endpoint is
``$MLFLOW_S3_ENDPOINT_URL`` (what the operator passes to a child's Job), else
``$AWS_ENDPOINT_URL``; credentials from boto3's usual chain. The cached copy lives at
``<cache_dir>/s3/<bucket>/<key>``, and only there: a bucket or key that would resolve outside
that folder (``..`` segments, a key starting with ``/``) is refused before anything is written.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from orchestrator.adapters.s3 import error_code, is_client_failure, make_client
from orchestrator.echo import clip_repr
from orchestrator.trainer.errors import BadInput, Infrastructure

log = logging.getLogger(__name__)

_PERMANENT = {"NoSuchKey", "NoSuchBucket", "404", "AccessDenied", "403", "InvalidBucketName"}


def split_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> (bucket, key)."""
    rest = uri.removeprefix("s3://")
    bucket, _, key = rest.partition("/")
    if not uri.startswith("s3://") or not bucket or not key:
        raise BadInput(f"data_source {uri!r} is not an S3 object URI of the form s3://bucket/key")
    return bucket, key


def cache_path(cache_dir: Path, bucket: str, key: str, uri: str) -> Path:
    """Where the cached copy of ``s3://bucket/key`` goes; BadInput when that is not inside
    ``<cache_dir>/s3`` (an S3 key may hold ``../`` or start with ``/``: joined as a path, it
    would read or overwrite any file the child may write)."""
    root = (cache_dir / "s3").resolve()
    folder = (root / bucket).resolve()
    local = (folder / key).resolve()
    if folder.parent != root or not local.is_relative_to(folder) or local == folder:
        raise BadInput(f"data_source {clip_repr(uri)}: its bucket and key must name a file inside "
                       "the download cache; '..' segments and a key starting with '/' are refused")
    return local


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify(path: Path, expected: str | None, what: str) -> str:
    """The file's SHA-256; raises BadInput naming both digests when it differs from ``expected``."""
    actual = sha256_file(path)
    if expected is not None and actual != expected:
        raise BadInput(
            f"data_sha256 mismatch for {what}: expected {expected}, got {actual}; "
            "the data is not what the configuration names, so the child does not train on it"
        )
    return actual


def fetch(uri: str, cache_dir: Path, expected_sha256: str | None = None) -> Path:
    """Download ``uri`` once into ``cache_dir`` and return the local path.

    A cached copy is reused only if it matches ``expected_sha256`` (when given); a fresh download
    that does not match is deleted and fails with BadInput.
    """
    bucket, key = split_uri(uri)
    local = cache_path(cache_dir, bucket, key, uri)
    if local.is_file():
        try:
            verify(local, expected_sha256, uri)
            log.info("using cached %s at %s", uri, local)
            return local
        except BadInput:
            log.warning("cached copy of %s fails its checksum; downloading again", uri)
            local.unlink()
    local.parent.mkdir(parents=True, exist_ok=True)
    partial = local.with_name(local.name + ".partial")
    _download(bucket, key, partial, uri)
    try:
        verify(partial, expected_sha256, uri)
    except BadInput:
        partial.unlink()
        raise
    partial.replace(local)
    log.info("downloaded %s to %s", uri, local)
    return local


def _download(bucket: str, key: str, dest: Path, uri: str) -> None:
    try:
        make_client().download_file(bucket, key, str(dest))
    except Exception as e:
        code = error_code(e)
        if code is not None:
            if code in _PERMANENT:
                raise BadInput(f"data_source {uri} cannot be read ({code}); check the URI and "
                               "access") from e
            raise Infrastructure(f"downloading {uri} failed ({code or e}); a retry may succeed") from e
        if is_client_failure(e) or isinstance(e, OSError):
            raise Infrastructure(f"downloading {uri} failed: {e}; a retry may succeed") from e
        raise
