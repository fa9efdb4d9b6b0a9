"""The end of a search: its leaderboard and a plot of its best functions, logged to the search's
parent run, which is then closed. Shared by ``actsearch-ctl run`` and the operator."""

from __future__ import annotations

import json
from pathlib import Path

from orchestrator.loop.controller import Controller
from orchestrator.loop.leaderboard import Entry, to_markdown
from orchestrator.space import parse

PLOTTED = 5  # functions drawn in top_functions.png


def publish(ctl: Controller, top: int, workdir: Path) -> tuple[list[Entry], Path | None]:
    """Log ``leaderboard.md``, ``leaderboard.json`` and ``top_functions.png`` (written under
    ``workdir``) to the parent run and end it; returns the rows and the plot's path."""
    from orchestrator.space.plot import plot_functions

    rows = ctl.leaderboard(top)
    run_id = ctl.parent_run_id
    if run_id is None:
        raise RuntimeError(f"search {ctl.name} was not started: it has no parent run to report to")
    ctl.tracker.log_text(run_id, to_markdown(rows), "leaderboard.md")
    ctl.tracker.log_text(run_id, json.dumps([e.__dict__ for e in rows], indent=2),
                         "leaderboard.json")
    png = None
    if rows:
        workdir.mkdir(parents=True, exist_ok=True)
        png = plot_functions([parse(e.expression) for e in rows[:PLOTTED]],
                             workdir / "top_functions.png")
        ctl.tracker.log_file(run_id, str(png))
    ctl.tracker.finish_search(run_id)
    return rows, png
