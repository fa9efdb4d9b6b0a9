"""The project's error hierarchy: shallow, split by what the caller should do next.

A trial that fails is no error of the controller's: its failure is a value, stored with the
trial (``contract.FailureKind``). The child's own errors are in ``trainer/errors.py``, its exit
codes in ``contract.ExitCode``."""

from __future__ import annotations


class ActsearchError(Exception):
    """Base of every error the project raises on purpose."""


class ConfigError(ActsearchError, ValueError):
    """Bad input (a spec, an option): nothing was started; fix the input and retry."""


class TemporaryUnavailable(ActsearchError):
    """An outside system (MLflow, S3, the API server) is briefly unreachable; retried with backoff."""
