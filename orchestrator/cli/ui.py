"""``actsearch-ctl ui SPEC``: the MLflow UI on a search's (or benchmark's) runs, opened where a
researcher wants it.

Two things a plain ``mlflow ui`` gets wrong for this project, found by using it: clicking an
experiment opens MLflow 3's GenAI overview (traces), empty here, so the URL printed goes straight
to the runs table (``workflowType=machine_learning``) sorted by the reward; and the default
server (several workers and a job runner) kept losing workers on a 2-core machine, so it runs
with ``--workers 1`` and ``MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false``. A spec tracked on an MLflow
server needs no local UI: its URL is printed instead.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import quote

import click

from orchestrator.cli.errors import expected_errors
from orchestrator.redact import redact

LOW_RESOURCE_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
"""The MLflow server's environment on a small machine: no background job runner."""


def runs_url(base: str, experiment_id: str | None, reward: str = "val_accuracy") -> str:
    """The runs table of an experiment (not the GenAI overview), best reward first; printed, so
    a ``user:password@`` in ``base`` is redacted (the browser asks for the login)."""
    base = redact(base).rstrip("/")
    if experiment_id is None:
        return f"{base}/#/experiments"
    order = quote(f"metrics.`{reward}`")
    return (f"{base}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"
            f"&orderByKey={order}&orderByAsc=false")


def ui_command(tracking_uri: str, host: str, port: int) -> list[str]:
    """``mlflow ui`` on a local store, with settings that hold on 2 cores."""
    return [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", tracking_uri,
            "--host", host, "--port", str(port), "--workers", "1"]


def store_of(spec_path: str, workdir: str | None) -> tuple[str, str, str]:
    """(tracking URI, experiment, name) of a search or benchmark spec."""
    from orchestrator.embedded import layout
    from orchestrator.validation import read_yaml

    raw = read_yaml(spec_path)
    if isinstance(raw, dict) and "activations" in raw:  # a benchmark spec
        from orchestrator.benchmark.spec import load_benchmark

        bench = load_benchmark(spec_path)
        return layout(bench, workdir).tracking_uri, bench.tracking.experiment, bench.name
    from orchestrator.spec import load_spec

    spec = load_spec(spec_path)
    return layout(spec, workdir).tracking_uri, spec.tracking.experiment, spec.name


@click.command()
@click.argument("spec_path", metavar="SPEC", type=click.Path(exists=True, dir_okay=False))
@click.option("--workdir", type=click.Path(file_okay=False), default=None,
              help="Overrides backend.local.workdir.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=5000, show_default=True)
@expected_errors
def ui(spec_path: str, workdir: str | None, host: str, port: int) -> None:
    """Open the MLflow UI on the runs of a search or benchmark SPEC: starts it on the local store
    (one worker, no job runner) and prints the URL of the runs table."""
    from orchestrator.adapters.tracking import experiment_id

    uri, experiment, name = store_of(spec_path, workdir)
    if not uri.startswith("sqlite:///"):
        click.echo(f"{name} is tracked on {redact(uri)}: {runs_url(uri, experiment_id(uri, experiment))}")
        return
    if not Path(uri.removeprefix("sqlite:///")).exists():
        raise click.ClickException(f"no local tracking database for {name!r} at {uri}: "
                                   "run it first (actsearch-ctl run / benchmark)")
    url = runs_url(f"http://{host}:{port}", experiment_id(uri, experiment))
    click.echo(f"MLflow UI for {name} ({uri}); the runs table:\n  {url}\n(Ctrl-C stops it)")
    sys.stdout.flush()
    # this process becomes the server: Ctrl-C and SIGTERM reach it, nothing is left behind
    cmd = ui_command(uri, host, port)
    os.execve(cmd[0], cmd, {**os.environ, **LOW_RESOURCE_ENV})
