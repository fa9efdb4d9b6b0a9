"""``actsearch-train``: one child from a JSON trial spec and/or options, or a pack of children
from a JSON pack spec (``{"pack": [trial spec, ...]}``); exit codes in ``contract.ExitCode``.

Options override the spec file field by field. Choices are validated by the ``TrialSpec`` model,
not by click, so a bad value gets the same message (field name, allowed values) from either
source; every expected failure ends in one stderr line per problem and its exit code.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from orchestrator.contract import (
    PACK_KEY,
    TRIAL_SPEC_ENV,
    ExitCode,
    PackSpec,
    TrainConfig,
    TrialSpec,
)
from orchestrator.log_setup import CHILD, configure_logging
from orchestrator.oneshot.config import ONESHOT_KEY
from orchestrator.trainer.errors import BadInput, TrainerError
from orchestrator.trainer.output import stdout_kept_for_json
from orchestrator.validation import describe

log = logging.getLogger(__name__)


def _option_type(annotation: Any) -> type:
    """click's type of a TrainConfig field: its own for numbers and flags; ``str`` for the rest
    (choices included: the model checks them, and names the allowed values)."""
    return annotation if annotation in (bool, int, float) else str


CHILD_OPTIONS: dict[str, tuple[type, str]] = {
    name: (_option_type(f.annotation), f.description or "")
    for name, f in TrainConfig.model_fields.items()
}
"""One optional flag per TrainConfig field (option name -> type, help); each overrides the spec."""


def _child_option(name: str, kind: type, help_text: str):  # type: ignore[no-untyped-def]
    flag = "--" + name.replace("_", "-")
    if kind is bool:
        return click.option(f"{flag}/--no-{name.replace('_', '-')}", name, default=None, help=help_text)
    return click.option(flag, name, type=kind, default=None, help=help_text)


def child_options(f):  # type: ignore[no-untyped-def]
    """One optional flag per TrainConfig field, named after it."""
    for name, (kind, help_text) in reversed(CHILD_OPTIONS.items()):
        f = _child_option(name, kind, help_text)(f)
    return f


def build_spec(spec_file: Path | None, top: dict[str, Any], child: dict[str, Any],
               spec_env: str | None = None) -> TrialSpec:
    """Spec file (or, without one, the JSON in ``$ACTSEARCH_TRIAL_SPEC``) overridden by the
    options that were given; raises BadInput."""
    raw = read_spec(spec_file, top, child, spec_env)
    if "expression" not in raw:
        raise BadInput("expression: missing; give --expression or an 'expression' in --spec")
    try:
        return TrialSpec.model_validate(raw)
    except ValidationError as e:
        raise BadInput(describe(e, "trial spec")) from e


def build_pack(raw: dict[str, Any], top: dict[str, Any], child: dict[str, Any]) -> PackSpec:
    """A pack spec; training options given on the command line apply to every member."""
    given = sorted(k for k, v in top.items() if v is not None)
    if given:
        raise BadInput(f"{', '.join(given)}: not allowed with a pack spec; each member names its own")
    members = raw.get(PACK_KEY)
    overrides = {k: v for k, v in child.items() if v is not None}
    if overrides and isinstance(members, list):
        members = [{**m, "child": {**(m.get("child") or {}), **overrides}} if isinstance(m, dict) else m
                   for m in members]
    try:
        return PackSpec.model_validate({**raw, PACK_KEY: members})
    except ValidationError as e:
        raise BadInput(describe(e, "pack spec")) from e


def read_spec(spec_file: Path | None, top: dict[str, Any], child: dict[str, Any],
              spec_env: str | None = None) -> dict[str, Any]:
    """The raw trial spec, options merged in, not yet validated; raises BadInput."""
    raw: Any = {}
    source = "the trial spec"
    if spec_file is not None:
        source = f"--spec {spec_file}"
        try:
            raw = json.loads(spec_file.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise BadInput(f"{source}: cannot read a JSON trial spec: {e}") from e
    elif spec_env:
        source = f"${TRIAL_SPEC_ENV}"
        try:
            raw = json.loads(spec_env)
        except json.JSONDecodeError as e:
            raise BadInput(f"{source}: cannot read a JSON trial spec: {e}") from e
    if not isinstance(raw, dict):
        raise BadInput(f"{source}: the trial spec must be a JSON object")
    raw.update({k: v for k, v in top.items() if v is not None})
    overrides = {k: v for k, v in child.items() if v is not None}
    if overrides:
        base = raw.get("child") or {}
        if not isinstance(base, dict):
            raise BadInput("child: must be an object of training settings")
        raw["child"] = {**base, **overrides}
    return raw


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--spec", "spec_file", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="JSON trial spec: {expression, search, trial, experiment, child: {...}} "
                   f"[default: the JSON in env {TRIAL_SPEC_ENV}, as a Kubernetes Job passes it].")
@click.option("--expression", "-e", default=None,
              help="Activation: canonical text form, or builtin:lrelu|prelu|elu|selu|gelu.")
@click.option("--search", default=None, help="Search name (tag actsearch.search).")
@click.option("--trial", default=None, help="Trial id (tag actsearch.trial).")
@click.option("--experiment", default=None, help="MLflow experiment for a run created here.")
@click.option("--tracking-uri", envvar="MLFLOW_TRACKING_URI", default=None,
              help="MLflow tracking URI [env MLFLOW_TRACKING_URI; default: MLflow's own].")
@click.option("--run-id", envvar="MLFLOW_RUN_ID", default=None,
              help="Log into this existing run [env MLFLOW_RUN_ID]; otherwise create one.")
@click.option("--cache-dir", envvar="ACTSEARCH_CACHE_DIR", type=click.Path(path_type=Path), default=None,
              help="Where downloaded data is kept [env ACTSEARCH_CACHE_DIR; ~/.cache/actsearch].")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON on stdout.")
@click.option("--json-logs", is_flag=True, help="Log lines as JSON (for in-cluster log collection).")
@click.option("-v", "--verbose", count=True, help="More log output (INFO by default; -v DEBUG).")
@child_options
def main(spec_file: Path | None, expression: str | None, search: str | None, trial: str | None,
             experiment: str | None, tracking_uri: str | None, run_id: str | None,
             cache_dir: Path | None, as_json: bool, json_logs: bool, verbose: int,
             **child: Any) -> None:
    """Train one child network with one activation function and log it to MLflow.

    A pack spec ({"pack": [trial spec, ...]}) trains its members side by side on one device,
    each logged to its own run; training options given here apply to every member.
    """
    configure_logging(verbose, json_logs, default=CHILD, replace=True)
    from orchestrator.trainer.termination import answering_sigterm

    with answering_sigterm():
        _main(spec_file, expression, search, trial, experiment, tracking_uri, run_id, cache_dir,
              as_json, child)


def _main(spec_file: Path | None, expression: str | None, search: str | None, trial: str | None,
          experiment: str | None, tracking_uri: str | None, run_id: str | None,
          cache_dir: Path | None, as_json: bool, child: dict[str, Any]) -> None:
    """The command's work; its exit codes in ``contract.ExitCode``."""
    from orchestrator.trainer.run import run

    try:
        top = {"expression": expression, "search": search, "trial": trial, "experiment": experiment}
        raw = read_spec(spec_file, top, child, os.environ.get(TRIAL_SPEC_ENV))
        if ONESHOT_KEY in raw:  # a one-shot search child (docs/oneshot.md)
            from orchestrator.oneshot.entry import run_oneshot

            run_oneshot(raw, tracking_uri, run_id or None, cache_dir, as_json)
        if PACK_KEY in raw:  # several children side by side (docs/trainer.md, "Packing")
            _run_pack(build_pack(raw, top, child), tracking_uri, cache_dir, as_json)
        spec = build_spec(spec_file, top, child, os.environ.get(TRIAL_SPEC_ENV))
        with stdout_kept_for_json():
            run_id_used, outcome = run(spec, tracking_uri=tracking_uri, run_id=run_id or None,
                                       cache_dir=cache_dir)
    except TrainerError as e:
        click.echo(f"actsearch-train: {e}", err=True)
        if e.exit_code == ExitCode.INTERRUPTED:  # only a SIGTERM to this process raises it
            # the checkpoint is stored and the runs left RUNNING: exit now, within the grace
            # period, not after a garbage collection of the whole training state (minutes)
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(int(e.exit_code))
        sys.exit(int(e.exit_code))
    if as_json:
        click.echo(json.dumps(_summary(run_id_used, outcome)))
    sys.exit(int(ExitCode.OK))


def _summary(run_id: str, outcome: Any) -> dict[str, Any]:
    return {
        "run_id": run_id, "val_accuracy": outcome.val_accuracy,
        "test_accuracy": outcome.test_accuracy, "steps": outcome.steps,
        "start_step": outcome.start_step, "wall_time_s": outcome.wall_time_s,
        "steps_per_s": outcome.steps_per_s, "beta_mean": outcome.beta_mean, "mode": outcome.mode,
    }


def _run_pack(spec: PackSpec, tracking_uri: str | None, cache_dir: Path | None, as_json: bool) -> None:
    """Train a pack and exit: 0 when any member finished, 3 when every member diverged."""
    from orchestrator.trainer.errors import NonFiniteLoss
    from orchestrator.trainer.run import run_pack

    with stdout_kept_for_json():
        results = run_pack(spec, tracking_uri=tracking_uri, cache_dir=cache_dir)
    if as_json:
        click.echo(json.dumps([
            {"run_id": run_id, "failure": "nan", "failure_step": r.step} if isinstance(r, NonFiniteLoss)
            else _summary(run_id, r) for run_id, r in results
        ]))
    if all(isinstance(r, NonFiniteLoss) for _, r in results):
        click.echo(f"actsearch-train: every member of the pack diverged ({len(results)})", err=True)
        sys.exit(int(ExitCode.NON_FINITE_LOSS))
    sys.exit(int(ExitCode.OK))

