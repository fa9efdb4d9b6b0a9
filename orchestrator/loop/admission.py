"""What becomes of a proposed candidate before anything is trained: screened out by the numeric
screen, its result reused from an earlier duplicate in this search, held behind a duplicate
being trained now, taken from the evaluation cache of the experiment, or queued for training.

One function, so the controller's proposal step reads as a loop over verdicts, and the order of
the checks (screen, this search's dedup, then the cross-search cache) is written once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from orchestrator.contract import FailureKind, failure_text
from orchestrator.loop.tracker import TrialOutcome
from orchestrator.loop.trials import Trial, original
from orchestrator.search.dedup import Dedup
from orchestrator.space.screen import screen
from orchestrator.spec import SearchSpec

Source = Literal["screen", "duplicate", "cache", "held", "trained"]


@dataclass(frozen=True)
class Admission:
    """``source``: where the trial's result comes from (``held``: a duplicate in flight will
    give it; ``trained``: its own child); ``reward``/``failure``: the result, when known now."""

    source: Source
    reward: float | None = None
    failure: str | None = None
    duplicate_of: str | None = None  # the run whose result a duplicate or cache hit repeats


def admit(trial: Trial, spec: SearchSpec, dedup: Dedup,
          cached: Callable[[str, str], TrialOutcome | None],
          trials: Sequence[Trial] = ()) -> Admission:
    """The verdict on a freshly proposed ``trial`` (``dedup`` is updated as ``Dedup.route``
    does: a function to train is marked in flight; a duplicate takes its original's
    ``stopped_at``)."""
    child = spec.child
    verdict = screen(trial.candidate.expr, child.numerics, spec.screen.config()) \
        if spec.screen.enabled else None
    if verdict is not None and not verdict.ok:
        return Admission("screen", None, failure_text(FailureKind.SCREENED, verdict.reason))
    routed = dedup.route([trial.candidate], [trial.fingerprint])
    if routed.reused:  # a duplicate of a child stopped early is marked so: not complete either
        first = original(trials, trial.fingerprint)
        trial.stopped_at = None if first is None else first.stopped_at
        return Admission("duplicate", routed.reused[0].reward, routed.reused[0].failure,
                         None if first is None else first.run_id)
    if not routed.evaluate:
        return Admission("held")
    hit = cached(trial.fingerprint, child.config_hash())
    if hit is not None:
        return Admission("cache", hit.reward, hit.failure, hit.run_id)
    return Admission("trained")
