"""The CRD is generated from the spec model, is structural, and judges CRs as the model does."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from orchestrator.cluster.crd import (
    CLUSTER_DEFAULTS,
    CRD_NAME,
    crd_manifest,
    crd_schema,
    render,
    validate_cr,
)
from orchestrator.spec import KubernetesBackendSpec, SearchSpec, parse_spec

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "helm" / "actsearch" / "crds" / f"{CRD_NAME}.yaml"
EXAMPLE_CRS = sorted(p for p in (ROOT / "examples").glob("*.yaml")
                     if (yaml.safe_load(p.read_text()) or {}).get("kind") == "ActivationSearch")
K8S_VERSION = "1.35.0"
FORBIDDEN = {"anyOf", "oneOf", "allOf", "not", "$ref", "$defs", "definitions", "title"}


def cr(spec: dict[str, Any] | None = None, name: str = "s1") -> dict[str, Any]:
    return {"apiVersion": "actsearch.io/v1alpha1", "kind": "ActivationSearch",
            "metadata": {"name": name, "namespace": "team-a", "labels": {"team": "a"}},
            "spec": {} if spec is None else spec}


def walk(node: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    nodes = [(path, node)]
    for name, sub in node.get("properties", {}).items():
        nodes += walk(sub, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        nodes += walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        nodes += walk(node["additionalProperties"], f"{path}{{}}")
    return nodes


def apply_defaults(schema: dict[str, Any], obj: Any) -> Any:
    """Structural defaulting as the API server does it: absent fields with a default get it,
    then defaults are applied inside the result (so `default: {}` fills nested defaults)."""
    if isinstance(obj, dict) and "properties" in schema:
        for name, sub in schema["properties"].items():
            if name not in obj and "default" in sub:
                obj[name] = copy.deepcopy(sub["default"])
            if name in obj:
                obj[name] = apply_defaults(sub, obj[name])
    elif isinstance(obj, list) and "items" in schema:
        obj = [apply_defaults(schema["items"], x) for x in obj]
    return obj


def test_the_committed_crd_is_the_one_generated_from_the_spec_model() -> None:
    assert COMMITTED.read_text() == render(), "stale CRD: run `make crds` and commit the result"


def test_the_crd_passes_the_upstream_kubernetes_schema_strictly() -> None:
    kubernetes_validate.validate(crd_manifest(), K8S_VERSION, strict=True)


@pytest.mark.parametrize("path,node", walk(crd_schema()), ids=lambda v: v if isinstance(v, str) else "")
def test_every_schema_node_is_structural(path: str, node: dict[str, Any]) -> None:
    assert "type" in node or node.get("x-kubernetes-preserve-unknown-fields"), f"{path}: no type"
    assert not FORBIDDEN & node.keys(), f"{path}: {FORBIDDEN & node.keys()}"
    assert node.get("additionalProperties") is not False, f"{path}: additionalProperties: false"
    assert not ("properties" in node and "additionalProperties" in node), f"{path}: both kinds of object"
    assert node.get("type") != "null" and "null" not in node.get("enum", []), f"{path}: null as a type"
    if "default" in node:  # a default the API server would reject fails the CRD at apply time
        jsonschema.Draft4Validator({k: v for k, v in node.items() if k != "default"}).validate(node["default"])


def test_only_free_form_maps_keep_unknown_fields() -> None:
    open_nodes = [p for p, n in walk(crd_schema()) if n.get("x-kubernetes-preserve-unknown-fields")]
    assert open_nodes == [".spec.strategy.options"]


def test_the_spec_schema_has_every_field_of_the_model_but_the_name() -> None:
    spec = crd_schema()["properties"]["spec"]["properties"]
    assert set(spec) == set(SearchSpec.model_fields) - {"name"}
    assert set(spec["child"]["properties"]) == set(SearchSpec.model_fields["child"].annotation.model_fields)
    k8s = spec["backend"]["properties"]["kubernetes"]["properties"]
    assert set(k8s) == set(KubernetesBackendSpec.model_fields)


def test_descriptions_are_kept_for_kubectl_explain() -> None:
    spec = crd_schema()["properties"]["spec"]
    assert spec["properties"]["budget"]["properties"]["trials"]["description"].startswith("Children trained")
    assert "Network; one of 'resnet20'" in spec["properties"]["child"]["properties"]["model"]["description"]


def test_literals_become_enums_and_optionals_become_nullable() -> None:
    spec = crd_schema()["properties"]["spec"]["properties"]
    assert spec["strategy"]["properties"]["name"]["enum"] == ["ppo", "reinforce", "random", "exhaustive", "evolution"]
    gpu_hours = spec["budget"]["properties"]["gpu_hours"]
    assert gpu_hours == {"type": "number", "nullable": True, "description": gpu_hours["description"],
                         "minimum": 0, "exclusiveMinimum": True}
    selector = spec["backend"]["properties"]["kubernetes"]["properties"]["node_selector"]
    assert selector["additionalProperties"] == {"type": "string"}


def test_a_cr_defaulted_by_the_api_server_means_the_models_default_search_on_a_cluster() -> None:
    stored = apply_defaults(crd_schema(), cr())
    assert stored["spec"]["budget"]["trials"] == 100  # defaults really were applied
    parsed = parse_spec({**stored["spec"], "name": "s1"})
    expected = SearchSpec(name="s1").model_dump()
    for path, value in CLUSTER_DEFAULTS.items():
        node = expected
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value
    assert parsed.model_dump() == expected


def test_the_status_holds_summaries_only() -> None:
    status = crd_schema()["properties"]["status"]
    arrays = [p for p, n in walk(status) if n.get("type") == "array"]
    assert arrays == [".conditions"]
    assert status["properties"]["phase"]["enum"] == ["Pending", "Running", "Succeeded", "Failed", "Cancelled"]
    assert status["properties"]["bestAccuracy"]["type"] == "number"
    assert crd_manifest()["spec"]["versions"][0]["subresources"] == {"status": {}}


def test_printer_columns_and_names_for_kubectl() -> None:
    spec = crd_manifest()["spec"]
    columns = {c["name"]: c["jsonPath"] for c in spec["versions"][0]["additionalPrinterColumns"]}
    assert list(columns) == ["Phase", "Done", "Budget", "Running", "Failed", "Best", "Function",
                             "Trial", "Age"]
    assert columns["Best"] == ".status.best.valAccuracy"  # the leader, without MLflow
    assert columns["Function"] == ".status.best.expression"
    wide = {c["name"] for c in spec["versions"][0]["additionalPrinterColumns"] if c.get("priority")}
    assert wide == {"Running", "Failed", "Trial"}  # `kubectl get -o wide` only
    for name, path in columns.items():  # every column points at a field that exists
        if path.startswith(".status."):
            node = crd_schema()["properties"]["status"]
            for part in path.removeprefix(".status.").split("."):
                assert part in node.get("properties", {}), name
                node = node["properties"][part]
    assert spec["names"]["shortNames"] == ["asearch"] and spec["names"]["categories"] == ["actsearch"]


@pytest.mark.parametrize("path", EXAMPLE_CRS, ids=lambda p: p.name)
def test_example_searches_are_valid_crs_and_valid_specs(path: Path) -> None:
    obj = yaml.safe_load(path.read_text())
    assert validate_cr(obj) == []
    parse_spec({**obj["spec"], "name": obj["metadata"]["name"]}, str(path))


def test_the_cr_examples_exist() -> None:
    assert {"search-cpu.yaml", "search-paper.yaml"} <= {p.name for p in EXAMPLE_CRS}


def test_free_form_options_and_explicit_nulls_are_accepted() -> None:
    obj = cr({"strategy": {"options": {"lr": 0.002, "nested": {"any": [1, 2]}}},
              "budget": {"gpu_hours": None},
              "backend": {"kubernetes": {"tolerations": [{"operator": "Exists", "effect": None}]}}})
    assert validate_cr(obj) == []


@pytest.mark.parametrize("spec,name,message", [
    ({"budget": {"trials": 0}}, "s1", "spec.budget.trials: 0 is less than the minimum of 1"),
    ({"strategy": {"name": "bayes"}}, "s1", "spec.strategy.name: 'bayes' is not one of"),
    ({"paralelism": 4}, "s1", "'paralelism' was unexpected"),
    ({"child": {"model": "resnet20", "epochs": 3}}, "s1", "spec.child: Additional properties"),
    ({"backend": {"kubernetes": {"node_selector": {"gpu": True}}}}, "s1",
     "spec.backend.kubernetes.node_selector.gpu: True is not of type 'string'"),
    ({"budget": {"gpu_hours": 0}}, "s1", "spec.budget.gpu_hours: 0 is less than or equal to the minimum of 0"),
    ({"early_stopping": {"eta": 2}}, "s1", "spec.early_stopping: 'rule' is a required property"),
    ({"early_stopping": {"rule": "hyperband"}}, "s1",
     "spec.early_stopping.rule: 'hyperband' is not one of"),
    ({}, "Bad_Name", "metadata.name: 'Bad_Name' does not match"),
    ({}, "x" * 41, "is too long"),
])
def test_invalid_crs_are_rejected_naming_the_field(spec: dict[str, Any], name: str, message: str) -> None:
    errors = validate_cr(cr(spec, name))
    assert any(message in e for e in errors), errors


def test_wrong_kind_version_or_shape_is_rejected() -> None:
    assert validate_cr([]) == ["an ActivationSearch is a mapping; got list"]
    obj = {**cr(), "apiVersion": "actsearch.io/v1", "kind": "Search"}
    assert validate_cr(obj)[:2] == ["apiVersion: must be actsearch.io/v1alpha1; got 'actsearch.io/v1'",
                                    "kind: must be ActivationSearch; got 'Search'"]
    no_spec = cr()
    del no_spec["spec"]
    assert validate_cr(no_spec) == ["'spec' is a required property"]
