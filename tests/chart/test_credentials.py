"""Least-privilege credentials in the chart: children never get the root keys, the S3 Secret
stays in the release namespace, no secret is on a command line, NetworkPolicies admit only this
release's pods to MLflow, MinIO and PostgreSQL, and MLflow's basic authentication is an option.

The chart is rendered by the real helm binary; the child Jobs the policies are checked against
are built by the backend's own ``job_manifest`` from the chart's defaults ConfigMap."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.backends.base import Launch
from orchestrator.backends.kubernetes import job_manifest
from orchestrator.spec import KubernetesBackendSpec
from tests.chart.conftest import (
    CHART,
    FULL_VALUES,
    NAMESPACE,
    RELEASE,
    Helm,
    named,
    of_kind,
    pod_specs,
)

EXTERNAL = ("--set", "mlflow.enabled=false", "--set", "tracking.uri=http://mlflow.example:5000",
            "--set", "minio.enabled=false", "--set", "s3.endpoint=https://s3.example.com")
RENDERS = {
    "default": (),
    "full": ("--values", str(FULL_VALUES)),
    "external-db": ("--set", "mlflow.backendStore.type=external",
                    "--set", "mlflow.backendStore.external.secretName=mlflow-db"),
    "auth-sqlite": ("--set", "mlflow.auth.enabled=true"),
    "existing-s3": ("--set", "s3.existingSecret=my-keys"),
    "external": EXTERNAL,
}


@pytest.fixture(scope="module", params=sorted(RENDERS))
def render(request: pytest.FixtureRequest, helm: Helm) -> list[dict[str, Any]]:
    return helm.objects(*RENDERS[request.param])


def defaults_of(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return yaml.safe_load(named(objects, "ConfigMap", "-defaults")["data"]["defaults.yaml"])


def workload(objects: list[dict[str, Any]], kind: str, suffix: str) -> dict[str, Any]:
    return named(objects, kind, suffix)["spec"]["template"]


def env_of(c: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c.get("env", [])}


def child_job(objects: list[dict[str, Any]], namespace: str = NAMESPACE) -> dict[str, Any]:
    """The Job the controller of this render would create for a child: the backend's own
    manifest, with the chart's defaults and the release the controller is told."""
    settings = KubernetesBackendSpec.model_validate(defaults_of(objects)["backend"]["kubernetes"])
    controller = workload(objects, "Deployment", "-controller")["spec"]["containers"][0]
    launch = Launch("s1-t00000", "run-1", {"expression": "relu(x)"},
                    {"MLFLOW_RUN_ID": "run-1", "MLFLOW_TRACKING_URI": "http://mlflow:5000"})
    return job_manifest(launch, "s1", namespace, settings, owner_uid="uid-1",
                        instance=env_of(controller)["ACTSEARCH_INSTANCE"])


# --- the S3 root keys ------------------------------------------------------------------------

def test_children_never_get_the_s3_keys_of_the_controller_or_minio(render: list[dict[str, Any]]) -> None:
    """Children log artifacts through MLflow's proxy: the only S3 key they may get is the
    read-only one of children.s3.existingSecret."""
    root = {s["metadata"]["name"] for s in of_kind(render, "Secret") if s["metadata"]["name"].endswith("-s3")}
    controller = workload(render, "Deployment", "-controller")["spec"]["containers"][0]
    root |= {e["secretRef"]["name"] for e in controller.get("envFrom", [])} - {
        defaults_of(render)["backend"]["kubernetes"].get("tracking_secret")}
    child = child_job(render)["spec"]["template"]["spec"]["containers"][0]
    given = {e["secretRef"]["name"] for e in child.get("envFrom", [])}
    assert not given & root, f"children get {given & root}"
    assert defaults_of(render)["backend"]["kubernetes"].get("credentials_secret") in (None, "datasets-readonly")


def test_the_s3_secret_stays_in_the_release_namespace_unless_asked(helm: Helm) -> None:
    watched = ("--set", "controller.extraNamespaces={team-a,team-b}")
    kept = [s["metadata"]["namespace"] for s in of_kind(helm.objects(*watched), "Secret")
            if s["metadata"]["name"].endswith("-s3")]
    assert kept == [NAMESPACE]
    copied = [s["metadata"]["namespace"] for s in of_kind(helm.objects(
        *watched, "--set", "s3.copySecretToNamespaces=true"), "Secret") if s["metadata"]["name"].endswith("-s3")]
    assert copied == [NAMESPACE, "team-a", "team-b"]


def test_a_read_only_secret_for_data_sets_reaches_children_only(helm: Helm) -> None:
    objects = helm.objects("--set", "children.s3.existingSecret=datasets-readonly")
    assert defaults_of(objects)["backend"]["kubernetes"]["credentials_secret"] == "datasets-readonly"
    child = child_job(objects)["spec"]["template"]["spec"]["containers"][0]
    assert child["envFrom"] == [{"secretRef": {"name": "datasets-readonly"}}]
    for name, pod in pod_specs(objects):
        for c in pod["containers"]:
            refs = {e.get("secretRef", {}).get("name") for e in c.get("envFrom", [])}
            assert "datasets-readonly" not in refs, name


# --- no secret on a command line ---------------------------------------------------------------

def _secret_env(c: dict[str, Any]) -> set[str]:
    """Names of a container's env variables whose value comes from a Secret, directly or by
    a $(VAR) reference to one (the kubelet expands those)."""
    secret: set[str] = set()
    changed = True
    while changed:
        changed = False
        for e in c.get("env", []):
            from_secret = "secretKeyRef" in (e.get("valueFrom") or {})
            refers = set(re.findall(r"\$\((\w+)\)", e.get("value", ""))) & secret
            if e["name"] not in secret and (from_secret or refers):
                secret.add(e["name"])
                changed = True
    return secret


def test_no_secret_is_expanded_into_a_command_line(render: list[dict[str, Any]]) -> None:
    """The kubelet expands $(VAR) in command and args into the process's argv, which `ps` and
    /proc/<pid>/cmdline show to anyone on the node: no variable from a Secret (or from envFrom
    of one, whose keys the chart cannot see) may be referenced there."""
    for name, pod in pod_specs(render):
        for c in pod["containers"] + pod.get("initContainers", []):
            plain = {e["name"] for e in c.get("env", []) if "value" in e} - _secret_env(c)
            words = [*c.get("command", []), *c.get("args", [])]
            referenced = {v for w in words for v in re.findall(r"\$\((\w+)\)", w)}
            assert referenced <= plain, f"{name}/{c['name']} puts {referenced - plain} on its command line"


def test_mlflow_reads_its_store_from_the_environment_and_proxies_artifacts(helm: Helm) -> None:
    objects = helm.objects(*RENDERS["full"])
    c = workload(objects, "Deployment", "-mlflow")["spec"]["containers"][0]
    script = (CHART / "files" / "mlflow-server.sh").read_text()
    assert c["command"] == ["sh", "-c", script, "mlflow-server"]
    assert "--serve-artifacts" in c["args"]
    assert not [a for a in c["args"] if a.startswith("--backend-store-uri")]
    assert "MLFLOW_BACKEND_STORE_URI" in _secret_env(c)


# --- NetworkPolicies ---------------------------------------------------------------------------

def _labels_match(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for ex in selector.get("matchExpressions") or []:
        value, op = labels.get(ex["key"]), ex["operator"]
        if (op == "In" and value not in ex["values"]) or (op == "NotIn" and value in ex["values"]) \
                or (op == "Exists" and value is None) or (op == "DoesNotExist" and value is not None):
            return False
    return True


def admits(policy: dict[str, Any], namespace: str, labels: dict[str, str]) -> bool:
    """Whether ``policy`` lets a pod with ``labels`` in ``namespace`` connect (NetworkPolicy
    semantics: a peer with only a podSelector means the policy's namespace; namespaces carry
    their kubernetes.io/metadata.name label)."""
    ns_labels = {"kubernetes.io/metadata.name": namespace}
    for rule in policy["spec"].get("ingress", []):
        for peer in rule["from"]:
            if "namespaceSelector" in peer:
                ns_ok = _labels_match(peer["namespaceSelector"], ns_labels)
            else:
                ns_ok = namespace == policy["metadata"]["namespace"]
            if ns_ok and _labels_match(peer.get("podSelector") or {}, labels):
                return True
    return False


def pod_labels(objects: list[dict[str, Any]], kind: str, suffix: str) -> dict[str, str]:
    obj = named(objects, kind, suffix)
    return obj["metadata"]["labels"] if kind == "Pod" else obj["spec"]["template"]["metadata"]["labels"]


def test_only_this_releases_pods_reach_mlflow_and_minio(full_objects: list[dict[str, Any]]) -> None:
    objects = full_objects
    policies = {p["metadata"]["name"].rsplit("-", 1)[-1]: p for p in of_kind(objects, "NetworkPolicy")
                if p["metadata"]["namespace"] == NAMESPACE}
    assert set(policies) == {"mlflow", "minio", "postgresql", "controller", "children", "test"}
    for target, kind in (("mlflow", "Deployment"), ("minio", "Deployment"), ("postgresql", "StatefulSet")):
        assert _labels_match(policies[target]["spec"]["podSelector"], pod_labels(objects, kind, f"-{target}"))
        assert policies[target]["spec"]["policyTypes"] == ["Ingress"]
    controller = pod_labels(objects, "Deployment", "-controller")
    mlflow = pod_labels(objects, "Deployment", "-mlflow")
    hook = pod_labels(objects, "Job", "-bucket")
    test_pod = pod_labels(objects, "Pod", "-test")
    children = {ns: child_job(objects, ns)["spec"]["template"]["metadata"]["labels"]
                for ns in (NAMESPACE, "team-a", "team-b")}
    stranger = {"app": "anything"}
    other_release = {**children[NAMESPACE], "app.kubernetes.io/instance": "another-release"}
    for target, allowed in (("mlflow", [controller, test_pod]),
                            ("minio", [controller, mlflow, hook, test_pod]),
                            ("postgresql", [mlflow])):
        policy = policies[target]
        assert all(admits(policy, NAMESPACE, labels) for labels in allowed), target
        assert not admits(policy, NAMESPACE, stranger), target
        assert not admits(policy, NAMESPACE, other_release), target
        assert not admits(policy, "elsewhere", controller), target
        kids = target != "postgresql"
        assert all(admits(policy, ns, labels) == kids for ns, labels in children.items()), target
        assert not admits(policy, "unwatched", children[NAMESPACE]), target
    assert not admits(policies["postgresql"], NAMESPACE, controller)
    # the pods that serve nothing are selected by a policy that admits nobody
    for target, labels in (("controller", controller), ("test", test_pod),
                           ("children", children[NAMESPACE])):
        assert _labels_match(policies[target]["spec"]["podSelector"], labels), target
        assert policies[target]["spec"]["policyTypes"] == ["Ingress"]
        assert "ingress" not in policies[target]["spec"], target
    for ns in ("team-a", "team-b"):
        guard = [p for p in of_kind(objects, "NetworkPolicy") if p["metadata"]["namespace"] == ns]
        assert len(guard) == 1 and _labels_match(guard[0]["spec"]["podSelector"], children[ns])
    assert admits(policies["mlflow"], "ingress-nginx", {"app": "ingress-controller"})  # extraMlflowFrom
    assert not admits(policies["minio"], "ingress-nginx", {"app": "ingress-controller"})


def test_network_policies_are_on_by_default_and_can_be_turned_off(
        default_objects: list[dict[str, Any]], helm: Helm) -> None:
    assert {p["metadata"]["name"] for p in of_kind(default_objects, "NetworkPolicy")} == {
        f"{RELEASE}-actsearch-{c}" for c in ("mlflow", "minio", "controller", "children", "test")}
    assert not of_kind(helm.objects("--set", "networkPolicy.enabled=false"), "NetworkPolicy")
    external = {p["metadata"]["name"] for p in of_kind(helm.objects(*EXTERNAL), "NetworkPolicy")}
    assert external == {f"{RELEASE}-actsearch-{c}" for c in ("controller", "children", "test")}


# --- MLflow's basic authentication ---------------------------------------------------------------

def test_basic_auth_gives_mlflow_an_admin_user_from_a_secret_that_every_client_reads(
        full_objects: list[dict[str, Any]]) -> None:
    objects = full_objects
    name = f"{RELEASE}-asearch-mlflow-auth"
    copies = [s for s in of_kind(objects, "Secret") if s["metadata"]["name"] == name]
    assert [s["metadata"]["namespace"] for s in copies] == [NAMESPACE, "team-a", "team-b"]
    assert len({s["stringData"]["MLFLOW_TRACKING_PASSWORD"] for s in copies}) == 1
    assert len(copies[0]["stringData"]["MLFLOW_TRACKING_PASSWORD"]) == 32
    assert copies[0]["stringData"]["MLFLOW_TRACKING_USERNAME"] == "admin"
    env = env_of(workload(objects, "Deployment", "-mlflow")["spec"]["containers"][0])
    assert env["ACTSEARCH_MLFLOW_AUTH"] == "basic"
    assert env["ACTSEARCH_MLFLOW_DEFAULT_PERMISSION"] == "NO_PERMISSIONS"
    assert env["MLFLOW_AUTH_ADMIN_USERNAME"] == {"secretKeyRef": {"name": name, "key": "MLFLOW_TRACKING_USERNAME"}}
    assert env["MLFLOW_AUTH_ADMIN_PASSWORD"] == {"secretKeyRef": {"name": name, "key": "MLFLOW_TRACKING_PASSWORD"}}
    flask = named(objects, "Secret", "-mlflow-server")
    assert env["MLFLOW_FLASK_SERVER_SECRET_KEY"]["secretKeyRef"]["name"] == flask["metadata"]["name"]
    assert defaults_of(objects)["backend"]["kubernetes"]["tracking_secret"] == name
    controller = workload(objects, "Deployment", "-controller")["spec"]["containers"][0]
    assert {"secretRef": {"name": name}} in controller["envFrom"]
    assert {"secretRef": {"name": name}} in named(objects, "Pod", "-test")["spec"]["containers"][0]["envFrom"]
    child = child_job(objects)["spec"]["template"]["spec"]["containers"][0]
    assert child["envFrom"] == [{"secretRef": {"name": "datasets-readonly"}}, {"secretRef": {"name": name}}]


def test_basic_auth_with_an_existing_secret_generates_none(helm: Helm) -> None:
    objects = helm.objects("--set", "mlflow.auth.enabled=true", "--set", "mlflow.auth.existingSecret=mlflow-admin")
    assert not [s for s in of_kind(objects, "Secret") if s["metadata"]["name"].endswith("-mlflow-auth")]
    assert defaults_of(objects)["backend"]["kubernetes"]["tracking_secret"] == "mlflow-admin"
    env = env_of(workload(objects, "Deployment", "-mlflow")["spec"]["containers"][0])
    assert env["MLFLOW_AUTH_ADMIN_PASSWORD"]["secretKeyRef"]["name"] == "mlflow-admin"


def test_without_basic_auth_nobody_gets_mlflow_credentials(default_objects: list[dict[str, Any]]) -> None:
    assert "tracking_secret" not in defaults_of(default_objects)["backend"]["kubernetes"]
    env = env_of(workload(default_objects, "Deployment", "-mlflow")["spec"]["containers"][0])
    assert "ACTSEARCH_MLFLOW_AUTH" not in env and "MLFLOW_AUTH_ADMIN_PASSWORD" not in env


def test_your_own_mlflows_credentials_come_from_tracking_existing_secret(helm: Helm) -> None:
    objects = helm.objects(*EXTERNAL, "--set", "tracking.existingSecret=mlflow-login")
    assert defaults_of(objects)["backend"]["kubernetes"]["tracking_secret"] == "mlflow-login"
    controller = workload(objects, "Deployment", "-controller")["spec"]["containers"][0]
    assert controller["envFrom"] == [{"secretRef": {"name": "mlflow-login"}}]


def test_the_start_script_hands_mlflow_the_store_uri_intact_and_off_its_command_line(
        tmp_path: Path) -> None:
    """The chart's MLflow start script with basic auth on, run by sh; a stand-in `mlflow` on
    PATH (the real server runs in tests/integration/test_mlflow_auth.py) records its arguments
    and keeps the config it was given, read back the way MLflow's basic-auth app reads it (a
    default ``configparser.ConfigParser``, which interpolates %): a password with %-escapes
    survives, and neither it nor the admin's is an argument."""
    import configparser

    uri = "postgresql://mlflow:p%40ss%25word@db:5432/mlflow"
    stub = tmp_path / "bin" / "mlflow"
    stub.parent.mkdir()
    stub.write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$OUT/args"\ncp "$MLFLOW_AUTH_CONFIG_PATH" "$OUT/auth.ini"\n')
    stub.chmod(0o755)
    script = (CHART / "files" / "mlflow-server.sh").read_text()
    env = {"PATH": f"{stub.parent}:/usr/bin:/bin", "OUT": str(tmp_path), "TMPDIR": str(tmp_path),
           "ACTSEARCH_MLFLOW_AUTH": "basic", "MLFLOW_BACKEND_STORE_URI": uri,
           "MLFLOW_AUTH_ADMIN_PASSWORD": "admin-secret"}
    subprocess.run(["sh", "-c", script, "mlflow-server", "--port=5000", "--serve-artifacts"],
                   env=env, check=True, timeout=30)
    args = (tmp_path / "args").read_text().split()
    assert args == ["server", "--port=5000", "--serve-artifacts", "--app-name", "basic-auth"]
    assert oct((tmp_path / "mlflow-basic-auth.ini").stat().st_mode & 0o777) == "0o600"
    config = configparser.ConfigParser()
    config.read(tmp_path / "auth.ini")
    assert config["mlflow"]["database_uri"] == uri
    assert config["mlflow"]["default_permission"] == "READ"
    assert config.getint("mlflow", "auth_cache_ttl_seconds") == 60
