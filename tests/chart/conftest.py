"""A real helm binary renders the chart once per values file; tests read the parsed objects.

helm is found through $HELM or .tools/bin/helm (`make tools` installs it). Without it the chart
tests fail, so CI cannot pass by skipping them; ACTSEARCH_SKIP_HELM_TESTS=1 skips them on purpose.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "actsearch"
FULL_VALUES = Path(__file__).parent / "values-full.yaml"
RELEASE = "rel"
NAMESPACE = "search-ns"
SKIP_ENV = "ACTSEARCH_SKIP_HELM_TESTS"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.chart)


def find_tool(name: str) -> str:
    """$HELM / $KUBECTL, else .tools/bin/<name>; fails the test unless skipping was asked for."""
    path = os.environ.get(name.upper()) or str(ROOT / ".tools" / "bin" / name)
    if not os.path.isabs(path) and os.sep in path:
        path = str(ROOT / path)
    found = shutil.which(path)
    if found is None:
        if os.environ.get(SKIP_ENV) == "1":
            pytest.skip(f"{name} not found and {SKIP_ENV}=1")
        pytest.fail(
            f"{name} not found: run `make tools` (or set {name.upper()}=/path/to/{name}); "
            f"set {SKIP_ENV}=1 to skip the chart tests deliberately", pytrace=False,
        )
    return found


@dataclass(frozen=True)
class Helm:
    binary: str

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([self.binary, *args], capture_output=True, text=True, timeout=60)

    def template(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = self.run("template", RELEASE, str(CHART), "--namespace", NAMESPACE, *args)
        if check and done.returncode != 0:
            raise AssertionError(f"helm template {' '.join(args)} failed:\n{done.stderr}")
        return done

    def objects(self, *args: str) -> list[dict[str, Any]]:
        return [d for d in yaml.safe_load_all(self.template(*args).stdout) if d]


@pytest.fixture(scope="session")
def helm() -> Helm:
    return Helm(find_tool("helm"))


@pytest.fixture(scope="session")
def kubectl() -> str:
    return find_tool("kubectl")


@pytest.fixture(scope="session")
def default_objects(helm: Helm) -> list[dict[str, Any]]:
    return helm.objects()


@pytest.fixture(scope="session")
def full_objects(helm: Helm) -> list[dict[str, Any]]:
    return helm.objects("--values", str(FULL_VALUES))


@pytest.fixture(scope="session")
def full_values() -> dict[str, Any]:
    return yaml.safe_load(FULL_VALUES.read_text())


@pytest.fixture(scope="session", params=["default", "full"])
def rendered(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    """Both renders, for checks every configuration must pass."""
    return request.getfixturevalue(f"{request.param}_objects")


def of_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def named(objects: list[dict[str, Any]], kind: str, suffix: str) -> dict[str, Any]:
    matches = [o for o in of_kind(objects, kind) if o["metadata"]["name"].endswith(suffix)]
    assert len(matches) == 1, f"expected one {kind} named *{suffix}, got {[o['metadata']['name'] for o in matches]}"
    return matches[0]


def pod_specs(objects: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(kind/name, pod spec) of every pod the chart would run."""
    out = []
    for o in objects:
        name = f"{o['kind']}/{o['metadata']['name']}"
        if o["kind"] == "Pod":
            out.append((name, o["spec"]))
        elif o["kind"] in ("Deployment", "StatefulSet", "Job", "DaemonSet"):
            out.append((name, o["spec"]["template"]["spec"]))
    return out
