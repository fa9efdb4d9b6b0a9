"""The cluster's policy for searches (orchestrator/cluster/policy.py): pure checks of a spec,
and the policy file read strictly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator.cluster.policy import (
    ChildPolicy,
    Given,
    PolicyViolation,
    check,
    enforce,
    image_allowed,
    load_policy,
    quantity,
    secret_fields,
)
from orchestrator.errors import ConfigError
from orchestrator.spec import SearchSpec, parse_spec

GIVEN = Given.of(
    {"backend": {"kubernetes": {
        "image": "registry.internal/actsearch/trainer:0.2.0", "service_account": "rel-child",
        "credentials_secret": "rel-actsearch-s3", "priority_class": "batch-low",
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "node_selector": {"nvidia.com/gpu.present": "true"}}}},
    tracking_uri="http://rel-mlflow.ns.svc:5000", storage_uri="s3://actsearch/checkpoints",
    s3_endpoint="http://rel-minio.ns.svc:9000")


def spec(k8s: dict[str, Any] | None = None, **fields: Any) -> SearchSpec:
    """A search over GIVEN's defaults, as the operator merges them."""
    base = {"image": GIVEN.kubernetes.image, "service_account": "rel-child",
            "credentials_secret": "rel-actsearch-s3", "priority_class": "batch-low",
            "tolerations": [t.model_dump(exclude_none=True) for t in GIVEN.kubernetes.tolerations],
            "node_selector": dict(GIVEN.kubernetes.node_selector)}
    return parse_spec({"name": "s", "backend": {"kind": "kubernetes",
                                                 "kubernetes": {**base, **(k8s or {})}}, **fields})


def fields(found: list[Any]) -> list[str]:
    return [v.field for v in found]


def test_what_the_operator_gives_children_is_within_the_strict_default_policy() -> None:
    assert check(ChildPolicy(), spec(), GIVEN) == []
    assert check(ChildPolicy(), parse_spec({"name": "bare"})) == []  # no defaults: the model's


@pytest.mark.parametrize("ask,field,words", [
    ({"image": "docker.io/attacker/miner:latest"}, "backend.kubernetes.image", "not an allowed image"),
    ({"service_account": "rel-controller"}, "backend.kubernetes.service_account", "'rel-child'"),
    ({"service_account": None}, "backend.kubernetes.service_account", "may not choose another"),
    ({"credentials_secret": "mlflow-db"}, "backend.kubernetes.credentials_secret", "rel-actsearch-s3"),
    ({"priority_class": "system-node-critical"}, "backend.kubernetes.priority_class", "PriorityClass"),
    ({"tolerations": [{"operator": "Exists"}]}, "backend.kubernetes.tolerations[0]", "toleration"),
    ({"node_selector": {"kubernetes.io/hostname": "node-1"}},
     "backend.kubernetes.node_selector.kubernetes.io/hostname", "node label"),
    ({"gpus": 9}, "backend.kubernetes.gpus", "more than the 8"),
    ({"gpus": 0, "resources": {"limits": {"nvidia.com/gpu": "16"}}},
     "backend.kubernetes.resources.limits.nvidia.com/gpu", "more than the 8"),
    ({"resources": {"requests": {"cpu": "64"}}}, "backend.kubernetes.resources.requests.cpu", "16"),
    ({"resources": {"limits": {"memory": "1Ti"}}}, "backend.kubernetes.resources.limits.memory", "128Gi"),
    ({"resources": {"limits": {"amd.com/gpu": "1"}}}, "backend.kubernetes.resources.limits.amd.com/gpu",
     "not a resource a child may ask for"),
    ({"backoff_limit": 1000}, "backend.kubernetes.backoff_limit", "maxBackoffLimit"),
])
def test_each_field_outside_the_policy_is_named_with_its_rule(
        ask: dict[str, Any], field: str, words: str) -> None:
    (violation,) = check(ChildPolicy(), spec(ask), GIVEN)
    assert violation.field == field
    assert words in violation.rule


def test_a_search_cannot_leave_the_operators_kueue_queue_but_may_pick_another() -> None:
    queued = Given.of({"backend": {"kubernetes": {"queue_name": "team-gpu"}}})
    for queue in ("team-gpu", "team-gpu-low"):  # the operator's (merged under), or another
        chosen = parse_spec({"name": "s", "backend": {"kind": "kubernetes",
                                                      "kubernetes": {"queue_name": queue}}})
        assert check(ChildPolicy(), chosen, queued) == []
    (violation,) = check(ChildPolicy(), parse_spec(
        {"name": "s", "backend": {"kind": "kubernetes", "kubernetes": {"queue_name": ""}}}), queued)
    assert violation.field == "backend.kubernetes.queue_name" and "not none" in violation.rule


def test_every_secret_a_search_can_name_is_held_to_the_policy() -> None:
    """Any ``*_secret`` field of the backend reaches the children's environment."""
    assert "credentials_secret" in secret_fields()
    for name in secret_fields():
        (violation,) = check(ChildPolicy(), spec({name: "kube-system-token"}), GIVEN)
        assert violation.field == f"backend.kubernetes.{name}" and "policy.secrets" in violation.rule
        listed = ChildPolicy.model_validate({"secrets": ["kube-system-token"]})
        assert check(listed, spec({name: "kube-system-token"}), GIVEN) == []


def test_children_per_search_are_bounded() -> None:
    found = check(ChildPolicy(), spec(parallelism=65, budget={"trials": 10_001}), GIVEN)
    assert fields(found) == ["parallelism", "budget.trials"]
    assert check(ChildPolicy(), spec(parallelism=64, budget={"trials": 10_000}), GIVEN) == []


def test_what_the_policy_lists_is_allowed_besides_the_operators_own() -> None:
    policy = ChildPolicy.model_validate({
        "images": ["ghcr.io/team-a/", "ghcr.io/actsearch/trainer"], "secrets": ["team-a-data"],
        "priorityClasses": ["research-high"], "nodeSelectors": {"pool": ["h100", "a100"]},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "team-a",
                         "effect": "NoSchedule"}],
        "maxResources": {"cpu": "64", "memory": "512Gi", "nvidia.com/gpu": "8"},
        "maxBackoffLimit": 10})
    ok = spec({"image": "ghcr.io/team-a/trainer:1", "credentials_secret": "team-a-data",
               "priority_class": "research-high", "node_selector": {"pool": "a100"},
               "tolerations": [{"key": "dedicated", "value": "team-a", "effect": "NoSchedule"}],
               "resources": {"requests": {"cpu": "64", "memory": "500Gi"}}, "backoff_limit": 10})
    assert check(policy, ok, GIVEN) == []
    assert check(policy, spec({"image": "ghcr.io/actsearch/trainer@sha256:" + "a" * 64}), GIVEN) == []
    assert fields(check(policy, spec({"node_selector": {"pool": "t4"}}), GIVEN)) == [
        "backend.kubernetes.node_selector.pool"]
    assert fields(check(policy, spec({"resources": {"requests": {"ephemeral-storage": "1Gi"}}}),
                        GIVEN)) == ["backend.kubernetes.resources.requests.ephemeral-storage"]


@pytest.mark.parametrize("image,entry,allowed", [
    ("ghcr.io/actsearch/trainer:0.1.0", "ghcr.io/actsearch/trainer:0.1.0", True),
    ("ghcr.io/actsearch/trainer:0.2.0", "ghcr.io/actsearch/trainer:0.1.0", False),
    ("ghcr.io/actsearch/trainer:9", "ghcr.io/actsearch/trainer", True),
    ("ghcr.io/actsearch/trainer-evil:9", "ghcr.io/actsearch/trainer", False),
    ("ghcr.io/actsearch/trainer:9/../x", "ghcr.io/actsearch/trainer", False),
    ("ghcr.io/actsearch/anything:1", "ghcr.io/actsearch/", True),
    ("ghcr.io/actsearchevil/x:1", "ghcr.io/actsearch/", False),
    ("ghcr.io/actsearch/../other/x:1", "ghcr.io/actsearch/", False),
    ("ghcr.io/actsearch", "ghcr.io/actsearch/", False),
])
def test_image_entries_match_a_reference_a_repository_or_a_prefix_never_a_longer_name(
        image: str, entry: str, allowed: bool) -> None:
    assert image_allowed(image, entry) is allowed


@pytest.mark.parametrize("uri,allowed", [
    ("http://rel-mlflow.ns.svc:5000", True),
    ("http://REL-MLFLOW.ns.svc:5000/", True),
    ("http://user:secret@rel-mlflow.ns.svc:5000", True),  # the same server, with credentials
    ("http://rel-mlflow.ns.svc:5000@attacker.example/", False),  # userinfo, then another host
    ("http://rel-mlflow.ns.svc:5001", False),
    ("https://rel-mlflow.ns.svc:5000", False),
    ("http://rel-mlflow.ns.svc.attacker.example:5000", False),
    ("http://127.0.0.1:5000", False),
])
def test_a_tracking_uri_is_allowed_only_for_the_same_server(uri: str, allowed: bool) -> None:
    found = check(ChildPolicy(), spec(tracking={"uri": uri}), GIVEN)
    assert (fields(found) == []) is allowed
    if not allowed:
        assert fields(found) == ["tracking.uri"]


@pytest.mark.parametrize("uri,allowed", [
    ("s3://actsearch/checkpoints/team-a/s1", True),
    ("s3://actsearch/checkpoints", True),
    ("s3://actsearch/checkpoints-evil/s1", False),
    ("s3://actsearch/mlflow", False),
    ("s3://other-bucket/checkpoints/s1", False),
    ("s3://actsearch/checkpoints/../mlflow", False),
    ("/var/lib/actsearch", False),
])
def test_a_storage_uri_is_allowed_only_below_an_allowed_prefix(uri: str, allowed: bool) -> None:
    found = check(ChildPolicy(), spec(storage={"uri": uri}), GIVEN)
    assert fields(found) == ([] if allowed else ["storage.uri"])


def test_an_s3_endpoint_is_the_operators_or_a_listed_one() -> None:
    listed = ChildPolicy.model_validate({"s3Endpoints": ["https://s3.eu-west-1.amazonaws.com"]})
    assert check(ChildPolicy(), spec(storage={"endpoint_url": "http://rel-minio.ns.svc:9000"}), GIVEN) == []
    other = spec(storage={"endpoint_url": "https://s3.eu-west-1.amazonaws.com"})
    assert fields(check(ChildPolicy(), other, GIVEN)) == ["storage.endpoint_url"]
    assert check(listed, other, GIVEN) == []


def test_every_violation_is_listed_in_one_error() -> None:
    greedy = spec({"image": "evil:1", "gpus": 9, "service_account": "admin"},
                  tracking={"uri": "http://attacker.example:80"})
    with pytest.raises(PolicyViolation) as e:
        enforce(ChildPolicy(), greedy, GIVEN, "ActivationSearch research/greedy")
    lines = str(e.value).splitlines()
    assert lines[0] == "ActivationSearch research/greedy is outside the cluster's policy for searches:"
    assert [line.split(":")[0] for line in lines[1:]] == [
        "backend.kubernetes.image", "backend.kubernetes.service_account",
        "backend.kubernetes.gpus", "tracking.uri"]
    assert isinstance(e.value, ConfigError)


def test_a_long_value_is_clipped_in_the_message() -> None:
    (violation,) = check(ChildPolicy(), spec({"image": "x" * 100_000 + ":1"}), GIVEN)
    assert len(violation.rule) < 400


@pytest.mark.parametrize("text,value", [
    ("500m", "0.5"), ("2", "2"), ("16Gi", str(16 * 2**30)), ("1e3", "1000"), ("1.5k", "1500"),
    ("2E", str(2 * 10**18)), ("128974848", "128974848"),
])
def test_quantities_compare_as_numbers(text: str, value: str) -> None:
    from decimal import Decimal

    assert quantity(text) == Decimal(value)


def test_the_policy_file_is_read_strictly(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("images: [a/]\nmaxTrials: 5\nimages: [b/]\n")
    with pytest.raises(ConfigError, match="line 3: key 'images' is given twice"):
        load_policy(path)
    path.write_text("maxGpus: 2\n")
    with pytest.raises(ConfigError, match="maxGpus: unknown field"):
        load_policy(path)
    path.write_text("maxResources: {memory: 16GB}\n")
    with pytest.raises(ConfigError, match=r"maxResources\.memory"):
        load_policy(path)
    path.write_text("trackingUris: ['not a uri']\n")
    with pytest.raises(ConfigError, match="trackingUris"):
        load_policy(path)
    path.write_bytes(b"images: [caf\xe9/]\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_policy(path)
    path.write_text("")
    assert load_policy(path) == ChildPolicy()
    path.write_text("max_trials: 5\n")  # the file's keys are the chart's (camelCase)
    with pytest.raises(ConfigError, match="max_trials: unknown field"):
        load_policy(path)
