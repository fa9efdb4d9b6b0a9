"""Early stopping of children in flight (``SearchSpec.early_stopping``; docs/search.md, "Early
stopping of children"): which launches to stop, from a stopping rule's decision on each running
child (``orchestrator.search.stopping``), and stopping them.

Every child reports ``val_accuracy`` at the search's evaluation steps (``spec.evaluation_steps``:
every ``child.eval_every`` steps, and its last). On each poll, after settling, ``stop_early``
reads the curves of the running children only (one metric history per child in flight, so its
cost follows the children in flight), and of each child that ended since the last poll once
(kept on its trial, and so in the checkpoint: the rule's history is never read again). The
trials come from their index (``loop.index``): the history the rule decides from is kept there
as trials end, not rebuilt from every trial each poll.

A launch is one process: a single child, or a pack of children trained side by side. A lone
child the rule stops is stopped. A pack is stopped only when the rule stops every member still
running: stopping the process would stop the members worth training too, so otherwise the pack
runs on and its members the rule would stop finish as complete results.

A stopped child's result is its last validation accuracy (what the strategy, PPO included,
observes as its reward, like any other), with ``Trial.stopped_at`` the step: it is not a complete
result, so it is never on the leaderboard or the best so far, never sealed for the evaluation
cache, and a duplicate of it in this search repeats it as stopped. The order makes a restart
safe: the trials are marked stopped and checkpointed first, then the process is stopped
(``Backend.cancel``: SIGTERM to a local process, the Job deleted) and the run tagged
``actsearch.stopped_early`` and ended KILLED; a controller that dies in between resumes with the
trials done, never launches them again, and finishes stopping them (``Trial.stop_pending``).

Promotion is by continuing: a child the rule lets through simply trains on, so no child is
paused and none is resumed from a checkpoint (asynchronous ASHA needs neither).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from orchestrator.backends.base import Backend
from orchestrator.contract import REWARD
from orchestrator.loop.index import TrialIndex
from orchestrator.loop.ledger import DONE, LAUNCHED
from orchestrator.loop.tracker import Tracker
from orchestrator.loop.trials import Trial
from orchestrator.search.base import Result
from orchestrator.search.stopping import STOP, Rule
from orchestrator.search.stopping import Trial as Ended
from orchestrator.spec import SearchSpec, evaluation_steps

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Running:
    """A child in flight: the launch (its trial id, or its pack's id) and the validation
    accuracies it has logged so far, one per evaluation step reached."""

    launch: str
    curve: tuple[float, ...]


@dataclass(frozen=True)
class Review:
    """The rule's verdict on the children in flight: the trials it would stop, and the launches
    to stop (every member of each is among ``stopped``)."""

    stopped: frozenset[str]
    launches: tuple[str, ...]


def review(rule: Rule, steps: Sequence[int], history: Sequence[Ended],
           running: Mapping[str, Running]) -> Review:
    """Decide for each running trial (by id) from ``history`` (the trials already ended), then
    stop the launches whose members are all stopped."""
    stopped = frozenset(t for t, r in running.items()
                        if r.curve and rule.decide(steps, history, r.curve) == STOP)
    members: dict[str, list[str]] = {}
    for trial_id, r in running.items():
        members.setdefault(r.launch, []).append(trial_id)
    launches = tuple(sorted(launch for launch, ids in members.items()
                            if all(t in stopped for t in ids)))
    return Review(stopped, launches)


def curve_of(values: Mapping[int, float], steps: Sequence[int]) -> tuple[float, ...]:
    """The values logged at the evaluation ``steps``, in order, up to the first step missing."""
    out: list[float] = []
    for step in steps:
        if step not in values:
            break
        out.append(values[step])
    return tuple(out)


def history(trials: Sequence[Trial]) -> list[Ended]:
    """The ended trials this search trained, as the rule sees them: complete when the child ran
    to the end with a result (not failed, not stopped)."""
    return [Ended(tuple(t.curve), t.failure is None and t.stopped_at is None)
            for t in trials if t.state == DONE and t.curve is not None]


def stop_early(spec: SearchSpec, index: TrialIndex, tracker: Tracker, backend: Backend,
               complete: Callable[[Trial, float | None, str | None], list[Result]],
               checkpoint: Callable[[], None]) -> list[Result]:
    """One review of the children in flight: the launches the rule stops are stopped (see the
    module); returns the results of the stopped trials (and of duplicates held behind them),
    which ``complete`` (the controller's) recorded, for the strategy. What it reads and marks
    of the trials goes through their ``index``: the children in flight, those ended since the
    last review, the rule's history kept as trials end."""
    es = spec.early_stopping
    if es is None:
        return []
    steps = evaluation_steps(spec.child)
    finish(backend, tracker, index, index.stop_pending())  # left by a dead controller

    def read(run_id: str) -> tuple[float, ...]:
        return curve_of(tracker.metric_history(run_id, REWARD), steps)

    for t in index.uncurved():  # ended since the last review: their curves, once
        assert t.run_id is not None
        t.curve = list(read(t.run_id))
        index.refile(t)
    running = {t.trial_id: (t, Running(t.launch, read(t.run_id))) for t in
               index.in_state(LAUNCHED) if t.run_id is not None}
    verdict = review(es.make(), steps, index.history, {k: r for k, (_, r) in running.items()})
    stopped = [(t, r.curve) for t, r in running.values() if r.launch in verdict.launches]
    if not stopped:
        return []
    results: list[Result] = []
    for t, curve in stopped:
        t.stopped_at, t.curve, t.stop_pending = steps[len(curve) - 1], list(curve), True
        log.info("trial %s stopped early at step %d of %d (%s %.4f): %s", t.trial_id,
                 t.stopped_at, steps[-1], REWARD, curve[-1], t.candidate.expression)
        results += complete(t, curve[-1], None)
        index.refile(t)
    for t, _ in stopped:  # duplicates held behind a stopped child: no complete result either
        for d in index.with_print(t.fingerprint):
            if d.source == "duplicate" and d.state == DONE and d.stopped_at is None:
                d.stopped_at, d.stop_pending = t.stopped_at, True
                index.refile(d)
    checkpoint()  # stopped for good before any process is: a restart never relaunches them
    finish(backend, tracker, index, index.stop_pending())
    return results


def finish(backend: Backend, tracker: Tracker, index: TrialIndex, stopped: Sequence[Trial]
           ) -> None:
    """Stop the processes of trials marked stopped, tag their runs and end them (idempotent:
    a controller that died half-way does it again)."""
    for launch in sorted({t.launch for t in stopped if t.source == "trained"}):
        backend.cancel(launch)
    for t in stopped:
        if t.run_id is not None and t.stopped_at is not None:
            tracker.stop_run(t.run_id, t.stopped_at)
        t.stop_pending = False
        index.refile(t)
