"""``actsearch-ctl operator``: the controller of a cluster, as the chart's Deployment and the
image run it. Every ActivationSearch in the watched namespaces gets a search loop
(``orchestrator.cluster.operator``); this module only reads the options and the defaults file, builds
the API client and hands them over.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import click

from orchestrator.cli.errors import expected_errors
from orchestrator.errors import ConfigError
from orchestrator.log_setup import configure_logging, group_verbosity

log = logging.getLogger(__name__)


@click.command()
@click.option("-n", "--namespace", "namespaces", multiple=True,
              help="Namespace to watch (repeatable; default: the controller's own).")
@click.option("-A", "--all-namespaces", is_flag=True, help="Watch every namespace (needs a ClusterRole).")
@click.option("--tracking-uri", envvar="MLFLOW_TRACKING_URI", default=None,
              help="MLflow server of searches whose spec names none [env MLFLOW_TRACKING_URI].")
@click.option("--storage-uri", envvar="ACTSEARCH_STORAGE_URI", default=None,
              help="s3://bucket/prefix, the root of every search's checkpoints: a search's go to "
                   "<prefix>/<namespace>/<name>, and its storage.uri may only name a folder "
                   "below that [env ACTSEARCH_STORAGE_URI].")
@click.option("--s3-endpoint", envvar="MLFLOW_S3_ENDPOINT_URL", default=None,
              help="S3-compatible endpoint (MinIO), also passed to children [env MLFLOW_S3_ENDPOINT_URL].")
@click.option("--instance", envvar="ACTSEARCH_INSTANCE", default=None,
              help="Label children app.kubernetes.io/instance=INSTANCE (the chart sets its "
                   "release name; its NetworkPolicy lets only those reach MLflow and MinIO) "
                   "[env ACTSEARCH_INSTANCE].")
@click.option("--poll-interval", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
              help="Seconds between two ticks of a search.")
@click.option("--tick-workers", type=click.IntRange(1, 256), default=8, show_default=True,
              help="Threads running searches' ticks: how many ticks run at once, not how many "
                   "searches (any number; a sleeping search holds no thread).")
@click.option("--lease-seconds", type=click.FloatRange(min=5), default=60.0, show_default=True,
              help="A search's Lease lasts this long without renewal before another operator "
                   "takes the search over (one operator drives a search).")
@click.option("--cache-scope", type=click.Choice(["namespace", "installation"]),
              envvar="ACTSEARCH_CACHE_SCOPE", default="namespace", show_default=True,
              help="Whose results the evaluation cache reuses: those of searches in the same "
                   "namespace, or of every namespace of this installation; only results sealed "
                   "with $ACTSEARCH_TRUST_KEY (without it, none) [env ACTSEARCH_CACHE_SCOPE].")
@click.option("--liveness-port", type=click.IntRange(1, 65535), default=None,
              help="Serve /healthz on this port.")
@click.option("--defaults", "defaults_file", type=click.Path(exists=True, dir_okay=False),
              default=None,
              help="YAML spec fragment merged under every search's spec (the chart's ConfigMap); "
                   "its tracking.uri, storage.uri and storage.endpoint_url are the defaults of "
                   "the three options above, which win when given.")
@click.option("--policy", "policy_file", type=click.Path(exists=True, dir_okay=False),
              default=None,
              help="YAML policy for searches (the chart's ConfigMap): the images, Secrets, "
                   "priority classes, tolerations, node labels, resources, endpoints and sizes a "
                   "search may ask for beyond the defaults; without it, only the defaults.")
@click.option("--kubeconfig", type=click.Path(dir_okay=False), default=None,
              help="kubeconfig outside a cluster (default: $KUBECONFIG, else ~/.kube/config).")
@click.option("--json-logs", is_flag=True, help="Log lines as JSON.")
@click.option("-v", "--verbose", count=True,
              help="More log output (-v INFO, -vv DEBUG), added to actsearch-ctl's own -v.")
@expected_errors
def operator(namespaces: tuple[str, ...], all_namespaces: bool, tracking_uri: str | None,
             storage_uri: str | None, s3_endpoint: str | None, instance: str | None,
             poll_interval: float, tick_workers: int, lease_seconds: float, cache_scope: str,
             liveness_port: int | None,
             defaults_file: str | None, policy_file: str | None, kubeconfig: str | None,
             json_logs: bool, verbose: int) -> None:
    """Run the controller: every ActivationSearch in the watched namespaces gets a search loop,
    resumed from its checkpoint after a restart."""
    from orchestrator.adapters.kube import current_namespace, load_api_client
    from orchestrator.cluster.incluster import ClusterDefaults, split_defaults
    from orchestrator.cluster.operator import OperatorConfig, run
    from orchestrator.cluster.policy import ChildPolicy, Given, load_policy
    from orchestrator.trust import KEY_ENV, TRUST_SECRET_ENV, key_from_env
    from orchestrator.trust import cache_scope as parse_scope

    configure_logging(group_verbosity() + verbose, json_logs, replace=True)
    if all_namespaces and namespaces:
        raise ConfigError("give either --namespace or --all-namespaces, not both")
    spec_defaults: dict[str, Any] = {}
    if defaults_file:
        spec_defaults, own = split_defaults(load_defaults(defaults_file))
        tracking_uri = tracking_uri or own["tracking_uri"]
        storage_uri = storage_uri or own["storage_uri"]
        s3_endpoint = s3_endpoint or own["s3_endpoint"]
    if storage_uri is not None and not storage_uri.startswith("s3://"):
        raise ConfigError(f"--storage-uri must look like s3://bucket/prefix; got {storage_uri!r}")
    policy = load_policy(policy_file) if policy_file else ChildPolicy()
    Given.of(spec_defaults)  # a defaults file whose children's settings are invalid stops here
    trust_key = key_from_env()
    if trust_key is None:
        log.warning("$%s is not set: results are not sealed, and the evaluation cache reuses "
                    "none (every search trains every function itself)", KEY_ENV)
    api_client = load_api_client(kubeconfig)
    watched = () if all_namespaces else (namespaces or (current_namespace(kubeconfig),))
    config = OperatorConfig(
        api_client=api_client,
        defaults=ClusterDefaults(tracking_uri=tracking_uri, storage_uri=storage_uri,
                                 s3_endpoint=s3_endpoint, instance=instance,
                                 poll_interval=poll_interval, spec_defaults=spec_defaults,
                                 policy=policy, trust_key=trust_key,
                                 cache_scope=parse_scope(cache_scope),
                                 trust_secret=os.environ.get(TRUST_SECRET_ENV) or None),
        namespaces=tuple(watched), clusterwide=all_namespaces, liveness_port=liveness_port,
        tick_workers=tick_workers, lease_seconds=lease_seconds,
    )
    log.info("watching ActivationSearches in %s",
             "all namespaces" if all_namespaces else ", ".join(watched))
    run(config)


def load_defaults(path: str) -> dict[str, Any]:
    """The defaults file: a mapping of search-spec fields (checked against each search), read
    strictly: UTF-8, and no key given twice (which YAML forbids and PyYAML would let the last
    one win)."""
    from orchestrator.cluster.crd import defaults_the_crd_overrides
    from orchestrator.spec import SearchSpec
    from orchestrator.validation import read_yaml

    try:
        data = read_yaml(path) or {}
    except ConfigError as e:
        raise ConfigError(f"--defaults: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"--defaults {path} must be a mapping of search-spec fields")
    unknown = sorted(set(data) - set(SearchSpec.model_fields) | ({"name"} & set(data)))
    if unknown:
        raise ConfigError(f"--defaults {path}: unknown or per-search field(s) {', '.join(unknown)}; "
                          f"allowed: {', '.join(k for k in SearchSpec.model_fields if k != 'name')}")
    overridden = defaults_the_crd_overrides(data)
    if overridden:
        raise ConfigError(
            f"--defaults {path}: {', '.join(overridden)} would never apply: the CRD gives "
            "these fields a default of its own, which the API server stores in every search; "
            "leave them out of the defaults file (searches can set them)")
    return data
