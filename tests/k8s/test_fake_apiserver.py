"""The fake API server itself, where it stands in for a real one (none can run here): what it
stores, refuses and does as a real API server would, so the tests that use it see what a
cluster would show them."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.k8s.conftest import NAMESPACE
from tests.k8s.fake_apiserver import FakeApiServer

GROUP, VERSION, PLURAL = "actsearch.io", "v1alpha1", "activationsearches"


def search(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ActivationSearch",
            "metadata": {"name": "s1"}, "spec": spec}


def create(api_client: Any, body: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return client.CustomObjectsApi(api_client).create_namespaced_custom_object(  # type: ignore[no-any-return]
        GROUP, VERSION, NAMESPACE, PLURAL, body, **kw)


def test_a_custom_resource_is_stored_with_the_crds_defaults_filled_in(
        apiserver: FakeApiServer, api_client: Any) -> None:
    out = create(api_client, search(budget={"trials": 7}))
    assert out["spec"]["budget"]["trials"] == 7
    assert out["spec"]["strategy"]["name"] == "ppo"  # default: {} reaches nested defaults
    assert out["spec"]["backend"] == {"kind": "kubernetes"}
    assert apiserver.get(PLURAL, NAMESPACE, "s1") == out


def test_unknown_fields_are_pruned_except_where_the_schema_keeps_them(
        apiserver: FakeApiServer, api_client: Any) -> None:
    out = create(api_client, search(budgett={"trials": 3}, strategy={
        "name": "ppo", "colour": "red", "options": {"lr": 0.1, "anything": {"goes": 1}}}))
    assert "budgett" not in out["spec"] and "colour" not in out["spec"]["strategy"]
    assert out["spec"]["strategy"]["options"] == {"lr": 0.1, "anything": {"goes": 1}}


def test_strict_field_validation_refuses_unknown_fields_as_kubectl_asks(
        apiserver: FakeApiServer, api_client: Any) -> None:
    with pytest.raises(ApiException) as e:
        create(api_client, search(budgett={"trials": 3}), field_validation="Strict")
    assert e.value.status == 400 and 'unknown field \\"spec.budgett\\"' in e.value.body
    assert apiserver.get(PLURAL, NAMESPACE, "s1") is None


def test_a_patch_is_pruned_and_defaulted_too(apiserver: FakeApiServer, api_client: Any) -> None:
    create(api_client, search())
    api = client.CustomObjectsApi(api_client)
    out = api.patch_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, "s1", {
        "spec": {"budget": None, "extra": 1}})
    assert out["spec"]["budget"]["trials"] == 100 and "extra" not in out["spec"]
