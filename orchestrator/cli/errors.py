"""How an ``actsearch-ctl`` command ends when something it expected goes wrong.

Exit codes, the same for every command:

- 0: done.
- 1 (``EXPECTED_FAILURE``): an expected failure, the project's own error (``ActsearchError``: a
  bad spec or option, the Kubernetes API server's refusal, an outside system unreachable after
  its retries or, for an MLflow server at start, after ``$ACTSEARCH_TRACKING_TIMEOUT`` seconds).
  One ``Error: <message>`` on stderr, no traceback: the message says what to do.
- 2 (``USAGE_ERROR``): click's usage errors (an unknown option, a bad value for a parameter, an
  expression argument that does not parse).

Anything else is a bug and keeps its traceback (and Python's exit code, also 1); the table is in
README.md ("Bad input and exit codes") and tests/unit/cli/test_fuzz.py holds every command it
fuzzes to these codes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import click

from orchestrator.errors import ActsearchError

F = TypeVar("F", bound=Callable[..., Any])

EXPECTED_FAILURE = 1
USAGE_ERROR = 2


class ExpectedFailure(click.ClickException):
    """An ``ActsearchError`` as click shows it: ``Error: <message>``, exit code 1."""

    exit_code = EXPECTED_FAILURE


def expected_errors(f: F) -> F:
    """Decorate a command so that the project's errors end it with one line and exit code 1."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return f(*args, **kwargs)
        except ActsearchError as e:
            raise ExpectedFailure(str(e)) from e

    return wrapper  # type: ignore[return-value]
