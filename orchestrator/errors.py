"""The project's error hierarchy: shallow, split by what the caller should do next."""

from __future__ import annotations


class ActsearchError(Exception):
    """Base of every error the project raises on purpose."""


class ConfigError(ActsearchError, ValueError):
    """Bad input (a spec, an option): nothing was started; fix the input and retry."""


class PermanentTrialFailure(ActsearchError):
    """A trial that cannot succeed by retrying (NaN loss, unparsable expression)."""


class TemporaryUnavailable(ActsearchError):
    """An outside system (MLflow, S3, the API server) is briefly unreachable; retried with backoff."""
