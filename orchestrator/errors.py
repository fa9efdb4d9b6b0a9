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


class ServiceRefused(ConfigError):
    """An outside system answered and refused (a missing bucket, denied access, a server that is
    not MLflow). A command stops on it like any ConfigError; the operator, whose endpoints are
    its administrator's, reports it on the search (``reason``, CamelCase) and retries with
    backoff, since fixing the service fixes the search."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason
