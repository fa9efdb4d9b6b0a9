"""The chart renders valid, least-privilege, restricted objects for every configuration."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from orchestrator.cluster.crd import validate_cr
from orchestrator.cluster.incluster import spec_of, split_defaults
from orchestrator.cluster.policy import ChildPolicy, Given, check, load_policy
from orchestrator.cluster.rbac import RULES
from orchestrator.spec import KubernetesBackendSpec, parse_spec
from tests.chart.conftest import (
    CHART,
    FULL_VALUES,
    NAMESPACE,
    RELEASE,
    SKIP_ENV,
    Helm,
    find_tool,
    named,
    of_kind,
    pod_specs,
)

K8S_VERSION = "1.35.0"
RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
EXTERNAL = ("--set", "mlflow.enabled=false", "--set", "tracking.uri=http://mlflow.example:5000",
            "--set", "minio.enabled=false", "--set", "s3.endpoint=https://s3.example.com")


def defaults_of(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return yaml.safe_load(named(objects, "ConfigMap", "-defaults")["data"]["defaults.yaml"])


def container(objects: list[dict[str, Any]], kind: str, suffix: str) -> dict[str, Any]:
    return named(objects, kind, suffix)["spec"]["template"]["spec"]["containers"][0]


def env_of(c: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c.get("env", [])}


# --- lint and upstream schemas -------------------------------------------------------------

def test_a_missing_helm_fails_the_run_instead_of_skipping(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HELM", "/nonexistent/helm")
    monkeypatch.delenv(SKIP_ENV, raising=False)
    with pytest.raises(pytest.fail.Exception, match="helm not found: run `make tools`"):
        find_tool("helm")
    monkeypatch.setenv(SKIP_ENV, "1")
    with pytest.raises(pytest.skip.Exception):
        find_tool("helm")


@pytest.mark.parametrize("values", [[], ["--values", str(FULL_VALUES)], list(EXTERNAL)],
                         ids=["default", "full", "external"])
def test_helm_lint_passes_strictly(helm: Helm, values: list[str]) -> None:
    done = helm.run("lint", "--strict", str(CHART), *values)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_rendered_object_passes_the_upstream_kubernetes_schema(rendered: list[dict[str, Any]]) -> None:
    for obj in rendered:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)  # raises on an unknown kind too


def test_the_external_configuration_renders_valid_objects(helm: Helm) -> None:
    objects = helm.objects(*EXTERNAL)
    for obj in objects:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    assert {o["kind"] for o in objects} == {"ServiceAccount", "Role", "RoleBinding", "ConfigMap", "Deployment",
                                            "Pod", "NetworkPolicy",
                                            "Secret"}  # the key that seals results (trust-secret.yaml)


def test_every_object_carries_the_standard_labels(rendered: list[dict[str, Any]]) -> None:
    for obj in rendered:
        labels = obj["metadata"]["labels"]
        assert {"app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component",
                "app.kubernetes.io/part-of"} <= labels.keys(), obj["metadata"]["name"]


# --- pod security ---------------------------------------------------------------------------

def test_every_pod_meets_the_restricted_pod_security_standard(rendered: list[dict[str, Any]]) -> None:
    pods = pod_specs(rendered)
    assert len(pods) >= 2
    for name, pod in pods:
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert not {"hostNetwork", "hostPID", "hostIPC"} & pod.keys(), name
        assert all("hostPath" not in v for v in pod.get("volumes", [])), name
        for c in pod["containers"] + pod.get("initContainers", []):
            assert c["securityContext"] == RESTRICTED_CONTAINER, f"{name}/{c['name']}"
            assert c.get("resources"), f"{name}/{c['name']} has no resources"


def test_every_read_only_container_gets_a_writable_tmp(rendered: list[dict[str, Any]]) -> None:
    for name, pod in pod_specs(rendered):
        empty_dirs = {v["name"] for v in pod.get("volumes", []) if "emptyDir" in v}
        for c in pod["containers"]:
            mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
            assert mounts.get("/tmp") in empty_dirs, f"{name}/{c['name']}"


def test_the_chart_runs_the_controller_image_as_the_user_it_was_built_with(
    default_objects: list[dict[str, Any]],
) -> None:
    dockerfile = (CHART.parents[1] / "Dockerfile").read_text()
    uid = int(re.findall(r"^USER (\d+)", dockerfile, re.M)[-1])
    image = container(default_objects, "Deployment", "-controller")["image"]
    for name, pod in pod_specs(default_objects):
        if pod["containers"][0]["image"] == image:
            assert pod["securityContext"]["runAsUser"] == uid, name
    assert re.search(r'^ENTRYPOINT \["actsearch-ctl"\]', dockerfile, re.M)


def test_only_the_controller_mounts_an_api_token(rendered: list[dict[str, Any]]) -> None:
    for name, pod in pod_specs(rendered):
        if name.endswith("-controller"):
            assert pod.get("automountServiceAccountToken", True) is True
        else:
            assert pod["automountServiceAccountToken"] is False, name


# --- RBAC -----------------------------------------------------------------------------------

def test_each_watched_namespace_gets_exactly_the_controllers_rules(
    full_objects: list[dict[str, Any]], full_values: dict[str, Any],
) -> None:
    namespaces = [NAMESPACE, *full_values["controller"]["extraNamespaces"]]
    roles = of_kind(full_objects, "Role")
    assert [r["metadata"]["namespace"] for r in roles] == namespaces
    for role in roles:
        assert role["rules"] == RULES
    sa = full_values["controller"]["serviceAccount"]["name"]
    for binding, role in zip(of_kind(full_objects, "RoleBinding"), roles, strict=True):
        assert binding["metadata"]["namespace"] == role["metadata"]["namespace"]
        assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                      "name": role["metadata"]["name"]}
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa, "namespace": NAMESPACE}]


def test_the_default_role_is_rules_and_nothing_is_cluster_wide(rendered: list[dict[str, Any]]) -> None:
    assert next(r["rules"] for r in of_kind(rendered, "Role")) == RULES
    assert not of_kind(rendered, "ClusterRole") and not of_kind(rendered, "ClusterRoleBinding")
    for role in of_kind(rendered, "Role"):
        for rule in role["rules"]:
            assert "secrets" not in rule["resources"] and "*" not in rule["verbs"] + rule["resources"]


def test_children_get_a_tokenless_service_account_bound_to_nothing(
    full_objects: list[dict[str, Any]], full_values: dict[str, Any],
) -> None:
    name = full_values["children"]["serviceAccount"]["name"]
    child_sas = [sa for sa in of_kind(full_objects, "ServiceAccount") if sa["metadata"]["name"] == name]
    assert [sa["metadata"]["namespace"] for sa in child_sas] == [NAMESPACE, *full_values["controller"]["extraNamespaces"]]
    assert all(sa["automountServiceAccountToken"] is False for sa in child_sas)
    bound = {s["name"] for b in of_kind(full_objects, "RoleBinding") for s in b["subjects"]}
    assert name not in bound
    assert defaults_of(full_objects)["backend"]["kubernetes"]["service_account"] == name


# --- the controller -------------------------------------------------------------------------

def test_the_controller_runs_the_operator_on_every_watched_namespace(
    full_objects: list[dict[str, Any]], full_values: dict[str, Any],
) -> None:
    deployment = named(full_objects, "Deployment", "-controller")
    assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"] == {"type": "Recreate"}
    pod = deployment["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert c["command"] == ["actsearch-ctl"]
    port = full_values["controller"]["healthPort"]
    assert c["args"] == ["-vv", "operator", f"--namespace={NAMESPACE}", "--namespace=team-a", "--namespace=team-b",
                         "--defaults=/etc/actsearch/defaults.yaml", "--policy=/etc/actsearch/policy.yaml",
                         f"--liveness-port={port}", "--cache-scope=namespace"]
    assert c["ports"] == [{"name": "health", "containerPort": port}]
    assert c["livenessProbe"]["httpGet"] == c["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert pod["serviceAccountName"] == full_values["controller"]["serviceAccount"]["name"]
    for key in ("nodeSelector", "tolerations", "affinity", "priorityClassName"):
        assert pod[key] == full_values["controller"][key]
    assert c["resources"] == full_values["controller"]["resources"]
    assert c["image"] == "registry.example.com/actsearch/actsearch:0.1.0-rc1"


def test_the_default_controller_logs_state_changes_and_watches_its_own_namespace(
    default_objects: list[dict[str, Any]],
) -> None:
    args = container(default_objects, "Deployment", "-controller")["args"]
    assert args[:3] == ["-v", "operator", f"--namespace={NAMESPACE}"]


def test_the_defaults_given_to_searches_are_a_valid_spec_fragment(rendered: list[dict[str, Any]]) -> None:
    fragment = defaults_of(rendered)
    assert validate_cr({"apiVersion": "actsearch.io/v1alpha1", "kind": "ActivationSearch",
                        "metadata": {"name": "probe"}, "spec": fragment}) == []
    spec = parse_spec({**fragment, "name": "probe"})
    assert spec.backend.kind == "kubernetes" and spec.storage.uri.startswith("s3://")


def test_default_children_use_the_trainer_image_the_model_defaults_to(default_objects: list[dict[str, Any]]) -> None:
    assert defaults_of(default_objects)["backend"]["kubernetes"]["image"] == KubernetesBackendSpec().image


def test_child_scheduling_defaults_come_from_the_values(
    full_objects: list[dict[str, Any]], full_values: dict[str, Any],
) -> None:
    k8s = defaults_of(full_objects)["backend"]["kubernetes"]
    children = full_values["children"]
    assert k8s["queue_name"] == children["queueName"]
    assert k8s["node_selector"] == children["nodeSelector"]
    assert k8s["tolerations"] == children["tolerations"]
    assert k8s["priority_class"] == children["priorityClassName"]
    assert k8s["image"] == f"{children['image']['repository']}:{children['image']['tag']}"


def test_the_defaults_point_at_the_bundled_services(full_objects: list[dict[str, Any]]) -> None:
    defaults = defaults_of(full_objects)
    for key, suffix in ((defaults["tracking"]["uri"], "-mlflow"), (defaults["storage"]["endpoint_url"], "-minio")):
        service = named(full_objects, "Service", suffix)
        assert key == (f"http://{service['metadata']['name']}.{NAMESPACE}.svc:"
                       f"{service['spec']['ports'][0]['port']}")
    assert defaults["storage"]["uri"] == "s3://actsearch-full/ckpt"
    assert defaults["tracking"]["experiment"] == "paper-scale"


def policy_of(objects: list[dict[str, Any]], tmp_path: Path) -> ChildPolicy:
    """The rendered policy, read as the operator reads its --policy file."""
    path = tmp_path / "policy.yaml"
    path.write_text(named(objects, "ConfigMap", "-defaults")["data"]["policy.yaml"])
    return load_policy(path)


def test_the_values_policy_reaches_the_operator_as_a_valid_policy_file(
    full_objects: list[dict[str, Any]], full_values: dict[str, Any], tmp_path: Path,
) -> None:
    policy, values = policy_of(full_objects, tmp_path), full_values["policy"]
    assert policy.images == values["images"] and policy.secrets == values["secrets"]
    assert policy.priority_classes == values["priorityClasses"]
    assert [t.model_dump(exclude_none=True) for t in policy.tolerations] == values["tolerations"]
    assert policy.node_selectors == {"nvidia.com/gpu.present": ["true"], **values["nodeSelectors"]}
    # helm merges maps: the chart's other maxima (ephemeral-storage) stay unless set to null
    assert policy.max_resources == {"ephemeral-storage": "100Gi",
                                    **{k: str(v) for k, v in values["maxResources"].items()}}
    assert (policy.max_backoff_limit, policy.max_parallelism, policy.max_trials) == (3, 16, 1_000_000)
    assert policy.tracking_uris == values["trackingUris"]
    assert policy.storage_uris == values["storageUris"] and policy.s3_endpoints == values["s3Endpoints"]


def test_the_default_policy_allows_the_charts_own_children_and_nothing_more(
    default_objects: list[dict[str, Any]], tmp_path: Path,
) -> None:
    """The chart's defaults and policy as the operator reads them: a search silent on what its
    children run as is within the policy; one asking for anything more is refused, by field."""
    fragment = defaults_of(default_objects)
    spec_defaults, own = split_defaults(fragment)
    given = Given.of(spec_defaults, own["tracking_uri"], own["storage_uri"], own["s3_endpoint"])
    policy = policy_of(default_objects, tmp_path)
    assert check(policy, parse_spec({**spec_defaults, "name": "plain"}), given) == []
    asks = {
        "backend.kubernetes.image": {"image": "docker.io/library/busybox:1"},
        "backend.kubernetes.credentials_secret": {"credentials_secret": "mlflow-db"},
        "backend.kubernetes.priority_class": {"priority_class": "system-node-critical"},
        "backend.kubernetes.gpus": {"gpus": 9},
        "backend.kubernetes.service_account": {"service_account": f"{RELEASE}-actsearch-controller"},
        "backend.kubernetes.tolerations[0]": {"tolerations": [{"operator": "Exists"}]},
    }
    for field, ask in asks.items():
        k8s = {**spec_defaults["backend"]["kubernetes"], **ask}
        spec = parse_spec({**spec_defaults, "name": "greedy",
                           "backend": {"kind": "kubernetes", "kubernetes": k8s}})
        assert [v.field for v in check(policy, spec, given)] == [field]
    foreign = parse_spec({**spec_defaults, "name": "elsewhere",
                          "tracking": {"uri": "http://mlflow.other-team.svc:5000"}})
    assert [v.field for v in check(policy, foreign, given)] == ["tracking.uri"]
    own_server = parse_spec({**spec_defaults, "name": "mine", "tracking": {"uri": own["tracking_uri"]}})
    assert check(policy, own_server, given) == []


@pytest.mark.parametrize("example", ["search-cpu.yaml", "search-paper.yaml"])
def test_the_example_searches_fit_the_charts_default_policy(
    default_objects: list[dict[str, Any]], tmp_path: Path, example: str,
) -> None:
    """The examples a user applies first are not refused by the chart they install first (GPU
    children tolerate the GPU operator's taint and select its label by default)."""
    obj = yaml.safe_load((CHART.parents[1] / "examples" / example).read_text())
    obj["metadata"]["namespace"] = NAMESPACE
    spec_defaults, own = split_defaults(defaults_of(default_objects))
    given = Given.of(spec_defaults, own["tracking_uri"], own["storage_uri"], own["s3_endpoint"])
    assert check(policy_of(default_objects, tmp_path), spec_of(obj, spec_defaults), given) == []


def test_a_defaults_change_restarts_the_controller(helm: Helm) -> None:
    def checksum(*args: str) -> str:
        deployment = named(helm.objects(*args), "Deployment", "-controller")
        return deployment["spec"]["template"]["metadata"]["annotations"]["checksum/defaults"]

    assert checksum() == checksum()
    assert checksum() != checksum("--set", "children.queueName=other")
    assert checksum() != checksum("--set", "policy.maxTrials=50")  # the policy is in it too


def test_the_controller_may_run_several_replicas_each_search_driven_through_a_lease(
        helm: Helm) -> None:
    objects = helm.objects("--set", "controller.replicas=3")
    assert named(objects, "Deployment", "-controller")["spec"]["replicas"] == 3
    role = named(objects, "Role", "-controller")
    assert {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
            "verbs": ["get", "create", "update"]} in role["rules"]


# --- MLflow, PostgreSQL, MinIO ---------------------------------------------------------------

def test_default_mlflow_keeps_sqlite_on_a_volume_and_artifacts_in_s3(default_objects: list[dict[str, Any]]) -> None:
    deployment = named(default_objects, "Deployment", "-mlflow")
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    c = deployment["spec"]["template"]["spec"]["containers"][0]
    assert env_of(c)["MLFLOW_BACKEND_STORE_URI"] == "sqlite:////data/mlflow.db"
    assert {"mountPath": "/data", "name": "data"} in c["volumeMounts"]
    claim = named(default_objects, "PersistentVolumeClaim", "-mlflow")["metadata"]["name"]
    assert {"name": "data", "persistentVolumeClaim": {"claimName": claim}} in deployment["spec"]["template"]["spec"]["volumes"]
    assert "--artifacts-destination=s3://actsearch/mlflow" in c["args"]
    assert env_of(c)["MLFLOW_S3_ENDPOINT_URL"].endswith(f"-minio.{NAMESPACE}.svc:9000")


def test_mlflow_accepts_its_service_names_as_host_headers(full_objects: list[dict[str, Any]]) -> None:
    c = container(full_objects, "Deployment", "-mlflow")
    hosts = env_of(c)["MLFLOW_SERVER_ALLOWED_HOSTS"].split(",")
    service = named(full_objects, "Service", "-mlflow")["metadata"]["name"]
    assert {"localhost:*", f"{service}:*", f"{service}.{NAMESPACE}.svc:*",
            f"{service}.{NAMESPACE}.svc.cluster.local:*", "mlflow.example.com"} <= set(hosts)


def test_bundled_postgresql_backs_mlflow_from_a_secret(full_objects: list[dict[str, Any]]) -> None:
    sts = named(full_objects, "StatefulSet", "-postgresql")
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "20Gi"
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"] == "fast-ssd"
    secret = named(full_objects, "Secret", "-postgresql")
    env = env_of(container(full_objects, "Deployment", "-mlflow"))
    assert env["POSTGRES_PASSWORD"] == {"secretKeyRef": {"name": secret["metadata"]["name"], "key": "password"}}
    service = named(full_objects, "Service", "-postgresql")["metadata"]["name"]
    assert env["MLFLOW_BACKEND_STORE_URI"] == f"postgresql://mlflow_user:$(POSTGRES_PASSWORD)@{service}:5432/mlflow_runs"
    assert not [p for p in of_kind(full_objects, "PersistentVolumeClaim") if p["metadata"]["name"].endswith("-mlflow")]
    assert named(full_objects, "Deployment", "-mlflow")["spec"]["replicas"] == 2


def test_an_external_database_uri_is_read_from_its_secret(helm: Helm) -> None:
    objects = helm.objects("--set", "mlflow.backendStore.type=external",
                           "--set", "mlflow.backendStore.external.secretName=mlflow-db")
    env = env_of(container(objects, "Deployment", "-mlflow"))
    assert env["MLFLOW_BACKEND_STORE_URI"] == {"secretKeyRef": {"name": "mlflow-db", "key": "uri"}}
    assert not of_kind(objects, "StatefulSet")
    assert [p["metadata"]["name"] for p in of_kind(objects, "PersistentVolumeClaim")] == [f"{RELEASE}-actsearch-minio"]


def test_minio_credentials_are_copied_into_the_watched_namespaces_when_asked(full_objects: list[dict[str, Any]]) -> None:
    """values-full.yaml sets s3.copySecretToNamespaces (tests/chart/test_credentials.py checks
    the default: the release namespace only); children never read it either way."""
    secrets = [s for s in of_kind(full_objects, "Secret") if s["metadata"]["name"].endswith("-s3")]
    assert [s["metadata"]["namespace"] for s in secrets] == [NAMESPACE, "team-a", "team-b"]
    assert all(s["stringData"] == {"AWS_ACCESS_KEY_ID": "minio-admin",
                                   "AWS_SECRET_ACCESS_KEY": "another-fixed-password"} for s in secrets)
    env = env_of(container(full_objects, "Deployment", "-minio"))
    assert env["MINIO_ROOT_USER"]["secretKeyRef"]["name"] == secrets[0]["metadata"]["name"]
    assert defaults_of(full_objects)["backend"]["kubernetes"]["credentials_secret"] == "datasets-readonly"


def test_a_generated_minio_password_is_shared_by_all_its_copies(default_objects: list[dict[str, Any]]) -> None:
    secret = named(default_objects, "Secret", "-s3")
    assert len(secret["stringData"]["AWS_SECRET_ACCESS_KEY"]) == 32


def test_the_bucket_is_created_by_a_hook_after_install_and_upgrade(full_objects: list[dict[str, Any]]) -> None:
    job = named(full_objects, "Job", "-bucket")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "post-install,post-upgrade"
    c = job["spec"]["template"]["spec"]["containers"][0]
    assert env_of(c)["BUCKET"] == "actsearch-full"
    compile(c["args"][0], "bucket-hook", "exec")  # the inline script is valid Python


def test_helm_test_checks_tracking_and_storage(full_objects: list[dict[str, Any]], helm: Helm) -> None:
    pod = named(full_objects, "Pod", "-test")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    c = pod["spec"]["containers"][0]
    compile(c["args"][0], "helm-test", "exec")
    assert env_of(c)["MLFLOW_TRACKING_URI"] == defaults_of(full_objects)["tracking"]["uri"]
    assert not of_kind(helm.objects("--set", "tests.enabled=false"), "Pod")


def test_external_services_get_no_bundled_objects_and_no_invented_credentials(helm: Helm) -> None:
    objects = helm.objects(*EXTERNAL)
    assert [s["metadata"]["name"] for s in of_kind(objects, "Secret")] == ["rel-actsearch-trust"]
    assert not of_kind(objects, "Job")
    defaults = defaults_of(objects)
    assert defaults["tracking"]["uri"] == "http://mlflow.example:5000"
    assert defaults["storage"]["endpoint_url"] == "https://s3.example.com"
    assert "credentials_secret" not in defaults["backend"]["kubernetes"]
    assert "envFrom" not in container(objects, "Deployment", "-controller")


def test_an_existing_credentials_secret_is_used_by_the_controller_and_mlflow_not_children(helm: Helm) -> None:
    objects = helm.objects("--set", "s3.existingSecret=my-keys")
    assert [s["metadata"]["name"] for s in of_kind(objects, "Secret")] == ["rel-actsearch-trust"]
    assert container(objects, "Deployment", "-controller")["envFrom"] == [{"secretRef": {"name": "my-keys"}}]
    assert container(objects, "Deployment", "-mlflow")["envFrom"] == [{"secretRef": {"name": "my-keys"}}]
    assert "credentials_secret" not in defaults_of(objects)["backend"]["kubernetes"]


def test_the_install_notes_name_the_next_commands(helm: Helm) -> None:
    done = helm.run("install", RELEASE, str(CHART), "--dry-run=client", "--namespace", NAMESPACE)
    assert done.returncode == 0, done.stderr
    notes = done.stdout.split("NOTES:", 1)[1]
    for command in ("kubectl explain activationsearch.spec", f"kubectl -n {NAMESPACE} get activationsearches",
                    "actsearch-ctl submit", f"port-forward svc/{RELEASE}-actsearch-mlflow 5000:5000",
                    f"helm test {RELEASE}"):
        assert command in notes, command


# --- guards and the values schema -----------------------------------------------------------

GUARDS = [
    (["mlflow.enabled=false"], "mlflow.enabled is false but tracking.uri is empty"),
    (["tracking.uri=http://x:5000"], "tracking.uri is set while mlflow.enabled is true"),
    (["minio.enabled=false"], "minio.enabled is false but s3.endpoint is empty"),
    (["s3.endpoint=http://x:9000"], "s3.endpoint is set while minio.enabled is true"),
    (["mlflow.backendStore.type=external"], "mlflow.backendStore.external.secretName is empty"),
    (["mlflow.replicas=2"], "mlflow.replicas > 1 needs a shared database"),
    (["controller.serviceAccount.create=false"], "controller.serviceAccount.name is empty"),
    (["children.serviceAccount.create=false"], "children.serviceAccount.name is empty"),
]


@pytest.mark.parametrize("settings,message", GUARDS, ids=[m for _, m in GUARDS])
def test_conflicting_or_missing_options_fail_with_a_clear_message(
    helm: Helm, settings: list[str], message: str,
) -> None:
    args = [a for s in settings for a in ("--set", s)]
    done = helm.template(*args, check=False)
    assert done.returncode != 0
    assert message in done.stderr, done.stderr


@pytest.mark.parametrize("setting,message", [
    ("colour=blue", "additional properties 'colour' not allowed"),
    ("controller.replicas=0", "minimum"),
    ("controller.colour=blue", "additional properties 'colour' not allowed"),
    ("mlflow.backendStore.type=memory", "value must be one of"),
    ("controller.verbosity=5", "maximum"),
    ("controller.extraNamespaces[0]=Team_A", "does not match pattern"),
    ("s3.bucket=", "at '/s3/bucket': '' does not match pattern"),
    ("postgresql.password=p@ss/word", "at '/postgresql/password'"),
    ("policy.maxGpus=2", "additional properties 'maxGpus' not allowed"),
    ("policy.maxResources.memory=16GB", "at '/policy/maxResources/memory'"),
])
def test_the_values_schema_rejects_unknown_keys_and_bad_values(helm: Helm, setting: str, message: str) -> None:
    done = helm.template("--set", setting, check=False)
    assert done.returncode != 0
    assert message in done.stderr, done.stderr


def _schema_keys(schema: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted paths of every declared option (descending into inline objects, not $defs)."""
    keys = []
    for name, sub in schema.get("properties", {}).items():
        keys.append(f"{prefix}{name}")
        if "properties" in sub:
            keys += _schema_keys(sub, f"{prefix}{name}.")
    return keys


def test_every_declared_value_is_documented_by_a_comment() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    lines = (CHART / "values.yaml").read_text().splitlines()
    documented, stack = set(), []
    for i, line in enumerate(lines):
        m = re.match(r"^( *)([A-Za-z][\w.-]*):", line)
        if not m:
            continue
        depth = len(m.group(1)) // 2
        stack[depth:] = [m.group(2)]
        if i > 0 and lines[i - 1].lstrip().startswith("#"):
            documented.add(".".join(stack))
    missing = [k for k in _schema_keys(schema) if k not in documented]
    assert not missing, f"undocumented values: {missing}"


def test_the_key_that_seals_results_is_the_controllers_alone_and_kept_across_upgrades(
        helm: Helm) -> None:
    """The evaluation cache reuses only results sealed with this key (docs/kubernetes.md,
    "Isolation"): generated once into a Secret of the release namespace, read by the
    controller's Deployment alone, never given to children, and named to the operator so a
    search cannot name it as its children's credentials."""
    objects = helm.objects(*EXTERNAL, "--set", "controller.cacheScope=installation")
    (secret,) = of_kind(objects, "Secret")
    assert len(secret["stringData"]["ACTSEARCH_TRUST_KEY"]) >= 16
    c = container(objects, "Deployment", "-controller")
    assert "--cache-scope=installation" in c["args"]
    env = {e["name"]: e for e in c["env"]}
    assert env["ACTSEARCH_TRUST_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "rel-actsearch-trust", "key": "ACTSEARCH_TRUST_KEY", "optional": True}
    assert env["ACTSEARCH_TRUST_SECRET"]["value"] == "rel-actsearch-trust"
    assert "rel-actsearch-trust" not in json.dumps(defaults_of(objects))  # not the children's
    own = helm.objects(*EXTERNAL, "--set", "controller.trustKeySecret=my-key")
    assert not of_kind(own, "Secret")
    assert {e["name"]: e for e in container(own, "Deployment", "-controller")["env"]}[
        "ACTSEARCH_TRUST_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "my-key"
