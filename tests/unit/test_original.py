"""Which trial a duplicate repeats (``loop.trials.original``): the link its run carries
(``actsearch.duplicate_of``) and whether it is a complete result both come from that one trial."""

from __future__ import annotations

from orchestrator.contract import FailureKind, failure_text
from orchestrator.loop.trials import Trial, original, original_run
from orchestrator.search.base import Candidate
from orchestrator.space import encode, parse

EXPR = "max(id(x), relu(x))"


def _trial(i: int, *, reward: float | None, failure: str | None = None,
           stopped_at: int | None = None) -> Trial:
    return Trial(f"s-t{i:05d}", i, Candidate(encode(parse(EXPR)), EXPR, 0.0, 0), "fp", "done",
                 reward=reward, failure=failure, run_id=f"run-{i}", stopped_at=stopped_at)


def test_a_duplicate_repeats_the_child_that_trained_its_function_not_one_that_crashed() -> None:
    """A crash says nothing about the function: the function was trained again, and a later
    duplicate reuses that result, so its run links to that run (and is complete as that one)."""
    crashed = _trial(0, reward=None, failure=failure_text(FailureKind.CRASHED, "node lost"))
    retrained = _trial(1, reward=0.9)
    assert original([retrained, crashed], "fp") is retrained
    assert original_run([crashed, retrained], "fp") == "run-1"


def test_the_original_of_a_function_only_crashed_or_unknown_is_none() -> None:
    crashed = _trial(0, reward=None, failure=failure_text(FailureKind.CRASHED, "node lost"))
    assert original([crashed], "fp") is None and original_run([crashed], "fp") is None
    assert original([crashed], "other") is None
