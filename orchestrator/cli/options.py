"""Argument types and output helpers shared by the subcommands."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any, TypeVar

import click

from orchestrator.space import Expr, ParseError, parse


class ExpressionType(click.ParamType):
    """An activation in canonical text form, parsed (never evaluated) with a pointed error."""

    name = "EXPR"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Expr:
        if not isinstance(value, str):
            return value
        try:
            return parse(value)
        except ParseError as e:
            self.fail(f"{e}\n  {e.pointer().replace(chr(10), chr(10) + '  ')}", param, ctx)


EXPRESSION = ExpressionType()
P = TypeVar("P")


def json_number(v: float) -> float | str:
    """JSON has no NaN or infinity: write them as strings."""
    return v if math.isfinite(v) else str(v)


def echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, ensure_ascii=False))


def run_with_progress(run: Callable[..., P], render: Callable[[P], Any], quiet: bool,
                      console: Any) -> P:
    """Call ``run(on_progress=...)`` with a live rich display of ``render(progress)``, or plainly
    when ``quiet`` (logs, CI)."""
    if quiet:
        return run()
    from rich.live import Live

    with Live(console=console, refresh_per_second=2, transient=False) as live:
        return run(on_progress=lambda p: live.update(render(p)))
