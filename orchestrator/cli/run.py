"""``actsearch-ctl run`` (a search on this machine) and ``actsearch-ctl top`` (the leaderboard of a
search, local or in a cluster)."""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.table import Table

from orchestrator.cli.errors import ExpectedFailure, expected_errors
from orchestrator.cli.options import run_with_progress
from orchestrator.contract import Tag
from orchestrator.errors import ConfigError
from orchestrator.loop.leaderboard import Entry, accuracy_text, rank, rank_labels
from orchestrator.space import parse, to_math

if TYPE_CHECKING:  # the controller and the spec are imported by the commands that use them
    from orchestrator.identity import SearchIdentity
    from orchestrator.loop.controller import Controller
    from orchestrator.loop.trials import Progress
    from orchestrator.spec import SearchSpec


def _progress_table(p: Progress, started: float, name: str) -> Table:
    t = Table(title=f"search {name}", show_header=False, box=None)
    elapsed = time.monotonic() - started
    eta = "-"
    if p.trained and p.done:
        per_trial = elapsed / max(p.done - p.queued, 1)
        remaining = max(p.budget - p.trained, 0) + p.running
        eta = f"{per_trial * remaining:.0f} s"
    t.add_row("trials trained", f"{p.trained}/{p.budget}")
    packed = f" (in {p.packs} packs)" if p.packs != p.running else ""
    t.add_row("running / queued", f"{p.running}{packed} / {p.queued}")
    t.add_row("failed", str(p.failed))
    if p.stopped_early:
        t.add_row("stopped early", str(p.stopped_early))
    t.add_row("screened / duplicates / cache hits", f"{p.screened} / {p.duplicates} / {p.cache_hits}")
    if p.best is not None:
        t.add_row("best so far", f"{p.best.reward:.4f}  {to_math(p.best.candidate.expr)}")
    t.add_row("elapsed / ETA", f"{elapsed:.0f} s / {eta}")
    return t


def leaderboard_table(rows: list[Entry], title: str) -> Table:
    t = Table(title=title, caption="=k: tied on val accuracy with rank k"
              if any(e.tied for e in rows) else None)
    for col in ("rank", "expression", "math", "val acc", "test acc", "fingerprint"):
        t.add_column(col)
    for label, e in zip(rank_labels(rows), rows, strict=True):
        t.add_row(label, e.expression, to_math(parse(e.expression)), f"{e.reward:.4f}",
                  accuracy_text(e.test_accuracy), e.fingerprint)
    return t


def _report(ctl: Controller, console: Console, top: int, workdir: Path) -> None:
    """Leaderboard to the terminal and, with a plot of the top functions, to the parent run."""
    from orchestrator.loop.report import publish

    rows, png = publish(ctl, top, workdir)
    console.print(leaderboard_table(rows, f"leaderboard of {ctl.name}"))
    if png is not None:
        console.print(f"plot of the top functions: {png}")


@click.command()
@click.argument("spec_path", metavar="SPEC", type=click.Path(exists=True, dir_okay=False))
@click.option("--resume", is_flag=True, help="Continue the search from its last checkpoint; "
              "the spec may raise its budget or change parallelism and packing (any other edit "
              "is refused).")
@click.option("--workdir", type=click.Path(file_okay=False), default=None,
              help="Overrides backend.local.workdir.")
@click.option("--top", type=click.IntRange(min=1), default=10, show_default=True,
              help="Leaderboard rows.")
@click.option("--quiet", is_flag=True, help="No live display.")
@expected_errors
def run(spec_path: str, resume: bool, workdir: str | None, top: int, quiet: bool) -> None:
    """Run a search on this machine: children are local processes, MLflow a local SQLite file
    unless the spec names a tracking server."""
    from orchestrator.embedded import build_controller, layout
    from orchestrator.loop.amend import describe
    from orchestrator.spec import load_spec

    spec = load_spec(spec_path)
    ctl = build_controller(spec, workdir, resume=resume)
    console = Console()
    started = time.monotonic()
    run_with_progress(functools.partial(ctl.run, resume=resume),
                      lambda p: _progress_table(p, started, spec.name), quiet, console)
    lay = layout(spec, workdir)
    if ctl.amended:
        console.print(f"edit applied on resume: {describe(ctl.amended)}", soft_wrap=True)
    _report(ctl, console, top, lay.workdir)
    console.print(f"checkpoints: {lay.storage_uri}")
    console.print(f"browse the runs:  actsearch-ctl ui {spec_path}", soft_wrap=True)
    console.print(f"  then open {_runs_url(ctl, lay.tracking_uri)}", soft_wrap=True)
    if ctl.stopped is not None:  # the failure brake: the search did not spend its budget
        raise ExpectedFailure(f"search {spec.name} stopped: {ctl.stopped.message}; fix the "
                              f"cause (or raise the limit), then `actsearch-ctl run {spec_path} "
                              "--resume`")


def _runs_url(ctl: Controller, tracking_uri: str) -> str:
    """The runs table ``actsearch-ctl ui`` serves (or the tracking server's own)."""
    from orchestrator.cli.ui import runs_url

    base = "http://127.0.0.1:5000" if tracking_uri.startswith("sqlite:") else tracking_uri
    return runs_url(base, getattr(ctl.tracker, "experiment_id", None))


@click.command()
@click.argument("target", metavar="SPEC|NAME")
@click.option("--tracking-uri", default=None, help="MLflow server (default: the spec's, the "
              "cluster search's, or the local SQLite file of a search run with `actsearch-ctl run`).")
@click.option("--experiment", default=None, help="MLflow experiment (default: the spec's).")
@click.option("--workdir", type=click.Path(file_okay=False), default=None)
@click.option("-t", "--top", type=click.IntRange(min=1), default=10, show_default=True,
              help="Leaderboard rows.")
@click.option("--json", "as_json", is_flag=True)
@click.option("--cluster", is_flag=True, help="NAME is an ActivationSearch in the cluster (implied "
              "by -n, or when no local search of that name exists).")
@click.option("-n", "--namespace", default=None, help="Namespace of a cluster search "
              "(default: the kubeconfig context's).")
@click.option("--kubeconfig", type=click.Path(dir_okay=False), default=None,
              help="kubeconfig for a cluster search (default: $KUBECONFIG, else ~/.kube/config).")
@click.option("--context", default=None, help="kubeconfig context.")
@expected_errors
def top(target: str, tracking_uri: str | None, experiment: str | None, workdir: str | None,
        top: int, as_json: bool, cluster: bool, namespace: str | None, kubeconfig: str | None,
        context: str | None) -> None:
    """Print the leaderboard of a search, read from MLflow: a spec file, a search run on this
    machine, or an ActivationSearch in the cluster (its tracking URI read from the object)."""
    from orchestrator.adapters.tracking import MlflowTracker
    from orchestrator.embedded import layout
    from orchestrator.spec import SearchSpec, load_spec

    if Path(target).is_file():
        spec = load_spec(target)
    else:
        try:
            spec = SearchSpec.model_validate({"name": target})
        except ValueError as e:  # not a search name: bad input
            raise ConfigError(str(e)) from e
    lay = layout(spec, workdir)
    uri = tracking_uri or spec.tracking.uri
    local_db = lay.tracking_uri.removeprefix("sqlite:///")
    on_cluster = (cluster or namespace is not None) or (
        uri is None and not Path(target).is_file() and not Path(local_db).exists())
    owner = None
    if on_cluster:
        uri, spec, owner = _cluster_tracking(spec, tracking_uri, namespace, kubeconfig, context)
    else:
        owner = _local_owner(lay.storage_uri, spec.storage.endpoint_url)
    uri = uri or lay.tracking_uri
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        raise click.ClickException(
            f"no local tracking database for search {spec.name!r} at {uri}; "
            "pass --tracking-uri for a search tracked elsewhere"
        )
    tracker = MlflowTracker(uri, experiment or spec.tracking.experiment,
                            None if on_cluster else lay.artifact_location, owner=owner)
    runs = tracker.trial_runs(spec.name)
    if not runs:
        raise click.ClickException(f"no trials of search {spec.name!r} in {uri}")
    rows = rank(
        (Entry(r.trial_id, r.expression or "", r.fingerprint or "", r.reward,
               r.metrics.get("test_accuracy"), run_id=r.run_id)
         for r in runs.values() if r.reward is not None and r.expression and r.status == "FINISHED"
         and not _repeats(r.tags) and Tag.STOPPED_EARLY not in r.tags),  # complete results
        top,
    )
    if as_json:
        click.echo(json.dumps([asdict(e) for e in rows], indent=2))
    else:
        Console().print(leaderboard_table(rows, f"leaderboard of {spec.name} ({len(runs)} trials)"))


def _repeats(tags: Mapping[str, str]) -> bool:
    """A run settled with another run's result (a duplicate, or a cache hit from another
    search): its original is the leaderboard's row."""
    return Tag.DUPLICATE_OF in tags or tags.get(Tag.SOURCE) in ("duplicate", "cache")


def _local_owner(storage_uri: str, endpoint_url: str | None) -> SearchIdentity | None:
    """The identity in a local search's checkpoint (None without one, or from before
    identities: its runs are then read by name)."""
    from orchestrator.adapters.storage import open_store
    from orchestrator.loop.checkpoint import stored_owner

    if "://" not in storage_uri and not Path(storage_uri).exists():
        return None
    return stored_owner(open_store(storage_uri, endpoint_url))[1]


def _cluster_tracking(spec: SearchSpec, tracking_uri: str | None, namespace: str | None,
                      kubeconfig: str | None, context: str | None
                      ) -> tuple[str, SearchSpec, SearchIdentity]:
    """The tracking URI, spec and identity of an ActivationSearch, from the cluster."""
    import os

    from orchestrator.cli.cluster import connect
    from orchestrator.cluster.incluster import identity_of, spec_of

    kube, ns = connect(kubeconfig, context, namespace)
    obj = kube.get_search(ns, spec.name)
    found = spec_of(obj)
    uri = tracking_uri or found.tracking.uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        raise click.ClickException(
            f"ActivationSearch {ns}/{spec.name} logs to the controller's default MLflow server, "
            "which its spec does not name: pass --tracking-uri (from outside the cluster, e.g. "
            "after `kubectl port-forward svc/<mlflow service> 5000`) or set MLFLOW_TRACKING_URI"
        )
    return uri, found, identity_of(obj)
