"""The failure brake: when a search stops instead of spending its budget on children that fail.

Two rules over the trials, both pure, both on the budget (live-editable, so raising a limit and
resuming goes on):

- ``budget.max_failed`` (Katib's ``maxFailedTrialCount``): this many trained children failed.
  A diverged loss is not counted: it is the function's own verdict (``FailureKind.permanent``),
  scored ``failure_reward`` like a low accuracy, and common in this search space. Everything
  else is (a crash, an error, out of memory, a run that ended without its reward).
- ``budget.stop_after_infrastructure_failures`` (K): the last K trained children settled since
  the search (re)started all failed for the same infrastructure cause (``infrastructure_cause``,
  read from the trial's stored ``cause``, never from its failure text): nothing about the
  functions, everything about the cluster or the servers, so every further child would fail the
  same way. Counting from the (re)start lets a search whose cause was fixed
  resume; a child that could not start costs nothing, but a search of such failures would say
  Succeeded with nothing learnt.

Which causes are infrastructure, and why that differs from the children that cannot start
(a pod that stays Pending beyond ``max_pending_seconds`` is not an infrastructure cause: a busy
cluster is not a broken one), is the table in ``orchestrator.loop.causes``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from orchestrator.contract import failure_kind
from orchestrator.loop.causes import infrastructure_cause
from orchestrator.loop.ledger import DONE
from orchestrator.loop.trials import Stop, Trial
from orchestrator.spec import BudgetSpec

__all__ = ["INFRASTRUCTURE_FAILURES", "TOO_MANY_FAILURES", "Stop", "counts_as_failed",
           "infrastructure_cause", "stop_reason"]

TOO_MANY_FAILURES: Final = "TooManyFailures"
INFRASTRUCTURE_FAILURES: Final = "InfrastructureFailures"


def counts_as_failed(trial: Trial) -> bool:
    """A trained child that failed for a reason other than its function diverging."""
    return (trial.source == "trained" and trial.state == DONE and trial.failure is not None
            and not failure_kind(trial.failure).permanent)


def stop_reason(trials: Sequence[Trial], budget: BudgetSpec, since: float) -> Stop | None:
    """Whether a search with these ``trials`` stops now: ``budget.max_failed`` failed children,
    or the last ``budget.stop_after_infrastructure_failures`` trained children settled at
    ``since`` or later all failed for one infrastructure cause."""
    max_failed, streak = budget.max_failed, budget.stop_after_infrastructure_failures
    if max_failed is not None:
        failed = sum(map(counts_as_failed, trials))
        if failed >= max_failed:
            return Stop(TOO_MANY_FAILURES, f"{failed} trained children failed, the limit "
                        f"budget.max_failed is {max_failed}")
    if streak < 1:
        return None
    recent = sorted((t for t in trials if t.source == "trained" and t.state == DONE
                     and t.finished is not None and t.finished >= since),
                    key=lambda t: (t.finished or 0.0, t.index))[-streak:]
    causes = {infrastructure_cause(t.cause) for t in recent}
    if len(recent) < streak or len(causes) != 1 or None in causes:
        return None
    (cause,) = causes
    return Stop(INFRASTRUCTURE_FAILURES, f"the last {streak} children failed because {cause} "
                f"(budget.stop_after_infrastructure_failures is {streak}); the last one: "
                f"{recent[-1].failure}")
