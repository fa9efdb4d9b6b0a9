"""The S3 adapter: one client builder and one endpoint rule, for the controller's checkpoints
(``storage.py``) and the child's data (``trainer/s3.py``). The only module that imports boto3.

The endpoint is the first of these that is set:

1. the one named for the purpose: a spec's ``storage.endpoint_url``, the operator's
   ``--s3-endpoint``;
2. ``$MLFLOW_S3_ENDPOINT_URL``: what the operator passes to children and MLflow's own S3 client
   reads, so checkpoints, a child's data and its artifacts reach the same server;
3. ``$AWS_ENDPOINT_URL``;
4. none: boto3's own choice (AWS, or ``$AWS_ENDPOINT_URL_S3``).

Credentials come from boto3's usual chain (``AWS_ACCESS_KEY_ID``..., a profile, a role).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

ENDPOINT_ENV = ("MLFLOW_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL")
"""The environment variables of the endpoint rule, first one set wins."""


def endpoint_url(explicit: str | None = None,
                 environ: Mapping[str, str] | None = None) -> str | None:
    """The S3 endpoint by the module's rule: ``explicit``, else the first of ``ENDPOINT_ENV``
    that is set and not empty, else None."""
    if explicit:
        return explicit
    env = os.environ if environ is None else environ
    return next((env[k] for k in ENDPOINT_ENV if env.get(k)), None)


def make_client(endpoint: str | None = None, *, attempts: int | None = None,
                connect_timeout: float | None = None, read_timeout: float | None = None) -> Any:
    """An S3 client for ``endpoint_url(endpoint)``. ``attempts`` caps botocore's own retries (1:
    the caller retries, with its backoff and a log line); timeouts in seconds."""
    import boto3
    from botocore.config import Config

    settings: dict[str, Any] = {}
    if attempts is not None:
        settings["retries"] = {"mode": "standard", "max_attempts": attempts}
    if connect_timeout is not None:
        settings["connect_timeout"] = connect_timeout
    if read_timeout is not None:
        settings["read_timeout"] = read_timeout
    return boto3.client("s3", endpoint_url=endpoint_url(endpoint),
                        config=Config(**settings) if settings else None)


def is_transient(e: BaseException) -> bool:
    """No answer from the server (refused, closed, timed out): a retry may succeed."""
    import botocore.exceptions as bex

    return isinstance(e, (bex.EndpointConnectionError, bex.ConnectionClosedError,
                          bex.ReadTimeoutError, bex.ConnectTimeoutError))


def error_code(e: BaseException) -> str | None:
    """The code of the server's error answer (``NoSuchKey``, ``AccessDenied``, ``404``...), or
    None when ``e`` is not one."""
    from botocore.exceptions import ClientError

    if not isinstance(e, ClientError):
        return None
    return str(e.response.get("Error", {}).get("Code", ""))


def is_client_failure(e: BaseException) -> bool:
    """Whether ``e`` is any failure of the S3 client (an error answer, a connection or
    configuration problem), as opposed to a bug."""
    from botocore.exceptions import BotoCoreError, ClientError

    return isinstance(e, (BotoCoreError, ClientError))
