"""The CRD's upgrade path (`actsearch-ctl crd apply`; Helm never upgrades `crds/`), against the
fake API server of tests/k8s (no real API server can run here), which checks objects against
the CRD it stores once one is there, as a real one does."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from orchestrator.cli import main
from orchestrator.cluster.crd import CRD_NAME, crd_manifest, render
from tests.k8s.conftest import NAMESPACE
from tests.k8s.fake_apiserver import CLUSTER, FakeApiServer
from tests.k8s.harness import search_object
from tests.k8s.test_cli import ctl


def without_gpu_hours(crd: dict[str, Any]) -> dict[str, Any]:
    """The CRD of an older version: no ``spec.budget.gpu_hours`` yet."""
    old = copy.deepcopy(crd)
    schema = old["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    del schema["properties"]["spec"]["properties"]["budget"]["properties"]["gpu_hours"]
    return old


def served(apiserver: FakeApiServer) -> dict[str, Any]:
    crd = apiserver.get("customresourcedefinitions", CLUSTER, CRD_NAME)
    assert crd is not None
    return crd


def test_crd_apply_creates_the_crd_then_finds_it_unchanged(
        apiserver: FakeApiServer, kubeconfig: Path) -> None:
    first = ctl("crd", "apply", "--kubeconfig", str(kubeconfig))
    assert first.exit_code == 0, first.output
    assert first.output == (f"customresourcedefinition.apiextensions.k8s.io/{CRD_NAME} "
                            "created\n")
    assert served(apiserver)["spec"] == crd_manifest()["spec"]
    again = ctl("crd", "apply", "--kubeconfig", str(kubeconfig))
    assert again.exit_code == 0 and again.output.endswith(f"{CRD_NAME} unchanged\n")
    assert len(apiserver.calls("create", "customresourcedefinitions")) == 1
    assert apiserver.calls("update", "customresourcedefinitions") == []


def test_an_upgrade_with_a_new_field_keeps_existing_searches_and_accepts_the_field(
        apiserver: FakeApiServer, kubeconfig: Path) -> None:
    apiserver.put_object("customresourcedefinitions", CLUSTER,
                         without_gpu_hours(crd_manifest()))
    existing = apiserver.put_object("activationsearches", NAMESPACE, search_object("old"))
    new_field = search_object("new", budget={"trials": 4, "gpu_hours": 2.5})
    spec_file = Path(kubeconfig).parent / "new.yaml"
    spec_file.write_text(yaml.safe_dump(new_field))
    before = ctl("submit", str(spec_file), "--kubeconfig", str(kubeconfig))
    assert before.exit_code == 1 and "gpu_hours" in before.output  # the old CRD refuses it

    dry = ctl("crd", "apply", "--dry-run", "--kubeconfig", str(kubeconfig))
    assert dry.exit_code == 0 and "configured (dry run)" in dry.output
    assert apiserver.calls("update", "customresourcedefinitions") == []
    result = ctl("crd", "apply", "--kubeconfig", str(kubeconfig))
    assert result.exit_code == 0, result.output
    assert f"{CRD_NAME} configured: spec.versions replaced" in result.output
    assert "existing ActivationSearches are kept" in result.output
    assert served(apiserver)["spec"] == crd_manifest()["spec"]

    kept = apiserver.get("activationsearches", NAMESPACE, "old")
    assert kept is not None and kept["metadata"]["uid"] == existing["metadata"]["uid"]
    assert kept["spec"] == existing["spec"]
    after = ctl("submit", str(spec_file), "--kubeconfig", str(kubeconfig))
    assert after.exit_code == 0, after.output
    created = apiserver.get("activationsearches", NAMESPACE, "new")
    assert created is not None and created["spec"]["budget"]["gpu_hours"] == 2.5


def test_crd_show_prints_the_crd_the_chart_ships() -> None:
    result = CliRunner().invoke(main, ["crd", "show"])
    assert result.exit_code == 0
    assert result.output == render()
    chart = Path(__file__).resolve().parents[2] / "helm/actsearch/crds/activationsearches.actsearch.io.yaml"
    assert yaml.safe_load(result.output) == yaml.safe_load(chart.read_text())


def test_crd_apply_without_the_rights_of_a_cluster_administrator_says_so(
        apiserver: FakeApiServer, kubeconfig: Path) -> None:
    apiserver.fail("get", "customresourcedefinitions", 403)
    result = ctl("crd", "apply", "--kubeconfig", str(kubeconfig))
    assert result.exit_code == 1 and "forbidden (403)" in result.output
    assert "Traceback" not in result.output
