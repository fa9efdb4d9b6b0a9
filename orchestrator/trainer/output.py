"""What a child writes on stdout: with ``--json``, its summary and nothing else.

Shared by the two kinds of child behind ``actsearch-train``, one expression (``cli.py``) and a
one-shot search (``oneshot/entry.py``), so the one-shot child needs nothing from the CLI module
that dispatches to it.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def stdout_kept_for_json() -> Iterator[None]:
    """While training, stdout goes to stderr: MLflow prints its "View run" links on stdout, and
    ``--json`` promises stdout holds the summary and nothing else."""
    with contextlib.redirect_stdout(sys.stderr):
        yield
