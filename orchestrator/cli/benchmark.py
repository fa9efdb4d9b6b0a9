"""``actsearch-ctl benchmark`` (the paper's validation protocol on this machine or as Jobs) and
``actsearch-ctl benchmark-report`` (its table again, read from MLflow)."""

from __future__ import annotations

import functools
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.table import Table

from orchestrator.cli.errors import expected_errors
from orchestrator.cli.options import run_with_progress
from orchestrator.errors import ConfigError

if TYPE_CHECKING:  # the runner imports the trainer's plots (torch): only when a benchmark runs
    from orchestrator.benchmark.runner import BenchmarkProgress


def _progress_table(p: BenchmarkProgress, started: float, name: str) -> Table:
    t = Table(title=f"benchmark {name}", show_header=False, box=None)
    elapsed = time.monotonic() - started
    t.add_row("cells done", f"{p.done}/{p.total}")
    packed = f" (in {p.packs} packs)" if p.packs != p.running else ""
    t.add_row("running", f"{p.running}{packed}")
    t.add_row("failed", str(p.failed))
    t.add_row("elapsed", f"{elapsed:.0f} s")
    return t


@click.command()
@click.argument("spec_path", metavar="SPEC", type=click.Path(exists=True, dir_okay=False))
@click.option("--resume", is_flag=True, help="Continue the benchmark: finished cells are kept, "
              "running ones re-attached, the rest trained.")
@click.option("--workdir", type=click.Path(file_okay=False), default=None,
              help="Overrides backend.local.workdir.")
@click.option("--quiet", is_flag=True, help="No live display.")
@click.option("--kubeconfig", type=click.Path(dir_okay=False), default=None,
              help="kubeconfig for backend.kind 'kubernetes' (default: $KUBECONFIG, else ~/.kube/config).")
@click.option("--context", default=None, help="kubeconfig context.")
@click.option("-n", "--namespace", default=None, help="Namespace of the Jobs (default: "
              "backend.kubernetes.namespace, else the context's).")
@expected_errors
def benchmark(spec_path: str, resume: bool, workdir: str | None, quiet: bool,
              kubeconfig: str | None, context: str | None, namespace: str | None) -> None:
    """Train every activation × model × dataset × seed of SPEC, each cell a child run under one
    MLflow parent run; print the table of medians and the sign test against the baseline."""
    from orchestrator.benchmark.assemble import build_runner, publish
    from orchestrator.benchmark.spec import load_benchmark
    from orchestrator.embedded import layout

    spec = load_benchmark(spec_path)
    kube = None
    if spec.backend.kind == "kubernetes":
        from orchestrator.cli.cluster import connect

        kube = connect(kubeconfig, context, namespace)
    runner = build_runner(spec, workdir, resume=resume, kube=kube)
    console = Console()
    started = time.monotonic()
    lay = layout(spec, workdir)
    run_with_progress(functools.partial(runner.run, resume=resume),
                      lambda p: _progress_table(p, started, spec.name), quiet, console)
    _, text, png = publish(runner, lay.workdir)
    click.echo(text)  # plain Markdown: pastes into a README, an issue or a paper draft
    console.print(f"plot: {png}")
    console.print(f"checkpoints: {lay.storage_uri}")
    console.print(f"browse the runs:  mlflow ui --backend-store-uri {lay.tracking_uri}",
                  soft_wrap=True)


@click.command("benchmark-report")
@click.argument("target", metavar="SPEC|NAME")
@click.option("--tracking-uri", default=None, help="MLflow server (default: the spec's, or the "
              "local SQLite file of a benchmark run on this machine).")
@click.option("--experiment", default=None, help="MLflow experiment (default: the spec's).")
@click.option("--workdir", type=click.Path(file_okay=False), default=None)
@click.option("--metric", type=click.Choice(["test_accuracy", "val_accuracy"]), default=None,
              help="Default: the spec's (test_accuracy).")
@click.option("--baseline", default=None, help="Row label of the sign test's baseline.")
@click.option("--tie-tolerance", type=click.FloatRange(min=0), default=None)
@click.option("--pairs", type=click.Choice(["medians", "seeds"]), default=None)
@click.option("--json", "as_json", is_flag=True)
@expected_errors
def benchmark_report(target: str, tracking_uri: str | None, experiment: str | None,
                     workdir: str | None, metric: str | None, baseline: str | None,
                     tie_tolerance: float | None, pairs: str | None, as_json: bool) -> None:
    """Print a benchmark's table from its cell runs in MLflow (finished or still running)."""
    from orchestrator.adapters.tracking import BENCHMARK, MlflowTracker
    from orchestrator.benchmark.results import (
        build,
        records_from_runs,
        to_json,
        to_markdown,
    )
    from orchestrator.benchmark.spec import load_benchmark
    from orchestrator.embedded import STORE_FILE, default_store, layout

    if Path(target).is_file():
        spec = load_benchmark(target)
        name, lay = spec.name, layout(spec, workdir)
        uri = tracking_uri or lay.tracking_uri
        exp = experiment or spec.tracking.experiment
        metric = metric or spec.metric
        baseline = baseline or spec.baseline
        st = spec.sign_test
        tie_tolerance = st.tie_tolerance if tie_tolerance is None else tie_tolerance
        pairs = pairs or st.pairs
    else:
        name = target
        store = default_store(Path(workdir or ".actsearch").resolve(), name)
        uri = tracking_uri or f"sqlite:///{store / STORE_FILE}"
        exp = experiment or "actsearch"
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        raise ConfigError(f"no local tracking database for benchmark {name!r} at {uri}; "
                          "pass --tracking-uri for a benchmark tracked elsewhere")
    runs = MlflowTracker(uri, exp, scope=BENCHMARK).trial_runs(name)
    metric = metric or "test_accuracy"
    records = records_from_runs(runs.values(), metric)
    if not records:
        raise click.ClickException(f"no cells of benchmark {name!r} in {uri}")
    labels = [r.label for r in sorted(records, key=lambda r: r.row)]
    res = build(records, metric, baseline or ("ReLU" if "ReLU" in labels else labels[0]),
                tie_tolerance or 0.0, pairs or "medians")
    if as_json:
        click.echo(json.dumps(to_json(res), indent=2, ensure_ascii=False))
    else:
        click.echo(to_markdown(res, f"benchmark {name}"))
