"""``actsearch-ctl oneshot SPEC``: a one-shot search (docs/oneshot.md) as one child on this machine.

The spec is an ordinary search spec: its ``space`` gives the ops of every slot and the number of
units of the template, ``child`` trains the supernet's weights and then the discretised function,
``tracking`` says where MLflow is; its ``strategy`` and ``budget`` do not apply. One-shot options
(``variant``, ``search_steps``, ...) are given with ``-o key=value``. The child is started exactly
as the search loop starts one (the local backend, a pre-created MLflow run); with
``--print-trial-spec`` the command prints the child's trial spec instead, the JSON a Kubernetes
Job passes to the trainer image in ``ACTSEARCH_TRIAL_SPEC``.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import click
import yaml

from orchestrator.cli.errors import expected_errors
from orchestrator.errors import ConfigError


def _options(pairs: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected key=value; got {pair!r}", param_hint="-o/--option")
        out[key.strip()] = yaml.safe_load(value)
    return out


def trial_spec(spec: Any, options: dict[str, Any]) -> dict[str, Any]:
    """The one-shot child's trial spec for a search spec, validated (raises ConfigError)."""
    from pydantic import ValidationError

    from orchestrator.oneshot.config import OneShotSpec
    from orchestrator.validation import describe

    raw = {
        "oneshot": {"units": spec.space.units, "unary": list(spec.space.unary),
                    "binary": list(spec.space.binary), **options},
        "search": spec.name, "trial": f"{spec.name}-oneshot", "experiment": spec.tracking.experiment,
        "child": spec.child.model_dump(mode="json"),
    }
    try:
        OneShotSpec.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(describe(e, "one-shot options")) from e
    return raw


@click.command()
@click.argument("spec_path", metavar="SPEC", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--option", "pairs", multiple=True, metavar="KEY=VALUE",
              help="One-shot option, e.g. -o variant=darts -o search_steps=600 (docs/oneshot.md).")
@click.option("--workdir", type=click.Path(file_okay=False), default=None,
              help="Overrides backend.local.workdir.")
@click.option("--print-trial-spec", is_flag=True,
              help="Print the child's trial spec (for a Kubernetes Job) and exit.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@expected_errors
def oneshot(spec_path: str, pairs: tuple[str, ...], workdir: str | None, print_trial_spec: bool,
            as_json: bool) -> None:
    """Run a gradient-based one-shot search (DARTS/DrNAS/GDAS) as one local child, then train the
    function it finds from scratch as a normal child."""
    from orchestrator.spec import load_spec

    spec = load_spec(spec_path)
    raw = trial_spec(spec, _options(pairs))
    if print_trial_spec:
        click.echo(json.dumps(raw, indent=2))
        return
    result = _run_local(spec, raw, workdir)
    if as_json:
        click.echo(json.dumps(result, indent=2, ensure_ascii=False))
        return
    for key, value in result.items():
        click.echo(f"{key:24} {value}")


def _run_local(spec: Any, raw: dict[str, Any], workdir: str | None) -> dict[str, Any]:
    from orchestrator.adapters.tracking import MlflowTracker
    from orchestrator.backends.base import Launch
    from orchestrator.backends.local import LocalBackend
    from orchestrator.contract import Tag
    from orchestrator.embedded import layout

    lay = layout(spec, workdir)
    lay.workdir.mkdir(parents=True, exist_ok=True)
    tracker = MlflowTracker(lay.tracking_uri, spec.tracking.experiment, lay.artifact_location)
    trial = raw["trial"]
    run_id = tracker.client.create_run(
        tracker.experiment_id, run_name=f"{trial}-{raw['oneshot'].get('variant', 'drnas')}",
        tags={Tag.SEARCH: spec.name, Tag.ROLE: "oneshot"},
    ).info.run_id
    # the search loop's thread cap: small supernets on CPU run slower, not faster, on more threads
    backend = LocalBackend(lay.workdir, gpus=spec.backend.local.gpus,
                           cpu_threads=max(1, (os.cpu_count() or 1) // spec.parallelism))
    started = time.monotonic()
    backend.launch(Launch(trial, run_id, raw, env={
        "MLFLOW_TRACKING_URI": lay.tracking_uri, "MLFLOW_RUN_ID": run_id,
    }))
    while (state := backend.state(trial)).phase in ("running", "queued"):
        time.sleep(1.0)
    backend.close()
    if state.phase != "succeeded":
        raise click.ClickException(f"the one-shot child {trial} failed (exit code {state.exit_code}): "
                                   f"{state.reason}; its log: {lay.workdir / 'trials' / trial / 'log.txt'}")
    run = tracker.client.get_run(run_id)
    result: dict[str, Any] = {
        "expression": run.data.tags.get(Tag.RESULT_EXPRESSION),
        "math": run.data.tags.get(Tag.RESULT_MATH),
        "supernet_val_accuracy": run.data.metrics.get("supernet_val_accuracy"),
        "selected_val_accuracy": run.data.metrics.get("selected_val_accuracy"),
        "baseline_val_accuracy": run.data.metrics.get("baseline_val_accuracy"),
        "search_run": run_id,
    }
    evaluation = run.data.tags.get(Tag.EVALUATION_RUN)
    if evaluation:
        m = tracker.client.get_run(evaluation).data.metrics
        result.update({"evaluation_run": evaluation, "val_accuracy": m.get("val_accuracy"),
                       "test_accuracy": m.get("test_accuracy")})
    result["wall_time_s"] = round(time.monotonic() - started, 1)
    result["tracking_uri"] = lay.tracking_uri
    return result
