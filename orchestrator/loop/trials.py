"""A search's trials: one candidate's life each, and what is read from the list of them.

A trial is a launch ledger ``Record`` (``orchestrator.loop.ledger``) with what the search adds: the
candidate, its fingerprint, where its result came from (``source``) and the result. States:
``queued`` (run created, waiting for a slot) -> ``launched`` -> ``done``; ``held`` (a duplicate
waiting for the same function's result) -> ``done``. The list of trials is the controller's
checkpoint; the dedup table, the progress and the per-generation metrics are rebuilt from it.
The functions here compute over every trial: they define what ``loop.index`` keeps as trials
change, so that a tick need not pass over them all.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from orchestrator.contract import REWARD, Cause, Tag, TrainConfig, TrialSpec, cause_named
from orchestrator.loop.causes import legacy_cause
from orchestrator.loop.leaderboard import Entry
from orchestrator.loop.ledger import DONE, LAUNCHED, QUEUED, is_crash, launch_of
from orchestrator.search.base import Candidate, Result
from orchestrator.search.dedup import Dedup
from orchestrator.space.expr import to_math
from orchestrator.space.naming import trial_run_name

HELD = "held"

__all__ = ["DONE", "HELD", "LAUNCHED", "QUEUED", "Progress", "Stop", "Tally", "Trial",
           "child_spec", "dedup_from", "generation_batch", "generation_metrics", "original",
           "original_run", "run_tags", "summarize", "tally", "trained", "trial_points"]


@dataclass
class Trial:
    """One candidate's life in this search; the controller's checkpoint is the list of these."""

    trial_id: str
    index: int
    candidate: Candidate
    fingerprint: str
    state: str
    source: str = "trained"  # trained | duplicate | cache | screen
    run_id: str | None = None
    reward: float | None = None
    failure: str | None = None
    started: float | None = None
    finished: float | None = None
    began: float | None = None  # its child's start (``ledger.gpu_hours``); None: not yet
    launches: int = 0
    launch_id: str | None = None  # the trial id, or its pack's id; None until first launched
    stopped_at: int | None = None  # stopped early at this step (``loop.stopping``): not complete
    stop_pending: bool = False  # marked stopped; its process and run not yet stopped
    curve: list[float] | None = None  # val_accuracy at evaluation steps, once ended (stopping)
    cause: Cause | None = None  # why its child crashed, as data (``loop.causes``); else None

    @property
    def launch(self) -> str:
        """What the backend knows this trial's process by (ledgers from before packing: its id)."""
        return launch_of(self.trial_id, self.launch_id)

    def as_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in _FIELDS}  # dataclasses.asdict: 10× slower
        d["candidate"] = self.candidate.as_dict()
        d["cause"] = None if self.cause is None else self.cause.value
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Trial:
        """A checkpointed trial; one from before ``began`` counts from its launch, as then, and
        one from before ``cause`` has its cause read from its failure text (``legacy_cause``)."""
        cause = (cause_named(d["cause"], f"trial {d.get('trial_id')!r}: cause") if "cause" in d
                 else legacy_cause(d.get("failure")))
        return cls(**{"began": d.get("started"), **d,
                      "candidate": Candidate.from_dict(d["candidate"]), "cause": cause})

    @property
    def result(self) -> Result:
        if self.failure is not None:
            return Result.failed(self.candidate, self.failure)
        return Result.success(self.candidate, float(self.reward or 0.0))


_FIELDS = fields(Trial)


def child_spec(trial: Trial, search: str, experiment: str, child: TrainConfig) -> dict[str, Any]:
    """The trial spec its child reads (``contract.TrialSpec``); the run id travels beside it."""
    return TrialSpec(expression=trial.candidate.expression, search=search, trial=trial.trial_id,
                     experiment=experiment, child=child, fingerprint=trial.fingerprint,
                     ).model_dump(mode="json", exclude={"run_id"})


def run_tags(trial: Trial, config_hash: str, duplicate_of: str | None = None) -> dict[str, str]:
    """The tags of a trial's MLflow run: what the evaluation cache and the UI look it up by, its
    name for people (``t7 · σ(β·x)·x``) and, for a result reused from another run, that run."""
    tags = {
        Tag.FINGERPRINT: trial.fingerprint,
        Tag.CONFIG_HASH: config_hash,
        Tag.EXPRESSION: trial.candidate.expression,
        Tag.MATH: to_math(trial.candidate.expr),
        Tag.SOURCE: trial.source,
        Tag.TRIAL_INDEX: str(trial.index),
        Tag.RUN_NAME: trial_run_name(trial.index, trial.candidate.expr),
    }
    if duplicate_of is not None:
        tags[Tag.DUPLICATE_OF] = duplicate_of
    if trial.stopped_at is not None:  # a duplicate of a child stopped early
        tags[Tag.STOPPED_EARLY] = str(trial.stopped_at)
    return tags


def original(trials: Iterable[Trial], fingerprint: str) -> Trial | None:
    """The trial whose result a duplicate of ``fingerprint`` repeats: the first of that function
    trained by this search or taken from the cache that settled without a crash (a crash says
    nothing about the function, so the duplicate behind it was trained instead)."""
    return next((t for t in sorted(trials, key=lambda t: t.index)
                 if t.fingerprint == fingerprint and t.source in ("trained", "cache")
                 and t.state == DONE and not is_crash(t.failure)), None)


def original_run(trials: Iterable[Trial], fingerprint: str) -> str | None:
    """The run of the trial whose result a duplicate of ``fingerprint`` repeats (``original``)."""
    o = original(trials, fingerprint)
    return None if o is None else o.run_id


def trial_points(trials: Sequence[Trial], start: int, best: float | None = None
                 ) -> tuple[list[tuple[int, dict[str, float]]], int, float | None]:
    """The parent run's per-trial series from trial ``start`` on (``trials`` in index order, as
    the controller keeps them), as far as trials are done in index order:
    ``trial_val_accuracy`` at step = trial index (none for a failure) and the best so far among
    complete children (``best_val_accuracy``; its latest value is the winner's), ``best`` being
    the best before ``start``. Returns the points, where the next call starts and its ``best``:
    a call costs the trials it logs, not the trials before them."""
    points: list[tuple[int, dict[str, float]]] = []
    i = start
    while i < len(trials) and trials[i].state == DONE:
        t = trials[i]
        metrics: dict[str, float] = {}
        if t.reward is not None:
            metrics["trial_" + REWARD] = t.reward
            if t.stopped_at is None:  # a child stopped early is no complete result
                best = t.reward if best is None else max(best, t.reward)
        if best is not None:
            metrics["best_" + REWARD] = best
        if metrics:
            points.append((t.index, metrics))
        i += 1
    return points, i, best


def dedup_from(trials: list[Trial]) -> Dedup:
    """Rebuild the dedup table from a ledger: outcomes of settled functions, and the functions
    being evaluated now (their duplicates wait in the ledger as HELD trials)."""
    dedup = Dedup()
    for t in trials:
        if t.state == DONE and t.source != "screen" and not is_crash(t.failure):
            dedup.outcomes[t.fingerprint] = (t.reward, t.failure)
        elif t.state in (QUEUED, LAUNCHED):
            dedup.held.setdefault(t.fingerprint, [])
    return dedup


def trained(trials: Iterable[Trial]) -> list[Trial]:
    """The trials that count against the trial budget: those trained, launched or done."""
    return [t for t in trials if t.source == "trained" and t.state in (LAUNCHED, DONE)]


@dataclass(frozen=True)
class Stop:
    """Why the failure brake (``orchestrator.loop.brake``) stopped a search before its budget:
    ``reason`` is CamelCase (a status condition's reason), ``message`` one sentence for people."""

    reason: str
    message: str


@dataclass
class Progress:
    """A snapshot for displays: counts, the best trial so far and the budget."""

    done: int = 0
    trained: int = 0
    running: int = 0  # children
    packs: int = 0  # processes/Jobs running them (equal to running without packing)
    queued: int = 0
    failed: int = 0
    cache_hits: int = 0
    duplicates: int = 0
    screened: int = 0
    stopped_early: int = 0  # trials stopped by the early-stopping rule (``loop.stopping``)
    samples: int = 0
    budget: int = 0
    best: Trial | None = None
    finished: bool = False
    stopped: Stop | None = None  # why the failure brake stopped the search, if it did


def summarize(trials: Sequence[Trial], budget: int, packs: int, stopped: Stop | None = None
              ) -> Progress:
    """The progress of a search with these trials, ``packs`` processes running them, stopped
    by the failure brake or not."""
    done = [t for t in trials if t.state == DONE]
    scored = [t for t in done if t.reward is not None and math.isfinite(t.reward)
              and t.stopped_at is None]
    return Progress(
        done=len(done),
        trained=len(trained(trials)),
        running=sum(t.state == LAUNCHED for t in trials),
        packs=packs,
        queued=sum(t.state == QUEUED for t in trials),
        failed=sum(t.failure is not None and t.source == "trained" for t in done),
        cache_hits=sum(t.source == "cache" for t in trials),
        duplicates=sum(t.source == "duplicate" for t in trials),
        screened=sum(t.source == "screen" for t in trials),
        stopped_early=sum(t.stopped_at is not None for t in done),
        samples=len(trials),
        budget=budget,
        best=max(scored, key=lambda t: t.reward or 0.0, default=None),
        stopped=stopped,
    )


@dataclass(frozen=True)
class Tally:
    """The counts on the parent run's per-generation metrics, over every trial so far."""

    unique_functions: int = 0
    cache_hits: int = 0
    duplicates: int = 0
    trained: int = 0
    failed: int = 0  # done with a failure, whatever the source


def tally(trials: Sequence[Trial]) -> Tally:
    """The ``Tally`` of ``trials`` (``loop.index`` keeps it as trials change)."""
    return Tally(unique_functions=len({t.fingerprint for t in trials}),
                 cache_hits=sum(t.source == "cache" for t in trials),
                 duplicates=sum(t.source == "duplicate" for t in trials),
                 trained=len(trained(trials)),
                 failed=sum(t.failure is not None and t.state == DONE for t in trials))


def generation_batch(trials: Sequence[Trial], step: int, size: int) -> list[Trial] | None:
    """Generation ``step``'s ``size`` trials: the done ones at places ``step * size`` onward,
    in index order; None until that many are done (``TrialIndex.done_in_order`` keeps it)."""
    done = sorted((t for t in trials if t.state == DONE), key=lambda t: t.index)
    return done[step * size:(step + 1) * size] if (step + 1) * size <= len(done) else None


def generation_metrics(batch: Sequence[Trial], counts: Tally, failure_reward: float,
                       entropy: float | None = None) -> dict[str, float]:
    """The parent run's metrics for a generation of done trials (``generation_batch``; a
    failure counts ``failure_reward``), with the ``counts`` of every trial so far.
    ``entropy``: the learning strategy's policy entropy, if any."""
    rewards = [t.reward if t.reward is not None else failure_reward for t in batch]
    metrics = {
        "gen_mean_reward": sum(rewards) / len(rewards),
        "gen_max_reward": max(rewards),
        "unique_functions": counts.unique_functions,
        "cache_hits": counts.cache_hits,
        "duplicates": counts.duplicates,
        "trained": counts.trained,
        "failed": counts.failed,
    }
    if entropy is not None:
        metrics["policy_entropy"] = entropy
    return metrics


def entries(trials: Iterable[Trial]) -> Iterator[Entry]:
    """The leaderboard's rows: every trial done with a reward (``leaderboard.rank`` keeps the
    best of each function), less those stopped early, whose reward is no complete result."""
    return (Entry(t.trial_id, t.candidate.expression, t.fingerprint, t.reward)
            for t in trials if t.state == DONE and t.reward is not None and t.stopped_at is None)
