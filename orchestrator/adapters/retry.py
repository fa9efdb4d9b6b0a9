"""Retry with exponential backoff for calls to outside systems (MLflow, S3, Kubernetes).

Every retry is logged once at WARNING with what failed, why, and when the next try comes, so an
operator sees an outage as it happens; the caller loses nothing, it only waits. What is logged
and raised is redacted (``orchestrator.redact``): an error quoting a ``user:pass@`` URI would
otherwise carry the password into the log, a search's status and its Events.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from orchestrator.errors import TemporaryUnavailable
from orchestrator.redact import redact

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Backoff:
    """Delays ``initial * factor**k`` capped at ``maximum``; ``attempts`` tries in all (0: forever)."""

    initial: float = 0.5
    factor: float = 2.0
    maximum: float = 30.0
    attempts: int = 8

    def delays(self) -> list[float]:
        n = self.attempts - 1 if self.attempts else 10_000
        return [min(self.maximum, self.initial * self.factor**k) for k in range(n)]


def of_types(*types: type[BaseException]) -> Callable[[BaseException], bool]:
    """An ``is_transient`` predicate for errors of the given types."""
    return lambda e: isinstance(e, types)


def retry(
    fn: Callable[[], T],
    what: str,
    is_transient: Callable[[BaseException], bool],
    backoff: Backoff = Backoff(),
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``fn``; on a transient error, wait and call again; give up with TemporaryUnavailable.

    Errors for which ``is_transient`` is false propagate at once: retrying cannot fix them.
    """
    delays = backoff.delays()
    for attempt in range(len(delays) + 1):
        try:
            return fn()
        except Exception as e:
            if not is_transient(e):
                raise
            if attempt == len(delays):
                raise TemporaryUnavailable(redact(
                    f"{what} failed {attempt + 1} times; last error: {type(e).__name__}: {e}"
                )) from e
            delay = delays[attempt]
            log.warning(
                "%s failed (%s: %s); retry %d/%d in %.1f s",
                redact(what), type(e).__name__, redact(str(e))[:200], attempt + 1, len(delays),
                delay,
            )
            sleep(delay)
    raise AssertionError("unreachable")
