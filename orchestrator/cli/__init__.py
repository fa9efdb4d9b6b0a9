"""``actsearch-ctl``: one click group; each subcommand family lives in its own module."""

from __future__ import annotations

import logging

import click

from orchestrator.cli.benchmark import benchmark, benchmark_report
from orchestrator.cli.cluster import cancel, list_searches, logs, retry, status, submit
from orchestrator.cli.crd import crd
from orchestrator.cli.operator import operator
from orchestrator.cli.oneshot import oneshot
from orchestrator.cli.run import run, top
from orchestrator.cli.search_sim import search_sim
from orchestrator.cli.space import space


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (-v INFO, -vv DEBUG).")
@click.version_option(package_name="actsearch")
def main(verbose: int) -> None:
    """Search for neural-network activation functions, locally or on Kubernetes."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


main.add_command(space)
main.add_command(run)
main.add_command(top)
main.add_command(search_sim)
main.add_command(benchmark)
main.add_command(benchmark_report)
main.add_command(oneshot)
for command in (submit, list_searches, status, logs, retry, cancel, crd, operator):
    main.add_command(command)
