"""Integration tests: the real S3 and MLflow servers are session fixtures in tests/conftest.py
(shared with the Kubernetes tests); every test here is marked ``integration``."""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.integration)

