"""One logging setup for every program of the project: ``actsearch-ctl``, its ``operator``
command and ``actsearch-train``. Importable without click, torch or any client library, so the
trainer's entry pulls nothing more in.

``-v`` means the same everywhere: one level more detail than the program's default, ``-vv`` two
(DEBUG is the most there is). A command line speaks through its output, so ``actsearch-ctl``
logs WARNING and above by default (``-v`` INFO, ``-vv`` DEBUG); a service tells its story in
its log, so the operator and a child log INFO by default (``-v`` DEBUG). Client libraries
(boto3, urllib3, MLflow, kopf's aiohttp, the Kubernetes client) stay at WARNING at most: their
DEBUG lines drown the project's own.
"""

from __future__ import annotations

import json
import logging
import sys

COMMAND_LINE = logging.WARNING
"""The default level of a command that answers on stdout."""
SERVICE = logging.INFO
"""The default level of a long-running program whose log is its record (operator, child)."""
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
NOISY = ("urllib3", "botocore", "boto3", "s3transfer", "mlflow", "aiohttp", "kubernetes")


def level_of(verbosity: int, default: int = COMMAND_LINE) -> int:
    """The root level for ``verbosity`` (the count of ``-v``): one level per ``-v`` below
    ``default``, never below DEBUG."""
    return max(logging.DEBUG, default - 10 * max(verbosity, 0))


class JsonFormatter(logging.Formatter):
    """One JSON object per line (time, level, logger, message), for in-cluster log
    collection."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps({"time": self.formatTime(record), "level": record.levelname,
                           "logger": record.name, "message": record.getMessage()})


def configure_logging(verbosity: int = 0, json_format: bool = False, *,
                      service: bool = False) -> None:
    """Log to stderr at ``level_of(verbosity, ...)``, as text or (``json_format``) JSON.

    A command line leaves a setup already in place alone, as ``logging.basicConfig`` does (a
    test runner's, a program embedding the CLI). A ``service`` starts at INFO and replaces any
    earlier setup: the operator runs under ``actsearch-ctl``'s group, which configured first.
    """
    level = level_of(verbosity, SERVICE if service else COMMAND_LINE)
    if logging.getLogger().handlers and not service:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_format else logging.Formatter(FORMAT))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    for name in NOISY:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
