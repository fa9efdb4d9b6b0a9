"""The end of a search: its leaderboard and a plot of its best functions, logged to the search's
parent run, which is then closed. Shared by ``actsearch-ctl run`` and the operator.

The parent run is made readable in the MLflow UI: its name says the winner and its accuracy, its
description (``mlflow.note.content``) states the winner and carries the leaderboard, and the tags
``actsearch.best_expression``/``actsearch.best_val_accuracy`` hold them for queries and columns.
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

from orchestrator.contract import REWARD, Tag
from orchestrator.loop.controller import Controller
from orchestrator.loop.leaderboard import Entry, accuracy_text, to_markdown
from orchestrator.space import parse, to_math
from orchestrator.space.naming import shorten

PLOTTED = 5  # functions drawn in top_functions.png


def with_test_accuracy(ctl: Controller, rows: list[Entry]) -> list[Entry]:
    """Rows with the test accuracy and run id their child logged (when the tracker has them).

    A row settled with another run's result (a duplicate, or a cache hit from an earlier
    search) trained nothing, so its own run has no test accuracy: it is read from the run it
    repeats (``actsearch.duplicate_of``), one request per such row of the leaderboard."""
    runs = ctl.tracker.trial_runs(ctl.name)
    out = []
    for e in rows:
        run = runs.get(e.trial_id)
        metrics = getattr(run, "metrics", None) or {}
        test = metrics.get("test_accuracy")
        original = (getattr(run, "tags", None) or {}).get(Tag.DUPLICATE_OF)
        if test is None and original:
            history = ctl.tracker.metric_history(original, "test_accuracy")
            test = history[max(history)] if history else None
        out.append(replace(e, test_accuracy=test, run_id=run.run_id if run is not None else None))
    return out


def description(name: str, rows: list[Entry]) -> str:
    """The parent run's description: the winner in a sentence, then the leaderboard."""
    if not rows:
        return f"Search **{name}**: no trial finished with a {REWARD}.\n"
    w = rows[0]
    tie = " (tied with others on validation accuracy: see the test accuracy)" if w.tied else ""
    return (f"Search **{name}**: best function **{to_math(parse(w.expression))}** "
            f"(`{w.expression}`), {REWARD} **{w.reward:.4f}**, test accuracy "
            f"{accuracy_text(w.test_accuracy)}, trial {w.trial_id}{tie}.\n\n" + to_markdown(rows))


def publish(ctl: Controller, top: int, workdir: Path) -> tuple[list[Entry], Path | None]:
    """Log ``leaderboard.md``, ``leaderboard.json`` and ``top_functions.png`` (written under
    ``workdir``, also an MLflow image) to the parent run, name and describe it after the winner,
    and end it; returns the rows and the plot's path."""
    from orchestrator.space.plot import plot_functions

    run_id = ctl.parent_run_id
    if run_id is None:
        raise RuntimeError(f"search {ctl.name} was not started: it has no parent run to report to")
    rows = with_test_accuracy(ctl, ctl.leaderboard(top))
    ctl.tracker.log_text(run_id, to_markdown(rows), "leaderboard.md")
    ctl.tracker.log_text(run_id, json.dumps([asdict(e) for e in rows], indent=2),
                         "leaderboard.json")
    tags = {Tag.NOTE: description(ctl.name, rows)}
    if rows:
        w = rows[0]
        tags |= {Tag.BEST_EXPRESSION: w.expression, Tag.BEST_MATH: to_math(parse(w.expression)),
                 Tag.BEST_VAL_ACCURACY: f"{w.reward:.4f}",
                 Tag.RUN_NAME: shorten(f"{ctl.name} · best {to_math(parse(w.expression))} "
                                       f"· {w.reward:.4f}", 120)}
    ctl.tracker.set_tags(run_id, tags)
    png = None
    if rows:
        workdir.mkdir(parents=True, exist_ok=True)
        png = plot_functions([parse(e.expression) for e in rows[:PLOTTED]],
                             workdir / "top_functions.png")
        ctl.tracker.log_file(run_id, str(png))
        ctl.tracker.log_image(run_id, str(png), "top_functions")
    ctl.tracker.finish_search(run_id)
    return rows, png
