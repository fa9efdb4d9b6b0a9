"""The Kubernetes adapter's error translation: every answer of the API server becomes one of the
project's errors in one place (orchestrator.adapters.kube.translate), typed where callers decide on it."""

from __future__ import annotations

import json

import pytest
from kubernetes.client.exceptions import ApiException

from orchestrator.adapters.kube import (
    AlreadyExists,
    Conflict,
    CrdMissing,
    KubeError,
    NotFound,
    translate,
)
from orchestrator.errors import ConfigError, TemporaryUnavailable


def api_error(status: int, reason: str | None = None, message: str = "the server said so",
              status_body: bool = True) -> ApiException:
    e = ApiException(status=status, reason="HTTP reason")
    if status_body:
        e.body = json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                             "message": message, "reason": reason or "", "code": status})
    else:
        e.body = "404 page not found"
    return e


@pytest.mark.parametrize(("status", "reason", "kind"), [
    (404, "NotFound", NotFound),
    (409, "AlreadyExists", AlreadyExists),
    (409, "Conflict", Conflict),
    (401, "Unauthorized", KubeError),
    (403, "Forbidden", KubeError),
    (422, "Invalid", KubeError),
    (400, "BadRequest", KubeError),
])
def test_each_final_answer_becomes_its_typed_error_carrying_the_servers_message(
        status: int, reason: str, kind: type[KubeError]) -> None:
    error = translate(api_error(status, reason, message="jobs \"x\" is special"), "create Job ns/x")
    assert type(error) is kind
    assert isinstance(error, KubeError) and isinstance(error, ConfigError)
    assert error.status == status and error.reason == reason
    assert str(error).startswith("create Job ns/x") and 'jobs "x" is special' in str(error)


def test_a_409_that_is_not_about_an_existing_object_is_a_conflict_but_not_already_exists() -> None:
    error = translate(api_error(409, "Conflict"), "updating ActivationSearch ns/s")
    assert isinstance(error, Conflict) and not isinstance(error, AlreadyExists)
    assert isinstance(translate(api_error(409, "AlreadyExists"), "creating"), Conflict)


def test_a_404_without_a_status_body_is_a_missing_crd_not_a_missing_object() -> None:
    error = translate(api_error(404, status_body=False), "listing ActivationSearches")
    assert isinstance(error, CrdMissing) and not isinstance(error, NotFound)
    assert "CRD is not installed" in str(error)


def test_a_forbidden_request_names_rbac() -> None:
    assert "RBAC" in str(translate(api_error(403, "Forbidden"), "create Job ns/x"))


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_a_server_error_or_throttling_is_temporary(status: int) -> None:
    error = translate(api_error(status, "InternalError"), "read Job ns/x")
    assert isinstance(error, TemporaryUnavailable) and f"({status})" in str(error)


def test_no_answer_at_all_is_temporary() -> None:
    error = translate(ConnectionRefusedError("refused"), "read Job ns/x")
    assert isinstance(error, TemporaryUnavailable) and "could not be reached" in str(error)
