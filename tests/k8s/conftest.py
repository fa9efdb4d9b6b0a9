"""Fixtures of the Kubernetes tests: a fresh fake API server per test (no real API server can run
here; see fake_apiserver.py), an official-client ``ApiClient`` on it, and the record of what the
controller's own code asked of the API, for the RBAC coverage test (test_rbac.py), which runs last.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cluster.rbac import RULES
from tests.k8s.fake_apiserver import FakeApiServer

NAMESPACE = "research"
CONTROLLER_TRAFFIC: set[tuple[str, str, str]] = set()
"""(verb, group, resource) of every request made by controller code in tests marked
``controller_traffic`` (the backend and the operator, not the user's CLI or test set-up)."""
AUDITED_TESTS: list[str] = []


CONTROLLER_TOKEN = "controller-token"
CONTROLLER_USER = f"system:serviceaccount:{NAMESPACE}:actsearch-controller"
ADMIN_TOKEN = "fake-token"


@pytest.fixture
def apiserver(request: pytest.FixtureRequest) -> Iterator[FakeApiServer]:
    """The fake, enforcing ``orchestrator.cluster.rbac.RULES`` on the controller's token as the chart's
    Role does in a cluster; the tests' own token is an administrator's."""
    server = FakeApiServer(grants={CONTROLLER_TOKEN: (CONTROLLER_USER, RULES)}).start()
    yield server
    server.stop()
    if request.node.get_closest_marker("controller_traffic"):
        CONTROLLER_TRAFFIC.update(server.resource_requests())
        AUDITED_TESTS.append(request.node.nodeid)


def client_for(url: str, token: str) -> Any:
    from kubernetes import client

    cfg = client.Configuration(host=url)
    cfg.api_key = {"authorization": token}
    # the client (v36) looks the prefix up under "BearerToken", kopf's login under "authorization"
    cfg.api_key_prefix = {"authorization": "Bearer", "BearerToken": "Bearer"}
    return client.ApiClient(cfg)


@pytest.fixture
def api_client(apiserver: FakeApiServer, request: pytest.FixtureRequest) -> Iterator[object]:
    """In a test marked ``controller_traffic``, the controller's identity (its requests are
    audited and held to the Role); else an administrator's."""
    controller = request.node.get_closest_marker("controller_traffic") is not None
    with client_for(apiserver.url, CONTROLLER_TOKEN if controller else ADMIN_TOKEN) as api:
        yield api


@pytest.fixture
def kubeconfig(apiserver: FakeApiServer, tmp_path: Path) -> Path:
    return apiserver.write_kubeconfig(tmp_path / "kubeconfig", NAMESPACE)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.k8s)
    # the RBAC audit reads what the other tests recorded: it runs after them
    items.sort(key=lambda i: bool(i.get_closest_marker("rbac_audit")))
