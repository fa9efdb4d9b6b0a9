"""Credentials in URIs, stripped from whatever is recorded or shown.

A tracking URI may carry a password (``http://user:pass@mlflow:5000``, ``postgresql://u:p@db/x``).
Written as is, it would land in the parent run's params and ``search_spec.json`` (readable by
everyone who can read the experiment), in retry warnings, and through them in a search's status
and its Events (readable by everyone who can list searches in the namespace). Everything the
project records about a URI goes through ``redact`` first; the URI itself is used unredacted
only to connect.

Pure functions: no I/O, importable from anywhere (the space and the contract aside, which need
none of this).
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import urlsplit

HIDDEN = "***"
"""What stands in for the user information of a URI."""

_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^\s/?#@'\"<>]+)@")
"""``scheme://userinfo@``: everything between ``://`` and the first ``@`` before the host's
path, query or fragment (and before any white space or quote, so a URI inside a sentence or a
repr is cut where it ends)."""


def redact(text: str) -> str:
    """``text`` with the user information of every URI in it (``user:password@``, or a token
    alone before ``@``) replaced by ``***@``; text without such a URI is returned unchanged."""
    if "@" not in text:
        return text
    return _USERINFO.sub(lambda m: f"{m['scheme']}{HIDDEN}@", text)


def has_credentials(uri: str) -> bool:
    """Whether ``uri`` carries user information (``scheme://user[:password]@host``)."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return redact(uri) != uri
    return bool(parts.username or parts.password) or redact(uri) != uri


def redact_data(value: Any) -> Any:
    """``value`` (JSON-like: mappings, lists, strings) with every string in it redacted: the
    spec logged to MLflow."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_data(v) for v in value]
    return value


class RedactingFilter(logging.Filter):
    """A logging filter that redacts each record's message (its arguments merged in) and its
    exception text: on a handler, nothing it writes carries a URI's credentials; on a logger
    (kopf's ``kopf.objects``, which posts records as Kubernetes Events), neither do they."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True
