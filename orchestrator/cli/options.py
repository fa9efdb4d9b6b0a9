"""Argument types and output helpers shared by the subcommands."""

from __future__ import annotations

import json
import math
from typing import Any

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


def json_number(v: float) -> float | str:
    """JSON has no NaN or infinity: write them as strings."""
    return v if math.isfinite(v) else str(v)


def echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, ensure_ascii=False))
