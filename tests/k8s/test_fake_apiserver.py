"""The fake API server itself, where it stands in for a real one (none can run here): what it
stores, refuses and does as a real API server would, so the tests that use it see what a
cluster would show them."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from orchestrator.cluster.rbac import RULES
from tests.k8s.conftest import CONTROLLER_TOKEN, CONTROLLER_USER, NAMESPACE, client_for
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


def job(name: str = "j1", owner: dict[str, Any] | None = None, **resources: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if owner is not None:
        meta["ownerReferences"] = [{
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "ActivationSearch",
            "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
            "controller": True, "blockOwnerDeletion": True}]
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": {"template": {"spec": {
        "restartPolicy": "Never",
        "containers": [{"name": "trainer", "image": "trainer:1", "resources": resources}]}}}}


def test_the_controllers_token_is_held_to_its_role(apiserver: FakeApiServer) -> None:
    apiserver.put_object(PLURAL, NAMESPACE, search())
    with client_for(apiserver.url, CONTROLLER_TOKEN) as api:
        searches = client.CustomObjectsApi(api)
        assert searches.list_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL)["items"]
        with pytest.raises(ApiException) as e:
            searches.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, "s1")
    assert e.value.status == 403 and apiserver.get(PLURAL, NAMESPACE, "s1") is not None
    assert (f'activationsearches.actsearch.io is forbidden: User \\"{CONTROLLER_USER}\\" cannot '
            f'delete resource \\"activationsearches\\" in API group \\"actsearch.io\\" in the '
            f'namespace \\"{NAMESPACE}\\"') in e.value.body


def test_block_owner_deletion_needs_update_on_the_owners_finalizers(apiserver: FakeApiServer) -> None:
    owner = apiserver.put_object(PLURAL, NAMESPACE, search())
    without = [r for r in RULES if r["resources"] != ["activationsearches/finalizers"]]
    apiserver.grants["limited"] = ("limited-user", without)
    with client_for(apiserver.url, "limited") as api, pytest.raises(ApiException) as e:
        client.BatchV1Api(api).create_namespaced_job(NAMESPACE, job(owner=owner))
    assert e.value.status == 403
    assert "cannot set blockOwnerDeletion if an ownerReference refers to a resource you can't " \
           "set finalizers on" in e.value.body
    with client_for(apiserver.url, CONTROLLER_TOKEN) as api:
        client.BatchV1Api(api).create_namespaced_job(NAMESPACE, job(owner=owner))
    assert ("update", GROUP, "activationsearches/finalizers") in apiserver.resource_requests()


@pytest.mark.parametrize("quantity", ["16Gi", "500m", "1.5", "2e3", "16G", "100"])
def test_valid_quantities_are_accepted(apiserver: FakeApiServer, api_client: Any, quantity: str) -> None:
    client.BatchV1Api(api_client).create_namespaced_job(NAMESPACE, job(requests={"memory": quantity}))


@pytest.mark.parametrize("resources,status,message", [
    ({"requests": {"memory": "16GB"}}, 400, "quantities must match the regular expression"),
    ({"limits": {"cpu": "four"}}, 400, "quantities must match the regular expression"),
    ({"requests": {"memory": "32Gi"}, "limits": {"memory": "24Gi"}}, 422,
     "must be less than or equal to memory limit of 24Gi"),
    ({"requests": {"cpu": "-1"}}, 422, "must be greater than or equal to 0"),
])
def test_bad_quantities_are_refused_as_the_api_server_refuses_them(
        apiserver: FakeApiServer, api_client: Any, resources: dict[str, Any], status: int,
        message: str) -> None:
    with pytest.raises(ApiException) as e:
        client.BatchV1Api(api_client).create_namespaced_job(NAMESPACE, job(**resources))
    assert e.value.status == status and message in e.value.body
    assert apiserver.items("jobs") == []
