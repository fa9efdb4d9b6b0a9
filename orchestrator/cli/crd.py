"""``actsearch-ctl crd``: the ActivationSearch CRD of this version, shown or applied.

Helm installs a chart's ``crds/`` once and never upgrades or deletes them, so after ``helm
upgrade`` the cluster still serves the CRD of the first install: a field added since is pruned
from every object (or refused by kubectl's strict field validation). ``crd apply`` creates the
CRD, or replaces the one served with this version's (existing objects stay: the one served
version keeps being the storage version), and prints what it did, as ``kubectl apply`` does.
"""

from __future__ import annotations

from typing import Any

import click

from orchestrator.cli.cluster import cluster_options, connect
from orchestrator.cli.errors import expected_errors

CRD_RESOURCE = "customresourcedefinition.apiextensions.k8s.io"


def differs(current: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """The parts of the served CRD that this version's would change (top-level keys of
    ``spec``, and ``metadata.labels``): empty when it is current."""
    changed = [f"spec.{k}" for k, v in wanted["spec"].items()
               if (current.get("spec") or {}).get(k) != v]
    labels = (current.get("metadata") or {}).get("labels") or {}
    if any(labels.get(k) != v for k, v in (wanted["metadata"].get("labels") or {}).items()):
        changed.append("metadata.labels")
    return changed


@click.group()
def crd() -> None:
    """The ActivationSearch CRD of this version: show it, or apply it to the cluster (Helm
    never upgrades CRDs; run `actsearch-ctl crd apply` after `helm upgrade`)."""


@crd.command()
def show() -> None:
    """Print the CRD as YAML (the file `kubectl apply -f -` takes)."""
    from orchestrator.cluster.crd import render

    click.echo(render(), nl=False)


@crd.command()
@cluster_options
@click.option("--dry-run", is_flag=True, help="Say what would change; change nothing.")
@expected_errors
def apply(namespace: str | None, kubeconfig: str | None, context: str | None,
          dry_run: bool) -> None:
    """Create the CRD, or replace the one the cluster serves with this version's. Existing
    searches stay; needs the rights of a cluster administrator (get, create and update of
    customresourcedefinitions)."""
    from orchestrator.cluster.crd import CRD_NAME, crd_manifest

    cluster, _ = connect(kubeconfig, context, namespace)
    wanted = crd_manifest()
    current = cluster.read_crd(CRD_NAME)
    suffix = " (dry run)" if dry_run else ""
    if current is None:
        if not dry_run:
            cluster.create_crd(wanted)
        click.echo(f"{CRD_RESOURCE}/{CRD_NAME} created{suffix}")
        return
    changed = differs(current, wanted)
    if not changed:
        click.echo(f"{CRD_RESOURCE}/{CRD_NAME} unchanged")
        return
    if not dry_run:
        meta = current.get("metadata") or {}
        body = {**wanted, "metadata": {
            **wanted["metadata"], "resourceVersion": meta.get("resourceVersion"),
            "labels": {**(meta.get("labels") or {}), **wanted["metadata"]["labels"]},
            "annotations": meta.get("annotations") or {}}}
        if not body["metadata"]["annotations"]:
            del body["metadata"]["annotations"]
        cluster.replace_crd(body)
    click.echo(f"{CRD_RESOURCE}/{CRD_NAME} configured{suffix}: {', '.join(changed)} replaced "
               "with this version's; existing ActivationSearches are kept")

