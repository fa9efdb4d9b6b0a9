"""``actsearch-ctl table``: build the accuracy table of a spec (train every function × seed,
resumable), export it from MLflow at any point, and summarise a table file."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from orchestrator.cli.errors import expected_errors
from orchestrator.cli.options import run_with_progress


@click.group()
def table() -> None:
    """Real-accuracy tables of activation functions (docs/search.md)."""


def _write(tbl: object, path: Path) -> None:
    from orchestrator.table.format import Table, save

    assert isinstance(tbl, Table)
    save(tbl, path)
    done = tbl.meta["functions"]
    state = "PARTIAL" if tbl.meta["partial"] else "complete"
    click.echo(f"{path}: {done['done']}/{done['planned']} functions, {state} "
               f"({path.stat().st_size:,} bytes)")


@table.command()
@click.argument("spec_path", metavar="SPEC", type=click.Path(exists=True, dir_okay=False))
@click.option("--resume", is_flag=True, help="Continue a build: finished children are kept, "
              "running packs re-attached, the rest trained.")
@click.option("--workdir", type=click.Path(file_okay=False), default=None,
              help="Overrides backend.local.workdir.")
@click.option("--output", type=click.Path(dir_okay=False), default=None,
              help="The table file (default: the spec's output).")
@click.option("--quiet", is_flag=True, help="No live display.")
@expected_errors
def build(spec_path: str, resume: bool, workdir: str | None, output: str | None,
          quiet: bool) -> None:
    """Train every function of SPEC with every seed, then write the table file."""
    from orchestrator.cli.benchmark import _progress_table
    from orchestrator.table.build import build as run_build
    from orchestrator.table.build import plan
    from orchestrator.table.spec import load_table_spec

    spec = load_table_spec(spec_path)
    found, functions = plan(spec)
    click.echo(f"space: {found.sequences:,} sequences, {found.distinct:,} distinct functions, "
               f"{len(found.functions):,} pass the screen; training {len(functions):,} × "
               f"{spec.seeds} seeds", err=True)
    started = time.monotonic()
    go: Callable[..., Any] = functools.partial(run_build, spec, workdir, resume)  # -> a Table
    tbl = run_with_progress(go, lambda p: _progress_table(p, started, spec.name), quiet, Console())
    _write(tbl, Path(output) if output else spec.output_path)


@table.command()
@click.argument("spec_path", metavar="SPEC", type=click.Path(exists=True, dir_okay=False))
@click.option("--workdir", type=click.Path(file_okay=False), default=None)
@click.option("--output", type=click.Path(dir_okay=False), default=None)
@click.option("--fresh", is_flag=True, help="Read every run again instead of keeping the "
              "entries of the existing output file.")
@expected_errors
def export(spec_path: str, workdir: str | None, output: str | None, fresh: bool) -> None:
    """Write the table of SPEC's build as MLflow holds it now: a build that finished, or one
    still running or killed (then marked partial: only functions with every seed ended). The
    functions already in the output file (an earlier export of this build) are kept as they
    are, and only the new ones read from MLflow."""
    from orchestrator.table.build import export as run_export
    from orchestrator.table.format import TableError, load
    from orchestrator.table.spec import load_table_spec

    spec = load_table_spec(spec_path)
    path = Path(output) if output else spec.output_path
    known = None
    if path.exists() and not fresh:
        try:
            known = load(path)
        except TableError:
            known = None  # not a table of ours: read everything
    _write(run_export(spec, workdir, known), path)


@table.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--top", type=click.IntRange(min=1), default=10, show_default=True)
@expected_errors
def show(path: str, top: int) -> None:
    """Summarise a table file: its build, and its best functions by mean final accuracy."""
    from orchestrator.table.format import load
    from orchestrator.table.replay import ranking

    tbl = load(path)
    meta = tbl.meta
    b, m = meta.get("build", {}), meta.get("machine", {})
    click.echo(f"{meta.get('name')}: {len(tbl)} functions × seeds {list(tbl.seeds)}, "
               f"{meta.get('model')} on {meta.get('dataset')}, steps {list(tbl.steps)}"
               f"{' (PARTIAL)' if meta.get('partial') else ''}")
    click.echo(f"built {b.get('started')} – {b.get('ended')}, {b.get('cpu_s')} CPU-s, "
               f"on {m.get('cpu')} ({m.get('cores')} cores)")
    ranked = ranking(tbl)
    failed = len(tbl) - len(ranked)
    click.echo(f"{failed} functions with a failed seed; best of the {len(ranked)} others:")
    for e, mean in ranked[:top]:
        seeds = ", ".join(f"{e.final(s):.4f}" for s in e.seeds)
        click.echo(f"  {mean:.4f}  [{seeds}]  {e.expression}")
