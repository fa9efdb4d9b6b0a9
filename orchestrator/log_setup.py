"""One logging setup for every program of the project: ``actsearch-ctl`` (its ``operator``
command included) and ``actsearch-train``. Importable without torch or any client library, so
the trainer's entry pulls nothing more in.

``-v`` means the same everywhere: one level more detail than the program's default, ``-vv`` two
(DEBUG is the most there is). ``actsearch-ctl`` logs WARNING and above by default: a command
line speaks through its output, and the operator's log is quiet unless asked (the chart's
``controller.verbosity``: 0 warnings, 1 state changes with INFO, 2 polling with DEBUG). On
``actsearch-ctl`` a ``-v`` counts the same before the command and after it: ``actsearch-ctl -v
operator`` is ``actsearch-ctl operator -v``. A child (``actsearch-train``) logs INFO by
default: its log is the record of its training, read after the fact. Client libraries (boto3,
urllib3, MLflow, kopf's aiohttp, the Kubernetes client) stay at WARNING at most: their DEBUG
lines drown the project's own. Every line goes through ``redact.RedactingFilter``: no URI's
password reaches a log.
"""

from __future__ import annotations

import json
import logging
import sys

from orchestrator.redact import RedactingFilter

COMMAND_LINE = logging.WARNING
"""The default level of ``actsearch-ctl``."""
CHILD = logging.INFO
"""The default level of ``actsearch-train``."""
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
                      default: int = COMMAND_LINE, replace: bool = False) -> None:
    """Log to stderr at ``level_of(verbosity, default)``, as text or (``json_format``) JSON.

    Without ``replace``, a setup already in place is left alone, as ``logging.basicConfig``
    does (a test runner's, a program embedding the CLI). A long-running program replaces it:
    the operator runs under ``actsearch-ctl``'s group, which configured logging first.
    """
    if logging.getLogger().handlers and not replace:
        return
    level = level_of(verbosity, default)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_format else logging.Formatter(FORMAT))
    handler.addFilter(RedactingFilter())
    logging.basicConfig(level=level, handlers=[handler], force=True)
    for name in NOISY:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))


def group_verbosity() -> int:
    """The count of ``-v`` given to ``actsearch-ctl`` before the command (0 outside a click
    command, or when the group takes none)."""
    import click

    ctx = click.get_current_context(silent=True)
    root = ctx.find_root() if ctx is not None else None
    if root is None or root is ctx:
        return 0
    return int(root.params.get("verbose") or 0)
