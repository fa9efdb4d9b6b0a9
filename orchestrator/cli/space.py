"""``actsearch-ctl space ...``: inspect the search space and single expressions."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from orchestrator.cli.options import EXPRESSION, echo_json, json_number
from orchestrator.space import (
    BINARY_NAMES,
    NUMERICS,
    UNARY_NAMES,
    Expr,
    SearchSpace,
    SpaceError,
    num_units,
    to_latex,
    to_math,
    to_text,
)
from orchestrator.space.evaluate import evaluate
from orchestrator.space.fingerprint import fingerprint
from orchestrator.space.screen import screen

_numerics = click.option(
    "--numerics", type=click.Choice(NUMERICS), default="safe", show_default=True,
    help="safe: guarded ops (docs/space.md); paper: the raw formulas.",
)
_json = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


def _space(units: int, unary: str | None, binary: str | None) -> SearchSpace:
    try:
        return SearchSpace(
            units=units,
            unary=tuple(unary.split(",")) if unary else UNARY_NAMES,
            binary=tuple(binary.split(",")) if binary else BINARY_NAMES,
        )
    except SpaceError as e:
        raise click.BadParameter(str(e)) from e


_space_options = [
    click.option("--units", type=click.IntRange(min=1), default=1, show_default=True,
                 help="Core units per function."),
    click.option("--unary", default=None, help="Comma-separated unary ops (default: all 25)."),
    click.option("--binary", default=None, help="Comma-separated binary ops (default: all 10)."),
]


def space_options(f):  # type: ignore[no-untyped-def]
    for opt in reversed(_space_options):
        f = opt(f)
    return f


@click.group()
def space() -> None:
    """The search space: count, show, evaluate, sample and plot activation functions."""


@space.command()
@space_options
@_json
def count(units: int, unary: str | None, binary: str | None, as_json: bool) -> None:
    """Print the number of valid token sequences of a space."""
    n = _space(units, unary, binary).count()
    if as_json:
        echo_json({"units": units, "count": n})
    else:
        click.echo(f"{n:,}")


@space.command()
@click.argument("expr", type=EXPRESSION)
@_numerics
@_json
def show(expr: Expr, numerics: str, as_json: bool) -> None:
    """Canonical form, math, LaTeX, units, fingerprint and screen verdict of EXPR."""
    verdict = screen(expr, numerics=numerics)  # type: ignore[arg-type]
    info = {
        "canonical": to_text(expr),
        "math": to_math(expr),
        "latex": to_latex(expr),
        "units": num_units(expr),
        "fingerprint": fingerprint(expr),
        "screen": verdict.as_dict(),
    }
    if as_json:
        echo_json(info)
        return
    for key in ("canonical", "math", "latex", "units", "fingerprint"):
        click.echo(f"{key:12} {info[key]}")
    click.echo(f"{'screen':12} {'ok' if verdict.ok else 'rejected: ' + str(verdict.reason)}")


@space.command(name="eval")
@click.argument("expr", type=EXPRESSION)
@click.option("--at", "points", type=float, multiple=True, required=True,
              help="A point x; repeat for several.")
@click.option("--beta", type=float, default=1.0, show_default=True)
@_numerics
@_json
def eval_(expr: Expr, points: tuple[float, ...], beta: float, numerics: str, as_json: bool) -> None:
    """Print f(x) at the given points (NumPy reference, float64)."""
    values = evaluate(expr, np.array(points), beta=beta, numerics=numerics)  # type: ignore[arg-type]
    if as_json:
        echo_json({
            "canonical": to_text(expr), "beta": beta, "at": list(points),
            "values": [json_number(float(v)) for v in values],
        })
        return
    for x, v in zip(points, values, strict=True):
        click.echo(f"f({x:g}) = {float(v):.10g}")


@space.command()
@space_options
@click.option("--n", "n", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@_json
def sample(units: int, unary: str | None, binary: str | None, n: int, seed: int,
           as_json: bool) -> None:
    """Print N expressions drawn uniformly from the space (seeded)."""
    exprs = [to_text(e) for e in _space(units, unary, binary).sample_expressions(n, seed)]
    if as_json:
        echo_json({"units": units, "seed": seed, "expressions": exprs})
    else:
        click.echo("\n".join(exprs))


@space.command()
@click.argument("expr", type=EXPRESSION)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="PNG file to write.")
@click.option("--beta", type=float, default=1.0, show_default=True)
@_numerics
def plot(expr: Expr, output: Path, beta: float, numerics: str) -> None:
    """Plot f and f' of EXPR on [-5, 5] to a PNG."""
    from orchestrator.space.plot import plot_functions

    path = plot_functions([expr], output, betas=[beta], numerics=numerics)  # type: ignore[arg-type]
    click.echo(f"wrote {path}")
