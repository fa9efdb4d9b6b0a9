"""The one-shot child behind ``actsearch-train``: a trial spec with a ``oneshot`` section runs a
one-shot search instead of training one expression. Same exit codes as any child (``contract.ExitCode``), so
a Kubernetes Job runs it with the same image, arguments and failure policy."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import click
from pydantic import ValidationError

from orchestrator.contract import ExitCode
from orchestrator.oneshot.config import OneShotSpec
from orchestrator.trainer.errors import BadInput, TrainerError
from orchestrator.validation import describe


def parse_oneshot_spec(raw: dict[str, Any]) -> OneShotSpec:
    """Validate a raw one-shot trial spec; raises BadInput naming the field."""
    raw = {k: v for k, v in raw.items() if k != "expression" or v is not None}
    if "expression" in raw:
        raise BadInput("expression: a one-shot spec searches for the expression; give one or the other")
    try:
        return OneShotSpec.model_validate(raw)
    except ValidationError as e:
        raise BadInput(describe(e, "one-shot trial spec")) from e


def run_oneshot(raw: dict[str, Any], tracking_uri: str | None, run_id: str | None,
                cache_dir: Path | None, as_json: bool) -> NoReturn:
    from orchestrator.oneshot.run import run
    from orchestrator.trainer.output import stdout_kept_for_json

    try:
        with stdout_kept_for_json():
            result = run(parse_oneshot_spec(raw), tracking_uri=tracking_uri, run_id=run_id,
                         cache_dir=cache_dir)
    except TrainerError as e:
        click.echo(f"actsearch-train: {e}", err=True)
        sys.exit(int(e.exit_code))
    if as_json:
        click.echo(json.dumps(result.summary()))
    sys.exit(int(ExitCode.OK))
