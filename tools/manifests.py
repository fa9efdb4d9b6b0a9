"""Writes manifests/ (plain YAML + kustomization) from the chart, so the two never drift.

``helm template`` with tools/manifests-values.yaml renders the controller alone; the objects are
grouped into one file per concern, Helm's own labels are dropped, and a restricted Namespace is
added. A chart test regenerates them and compares with the committed files.

    HELM=.tools/bin/helm python tools/manifests.py      (or: make manifests)
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "helm" / "actsearch"
VALUES = ROOT / "tools" / "manifests-values.yaml"
OUT = ROOT / "manifests"
RELEASE = "actsearch"
NAMESPACE = "actsearch"
HELM_LABELS = ("helm.sh/chart", "app.kubernetes.io/managed-by")
HEADER = "# Generated from helm/actsearch by `make manifests` (tools/manifests.py); do not edit.\n"
FILES = {  # kind -> file, in the order kustomize applies them
    "Namespace": "namespace.yaml",
    "CustomResourceDefinition": "crd.yaml",
    "ServiceAccount": "serviceaccounts.yaml",
    "Role": "rbac.yaml",
    "RoleBinding": "rbac.yaml",
    "ConfigMap": "configmap.yaml",
    "Deployment": "controller.yaml",
    "NetworkPolicy": "networkpolicies.yaml",
}


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the ConfigMap's defaults.yaml) as readable literal blocks."""


_Dumper.add_representer(
    str, lambda d, s: d.represent_scalar("tag:yaml.org,2002:str", s, style="|" if "\n" in s else None)
)


def _dump(docs: list[dict[str, Any]]) -> str:
    return HEADER + yaml.dump_all(docs, Dumper=_Dumper, sort_keys=False, width=100, allow_unicode=True)


def helm_binary() -> str:
    helm = os.environ.get("HELM") or str(ROOT / ".tools" / "bin" / "helm")
    return str(ROOT / helm) if not os.path.isabs(helm) and os.sep in helm else helm


def render_chart(helm: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        [helm, "template", RELEASE, str(CHART), "--namespace", NAMESPACE, "--include-crds",
         "--values", str(VALUES)],
        check=True, capture_output=True, text=True,
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def _strip_helm_labels(obj: dict[str, Any]) -> dict[str, Any]:
    """Helm's bookkeeping labels, wherever metadata appears (the object and its pod template)."""
    for key, value in obj.items():
        if key == "labels" and isinstance(value, dict):
            for label in HELM_LABELS:
                value.pop(label, None)
        elif isinstance(value, dict):
            _strip_helm_labels(value)
    return obj


def namespace() -> dict[str, Any]:
    """The namespace, enforcing the restricted Pod Security Standard every pod here meets."""
    return {
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": NAMESPACE, "labels": {
            "app.kubernetes.io/part-of": "actsearch",
            "pod-security.kubernetes.io/enforce": "restricted",
        }},
    }


def manifests(objects: list[dict[str, Any]]) -> dict[str, str]:
    """File name -> contents of manifests/, kustomization.yaml included."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for obj in [namespace(), *objects]:
        kind = obj["kind"]
        if kind not in FILES:
            raise ValueError(f"the chart rendered a {kind}, which manifests/ has no file for")
        grouped.setdefault(FILES[kind], []).append(_strip_helm_labels(obj))
    files = {
        name: _dump(grouped[name])
        for name in dict.fromkeys(FILES.values()) if name in grouped
    }
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": list(files),
    }
    files["kustomization.yaml"] = _dump([kustomization])
    return files


def main() -> None:
    files = manifests(render_chart(helm_binary()))
    OUT.mkdir(exist_ok=True)
    for stale in {p.name for p in OUT.glob("*.yaml")} - set(files):
        (OUT / stale).unlink()
    for name, text in files.items():
        (OUT / name).write_text(text)
    sys.stdout.write(f"wrote {len(files)} files to {OUT.relative_to(ROOT)}/\n")


if __name__ == "__main__":
    main()
