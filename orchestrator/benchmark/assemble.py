"""A benchmark wired from its spec: the search loop's parts (MLflow tracker, checkpoint store,
local or Kubernetes backend), and the report logged to its parent run at the end.

Local backend: as ``actsearch-ctl run``, MLflow defaults to a SQLite file and checkpoints to a
directory under ``<workdir>/<name>/``. Kubernetes backend: ``actsearch-ctl benchmark`` runs the
loop on the machine it is started on and the cells as Jobs in the kubeconfig's namespace (or
``backend.kubernetes.namespace``); the spec must name an MLflow server the Jobs can reach.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from orchestrator.adapters.tracking import BENCHMARK, SEARCH, MlflowTracker
from orchestrator.backends.base import Backend
from orchestrator.benchmark.results import Results, plot, to_json, to_markdown, to_metrics
from orchestrator.benchmark.runner import CHECKPOINT_KEY, BenchmarkRunner
from orchestrator.benchmark.spec import BenchmarkSpec, TopSpec
from orchestrator.contract import Tag
from orchestrator.embedded import layout, local_backend, open_checkpoints, prefetch_data
from orchestrator.errors import ConfigError
from orchestrator.loop.leaderboard import Entry, rank

REPORT_MD, REPORT_JSON, REPORT_PNG = "benchmark.md", "benchmark.json", "benchmark.png"


def top_functions(tracking_uri: str, default_experiment: str, top: TopSpec) -> list[str]:
    """The expressions of a search's ``k`` best distinct functions (by validation accuracy)."""
    experiment = top.experiment or default_experiment
    runs = MlflowTracker(tracking_uri, experiment, scope=SEARCH).trial_runs(top.search)
    rows = rank((Entry(r.trial_id, r.expression or "", r.fingerprint or "", r.reward)
                 for r in runs.values()
                 if r.status == "FINISHED" and r.reward is not None and r.expression),
                top.k)
    if not rows:
        raise ConfigError(f"activations: top: search {top.search!r} has no finished trials in "
                          f"experiment {experiment!r} at {tracking_uri}")
    return [e.expression for e in rows]


def _kubernetes_backend(spec: BenchmarkSpec, kube: Any) -> Backend:
    from orchestrator.backends.kubernetes import KubernetesBackend

    cluster, namespace = kube
    return KubernetesBackend(cluster, spec.name,
                             spec.backend.kubernetes.namespace or namespace,
                             spec.backend.kubernetes, s3_endpoint=spec.storage.endpoint_url)


def build_runner(spec: BenchmarkSpec, workdir: str | Path | None = None, resume: bool = False,
                 poll_interval: float = 1.0, kube: Any = None) -> BenchmarkRunner:
    """The runner of ``spec``; refuses to start over a benchmark that has a checkpoint unless
    resuming. ``kube`` is ``(Cluster, namespace)`` for the Kubernetes backend."""
    lay = layout(spec, workdir)
    if spec.backend.kind == "kubernetes":
        uri = spec.tracking.uri or os.environ.get("MLFLOW_TRACKING_URI")
        if not uri or "://" not in uri or uri.startswith(("sqlite:", "file:")):
            raise ConfigError("tracking.uri: cells running as Jobs log to an MLflow server they "
                              f"can reach (http://...); got {uri!r}")
        if kube is None:
            raise ConfigError("backend.kind is 'kubernetes' but no cluster connection was given")
    if spec.backend.kind == "local":
        prefetch_data(spec.cell_config(m, d, 0) for m in spec.models for d in spec.datasets)
    store = open_checkpoints(lay, spec.storage.endpoint_url, CHECKPOINT_KEY, resume,
                             f"benchmark {spec.name!r}")
    tracker = MlflowTracker(lay.tracking_uri, spec.tracking.experiment, lay.artifact_location,
                            scope=BENCHMARK)
    if spec.backend.kind == "kubernetes":
        backend = _kubernetes_backend(spec, kube)
    else:
        backend = local_backend(lay, spec.backend.local.gpus, spec.parallelism)
    return BenchmarkRunner(
        spec=spec, tracker=tracker, store=store, backend=backend, tracking_uri=lay.tracking_uri,
        lookup_top=lambda top: top_functions(lay.tracking_uri, spec.tracking.experiment, top),
        poll_interval=poll_interval,
    )


def publish(runner: BenchmarkRunner, workdir: Path) -> tuple[Results, str, Path]:
    """Log the table (Markdown, JSON) and its plot to the parent run and end it; returns the
    results, the Markdown and the plot's path."""
    run_id = runner.parent_run_id
    if run_id is None:
        raise RuntimeError(f"benchmark {runner.name} was not started: it has no parent run")
    res = runner.results()
    text = to_markdown(res, f"benchmark {runner.name}")
    runner.tracker.log_text(run_id, text, REPORT_MD)
    runner.tracker.log_text(run_id, json.dumps(to_json(res), indent=2), REPORT_JSON)
    runner.tracker.log_metrics(run_id, 0, to_metrics(res))
    runner.tracker.set_tags(run_id, {Tag.NOTE: text})
    workdir.mkdir(parents=True, exist_ok=True)
    png = plot(res, workdir / REPORT_PNG)
    runner.tracker.log_file(run_id, str(png))
    runner.tracker.finish_search(run_id)  # failed cells are results too: the table shows them
    return res, text, png
