"""The operator's defaults (the chart's ``children`` and ``tracking`` values) on what a real API
server stores: the fake prunes and defaults each ActivationSearch by the CRD the chart installs
(no real API server runs here), so a CRD ``default:`` lands in the stored object as a real one
would, indistinguishable from what the user wrote."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from orchestrator.adapters.kube import Cluster
from orchestrator.cluster.incluster import spec_of, split_defaults
from orchestrator.errors import ConfigError
from tests.k8s.conftest import NAMESPACE
from tests.k8s.fake_apiserver import FakeApiServer
from tests.k8s.harness import (
    Children,
    LockedTracker,
    defaults,
    operator_running,
    search_object,
    wait_for,
)

CHART_DEFAULTS = {  # the shape of the chart's ConfigMap (templates/configmap.yaml)
    "tracking": {"uri": "http://mlflow:5000", "experiment": "team-vision"},
    "storage": {"uri": "s3://bucket/ckpt", "endpoint_url": "http://minio:9000"},
    "backend": {"kind": "kubernetes", "kubernetes": {
        "image": "registry.internal/actsearch/trainer:0.1.0", "service_account": "rel-child",
        "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}]}},
}


def stored(api_client: Any, obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` created through the API and read back, as the operator receives it."""
    cluster = Cluster(api_client)
    cluster.create_search(NAMESPACE, obj)
    return cluster.get_search(NAMESPACE, obj["metadata"]["name"])


def test_the_charts_child_image_and_experiment_apply_to_a_search_that_does_not_set_them(
        apiserver: FakeApiServer, api_client: Any) -> None:
    spec_defaults, _ = split_defaults(CHART_DEFAULTS)
    obj = stored(api_client, search_object("plain", backend={"kind": "kubernetes"}))
    spec = spec_of(obj, spec_defaults)
    assert spec.backend.kubernetes.image == "registry.internal/actsearch/trainer:0.1.0"
    assert spec.backend.kubernetes.tolerations[0].key == "gpu"
    assert spec.backend.kubernetes.service_account == "rel-child"
    assert spec.tracking.experiment == "team-vision"
    assert obj["spec"]["strategy"]["failure_reward"] == 0.0  # the server did default the object


def test_what_the_user_wrote_beats_the_charts_defaults(apiserver: FakeApiServer, api_client: Any) -> None:
    spec_defaults, _ = split_defaults(CHART_DEFAULTS)
    obj = stored(api_client, search_object("own", tracking={"experiment": "mine"}, backend={
        "kind": "kubernetes", "kubernetes": {"image": "ghcr.io/actsearch/trainer:0.1.0",
                                             "tolerations": []}}))
    spec = spec_of(obj, spec_defaults)
    assert spec.backend.kubernetes.image == "ghcr.io/actsearch/trainer:0.1.0"
    assert spec.backend.kubernetes.tolerations == []
    assert spec.tracking.experiment == "mine"


def test_without_operator_defaults_a_stored_search_means_the_models_defaults(
        apiserver: FakeApiServer, api_client: Any) -> None:
    obj = stored(api_client, search_object("bare", backend={"kind": "kubernetes"}))
    spec = spec_of(obj)
    assert spec.backend.kubernetes.image == "ghcr.io/actsearch/trainer:0.1.0"
    assert spec.tracking.experiment == "actsearch"
    assert obj["spec"]["backend"]["kind"] == "kubernetes"


def test_the_operator_creates_jobs_with_the_charts_image_and_logs_to_the_charts_experiment(
        apiserver: FakeApiServer, api_client: Any, tmp_path: Path) -> None:
    tracker = LockedTracker()
    experiments: list[str] = []

    def make_tracker(uri: str, experiment: str, *_: Any) -> LockedTracker:
        experiments.append(experiment)
        return tracker

    spec_defaults, _ = split_defaults(CHART_DEFAULTS)
    cluster_defaults = dataclasses.replace(defaults(tracker, str(tmp_path)), spec_defaults=spec_defaults,
                                           make_tracker=make_tracker)
    apiserver.put_object("activationsearches", NAMESPACE, search_object(
        backend={"kind": "kubernetes", "kubernetes": {"gpus": 1}}))
    with Children(apiserver, tracker, hold=True).running(), \
            operator_running(api_client, cluster_defaults):
        jobs = wait_for(lambda: apiserver.items("jobs", NAMESPACE), 20, "a Job")
    (container,) = jobs[0]["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "registry.internal/actsearch/trainer:0.1.0"
    assert experiments and set(experiments) == {"team-vision"}


def test_a_defaults_file_that_the_crds_defaults_would_always_override_is_named() -> None:
    from orchestrator.cluster.crd import defaults_the_crd_overrides

    assert defaults_the_crd_overrides(CHART_DEFAULTS) == []
    assert defaults_the_crd_overrides({"budget": {"trials": 50}, "backend": {"kind": "local"},
                                       "parallelism": 1}) == ["budget.trials", "backend.kind"]


def test_the_operator_refuses_a_defaults_file_that_could_never_apply(tmp_path: Path) -> None:
    from orchestrator.cli.operator import load_defaults

    path = tmp_path / "defaults.yaml"
    path.write_text("budget: {trials: 50}\n")
    with pytest.raises(ConfigError, match=r"budget\.trials.*CRD"):
        load_defaults(str(path))
