"""``actsearch-ctl``: one click group; each subcommand family lives in its own module, imported
only when one of its commands runs (or ``--help`` lists it)."""

from __future__ import annotations

import click

from orchestrator.cli.lazy import LazyGroup
from orchestrator.log_setup import configure_logging

COMMANDS: dict[str, str] = {
    "space": "orchestrator.cli.space:space",
    "run": "orchestrator.cli.run:run",
    "top": "orchestrator.cli.run:top",
    "ui": "orchestrator.cli.ui:ui",
    "search-sim": "orchestrator.cli.search_sim:search_sim",
    "benchmark": "orchestrator.cli.benchmark:benchmark",
    "benchmark-report": "orchestrator.cli.benchmark:benchmark_report",
    "oneshot": "orchestrator.cli.oneshot:oneshot",
    "table": "orchestrator.cli.table:table",
    "submit": "orchestrator.cli.cluster:submit",
    "list": "orchestrator.cli.cluster:list_searches",
    "status": "orchestrator.cli.cluster:status",
    "logs": "orchestrator.cli.cluster:logs",
    "retry": "orchestrator.cli.cluster:retry",
    "cancel": "orchestrator.cli.cluster:cancel",
    "crd": "orchestrator.cli.crd:crd",
    "operator": "orchestrator.cli.operator:operator",
}
"""Every subcommand: its name and where its click command lives."""


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (-v INFO, -vv DEBUG).")
@click.version_option(package_name="actsearch")
def main(verbose: int) -> None:
    """Search for neural-network activation functions, locally or on Kubernetes."""
    configure_logging(verbose)
