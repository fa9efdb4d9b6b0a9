"""Integration tests: the real S3 and MLflow servers are session fixtures in tests/conftest.py
(shared with the Kubernetes tests); every test here is marked ``integration``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.integration)



@pytest.fixture
def mlflow_requests(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The endpoints of the HTTP requests MLflow's client sends from here on, in order: counted
    where it sends each one (``rest_utils.http_request``); clear the list between steps."""
    from mlflow.utils import rest_utils

    sent: list[str] = []
    send = rest_utils.http_request

    def counted(*a: Any, **kw: Any) -> Any:
        sent.append(kw["endpoint"] if "endpoint" in kw else a[1])
        return send(*a, **kw)

    monkeypatch.setattr(rest_utils, "http_request", counted)
    return sent
