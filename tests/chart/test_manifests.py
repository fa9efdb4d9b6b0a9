"""manifests/ is the chart rendered for users without Helm, and stays so."""

from __future__ import annotations

import importlib.util
import subprocess
from types import ModuleType

import kubernetes_validate
import yaml

from orchestrator.cluster.crd import crd_manifest
from orchestrator.cluster.rbac import RULES
from tests.chart.conftest import ROOT, Helm

MANIFESTS = ROOT / "manifests"


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("manifests_tool", ROOT / "tools" / "manifests.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_manifests_are_the_chart_rendered_now(helm: Helm) -> None:
    tool = generator()
    expected = tool.manifests(tool.render_chart(helm.binary))
    committed = {p.name: p.read_text() for p in MANIFESTS.glob("*.yaml")}
    assert committed.keys() == expected.keys(), "run `make manifests` and commit the result"
    for name, text in expected.items():
        assert committed[name] == text, f"manifests/{name} is stale: run `make manifests`"


def test_kustomize_builds_them_into_valid_objects(kubectl: str) -> None:
    out = subprocess.run([kubectl, "kustomize", str(MANIFESTS)], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    objects = [d for d in yaml.safe_load_all(out) if d]
    for obj in objects:
        kubernetes_validate.validate(obj, "1.35.0", strict=True)
    kinds = sorted(o["kind"] for o in objects)
    assert kinds == ["ConfigMap", "CustomResourceDefinition", "Deployment", "Namespace",
                     "NetworkPolicy", "NetworkPolicy", "Role", "RoleBinding", "ServiceAccount",
                     "ServiceAccount"]
    by_kind = {o["kind"]: o for o in objects}
    assert by_kind["CustomResourceDefinition"] == crd_manifest()
    assert by_kind["Role"]["rules"] == RULES
    assert by_kind["Namespace"]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_no_helm_bookkeeping_is_left_in_them() -> None:
    text = "".join(p.read_text() for p in MANIFESTS.glob("*.yaml"))
    assert "helm.sh/chart" not in text and "managed-by: Helm" not in text
