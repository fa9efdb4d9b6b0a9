"""A third-party policy suite over what we deploy: checkov's Kubernetes checks run once over the
chart rendered with its main value combinations and over child Jobs built by the backend
(``job_manifest``, from the chart's own defaults). Every failure must be a check listed, with its
reason, in helm/actsearch/checkov-skips.yaml, and every listed skip must still match a failure.

checkov lives in its own virtual environment (tools/install-checkov.sh, run by `make tools`);
without it the test fails, as the helm tests do, unless ACTSEARCH_SKIP_CHECKOV=1 asks to skip.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.backends.base import Launch
from orchestrator.backends.kubernetes import job_manifest
from orchestrator.spec import KubernetesBackendSpec
from tests.chart.conftest import CHART, FULL_VALUES, NAMESPACE, ROOT, Helm, named

SKIPS = CHART / "checkov-skips.yaml"
SKIP_ENV = "ACTSEARCH_SKIP_CHECKOV"
RENDERS = {
    "default": (),
    "full": ("--values", str(FULL_VALUES)),
    "external": ("--set", "mlflow.enabled=false", "--set", "tracking.uri=http://mlflow.example:5000",
                 "--set", "minio.enabled=false", "--set", "s3.endpoint=https://s3.example.com",
                 "--set", "tracking.existingSecret=mlflow-login"),
    "external-db": ("--set", "mlflow.backendStore.type=external",
                    "--set", "mlflow.backendStore.external.secretName=mlflow-db",
                    "--set", "mlflow.auth.enabled=true"),
}


def checkov_binary() -> str:
    path = os.environ.get("CHECKOV") or str(ROOT / ".tools" / "checkov" / "bin" / "checkov")
    found = shutil.which(path)
    if found is None:
        if os.environ.get(SKIP_ENV) == "1":
            pytest.skip(f"checkov not found and {SKIP_ENV}=1")
        pytest.fail(f"checkov not found at {path}: run `make tools` (tools/install-checkov.sh) or "
                    f"set CHECKOV=/path/to/checkov; set {SKIP_ENV}=1 to skip deliberately",
                    pytrace=False)
    return found


def child_jobs(objects: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    """A single child's Job and a pack's, as the controller builds them from the chart's
    defaults (as a search that sets nothing of its own gets them)."""
    raw = yaml.safe_load(named(objects, "ConfigMap", "-defaults")["data"]["defaults.yaml"])
    settings = KubernetesBackendSpec.model_validate({
        **raw["backend"]["kubernetes"], "resources": {"requests": {"cpu": "2", "memory": "8Gi"},
                                                      "limits": {"memory": "16Gi"}}})
    single = Launch(f"{name}-t00000", "run-1", {"expression": "relu(x)", "child": {"steps": 100}},
                    {"MLFLOW_RUN_ID": "run-1", "MLFLOW_TRACKING_URI": raw["tracking"]["uri"]})
    pack = Launch(f"{name}-p00000", None, {"pack": [{"expression": "relu(x)"}, {"expression": "id(x)"}]},
                  {"MLFLOW_TRACKING_URI": raw["tracking"]["uri"]},
                  members=(f"{name}-t00001", f"{name}-t00002"))
    return [job_manifest(launch, name, NAMESPACE, settings, owner_uid="0000-uid", instance="rel")
            for launch in (single, pack)]


@pytest.fixture(scope="module")
def report(helm: Helm, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """checkov's JSON report over every render and the child Jobs, each in its own file."""
    binary = checkov_binary()
    scanned = tmp_path_factory.mktemp("checkov")
    objects_written = 0
    for render, args in RENDERS.items():
        objects = helm.objects(*args)
        jobs = child_jobs(objects, f"child-{render}")
        (scanned / f"{render}.yaml").write_text(yaml.safe_dump_all(objects, sort_keys=False))
        (scanned / f"{render}-children.yaml").write_text(yaml.safe_dump_all(jobs, sort_keys=False))
        objects_written += len(objects) + len(jobs)
    done = subprocess.run(
        [binary, "--directory", str(scanned), "--framework", "kubernetes", "--output", "json",
         "--skip-download"],  # no network: nothing is fetched from the vendor's platform
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"})
    assert done.returncode in (0, 1), f"checkov exited {done.returncode}:\n{done.stderr[-3000:]}"
    parsed = json.loads(done.stdout)
    result = parsed[0] if isinstance(parsed, list) else parsed
    return {**result, "objects_written": objects_written}


def skips() -> dict[str, dict[str, Any]]:
    return yaml.safe_load(SKIPS.read_text())


def _skipped(check: dict[str, Any], listed: dict[str, dict[str, Any]]) -> bool:
    entry = listed.get(check["check_id"])
    if entry is None:
        return False
    patterns = entry.get("resources")
    return patterns is None or any(re.match(p, check["resource"]) for p in patterns)


def test_checkov_passes_the_chart_and_the_child_jobs_but_for_the_listed_skips(report: dict[str, Any]) -> None:
    listed = skips()
    failures = [c for c in report["results"]["failed_checks"] if not _skipped(c, listed)]
    lines = [f"{c['check_id']} {c['check_name']}: {c['resource']} ({Path(c['file_path']).name})"
             for c in failures]
    assert not lines, ("checkov found (fix it, or list it in helm/actsearch/checkov-skips.yaml "
                       "with the reason):\n" + "\n".join(lines))


def test_every_skip_has_a_reason_and_still_matches_a_failure(report: dict[str, Any]) -> None:
    listed = skips()
    assert listed, "checkov-skips.yaml lists nothing"
    failed = report["results"]["failed_checks"]
    for check_id, entry in listed.items():
        assert len(str(entry.get("reason", "")).split()) >= 8, f"{check_id}: give the reason"
        hits = [c for c in failed if c["check_id"] == check_id and _skipped(c, {check_id: entry})]
        assert hits, f"{check_id} is listed as skipped but no longer fails: remove it from the list"


def test_checkov_read_every_object_and_checked_the_child_jobs(report: dict[str, Any]) -> None:
    summary = report["summary"]
    assert summary["parsing_errors"] == 0
    assert summary["resource_count"] >= report["objects_written"] - 8  # less the CRD-less kinds checkov ignores
    checked = report["results"]["passed_checks"] + report["results"]["failed_checks"]
    jobs = {c["resource"] for c in checked if c["resource"].startswith(f"Job.{NAMESPACE}.child-")}
    assert {f"Job.{NAMESPACE}.child-{r}-{k}" for r in RENDERS for k in ("t00000", "p00000")} <= jobs
    passed = {c["check_id"] for c in report["results"]["passed_checks"]
              if c["resource"].startswith(f"Job.{NAMESPACE}.child-")}
    # the restricted settings of a child, as checkov names them
    assert {"CKV_K8S_20", "CKV_K8S_22", "CKV_K8S_23", "CKV_K8S_28", "CKV_K8S_37",
            "CKV_K8S_31", "CKV_K8S_38"} <= passed


def test_children_run_as_the_trainer_images_user() -> None:
    """The child's explicit uid (checkov's CKV_K8S_40: a high uid) is the user the trainer image
    was built with, so its files stay readable."""
    from orchestrator.backends.kubernetes import CHILD_UID

    dockerfile = (ROOT / "trainer_image" / "Dockerfile").read_text()
    assert re.findall(r"^USER (\d+):(\d+)", dockerfile, re.M)[-1] == (str(CHILD_UID), str(CHILD_UID))
    assert CHILD_UID >= 10000
