"""The search's trials indexed for one tick: so that a tick costs what is in flight, not the
trials so far.

A tick asks the same questions of the trials every poll: which are queued, launched, held or
marked stopped; how many are done, trained, failed, cached, duplicates, screened, stopped early;
the best complete result; the ended curves the early-stopping rule reads; the trials of a
fingerprint; the done trials in index order (a generation's batch); the failures the brake
counts and the last trained children settled. ``TrialIndex`` answers each from what it keeps,
and is told of a trial whose state changed (``refile``): who changes a trial refiles it.

It is derived, never stored: built from the trials (``TrialIndex.of``) when a search starts or
resumes, so checkpoints are what they were. Its answers equal the pure functions computed over
every trial (``trials.summarize``, ``trials.tally``, ``trials.generation_batch``,
``stopping.history``, ``brake.stop_reason``, ``ledger.gpu_hours``), which
tests/unit/test_trial_index.py checks after any sequence of changes. A trial never leaves
``done`` (nothing in the loop undoes a result).
"""

from __future__ import annotations

import heapq
import itertools
import math
from bisect import insort
from collections.abc import Iterable, Iterator, Sequence

from orchestrator.loop.brake import counts_as_failed
from orchestrator.loop.ledger import DONE, LAUNCHED, QUEUED, gpu_hours
from orchestrator.loop.ranks import Ranks
from orchestrator.loop.trials import HELD, Progress, Stop, Tally, Trial
from orchestrator.search.stopping import Trial as Ended

__all__ = ["TRAINED", "TrialIndex", "tags_of"]

STOP_PENDING = "stop-pending"  # marked stopped early, its process and run not yet stopped
UNCURVED = "uncurved"  # trained, ended, its curve not read yet (``loop.stopping``)
BRAKE_FAILED = "brake-failed"  # what ``budget.max_failed`` counts (``brake.counts_as_failed``)
TRAINED = "trained"  # counts against the trial budget (``trials.trained``)
FAILED = "failed"  # done with a failure (any source)
FAILED_TRAINED = "failed-trained"  # ... trained by its own child
STOPPED_EARLY = "stopped-early"  # done, stopped by the early-stopping rule


def tags_of(t: Trial) -> frozenset[str]:
    """The sets a trial belongs to: its state, ``source:<source>``, and the groups above."""
    tags = {t.state, "source:" + t.source}
    if t.source == "trained" and t.state in (LAUNCHED, DONE):
        tags.add(TRAINED)
    if t.state == DONE:
        if t.failure is not None:
            tags.add(FAILED)
            if t.source == "trained":
                tags.add(FAILED_TRAINED)
        if t.stopped_at is not None:
            tags.add(STOPPED_EARLY)
        if t.source == "trained" and t.curve is None and t.run_id is not None:
            tags.add(UNCURVED)
    if t.stop_pending:
        tags.add(STOP_PENDING)
    if counts_as_failed(t):
        tags.add(BRAKE_FAILED)
    return frozenset(tags)


def scored(t: Trial) -> bool:
    """A complete result that may be the best so far (``trials.summarize``)."""
    return (t.state == DONE and t.reward is not None and math.isfinite(t.reward)
            and t.stopped_at is None)


class TrialIndex:
    """What a tick reads of the trials, kept as they change (see the module). ``streak``:
    how many trained children settled since ``since`` the brake looks at
    (``budget.stop_after_infrastructure_failures``)."""

    def __init__(self, streak: int = 0, since: float = 0.0) -> None:
        self.streak, self.since = streak, since
        self._tags: dict[str, frozenset[str]] = {}
        self._members: dict[str, dict[str, Trial]] = {}
        self._at: dict[int, Trial] = {}
        self._by_print: dict[str, list[Trial]] = {}
        self._done = Ranks()
        self._best: list[tuple[float, int, int, Trial]] = []  # (-reward, index, seq, trial)
        self._pushed: dict[str, float] = {}  # trial id -> reward pushed on ``_best``
        self._seq = itertools.count()
        self._history: list[Ended] = []
        self._history_at: dict[str, int] = {}
        self._recent: list[tuple[float, int, Trial]] = []  # (finished, index, trial), last ones
        self._launches: dict[str, dict[str, Trial]] = {}  # launch -> its trained, started members
        self._launch_of: dict[str, str] = {}  # trial id -> the launch it is counted in
        self._closed: dict[str, float] = {}  # launch -> its span, once every member finished
        self._open: set[str] = set()  # the other launches: a member still running
        self._closed_total = 0.0
        self._settled: list[Trial] = []  # every trial in the order it became done (never leaves)

    @classmethod
    def of(cls, trials: Iterable[Trial], streak: int = 0, since: float = 0.0) -> TrialIndex:
        """The index of ``trials``, built from scratch (at start and at resume)."""
        index = cls(streak, since)
        index.refile(*trials)
        return index

    # -- keeping it ------------------------------------------------------------------------------

    def refile(self, *trials: Trial) -> None:
        """File trials new to the index, or again after their state changed."""
        for t in trials:
            if t.index not in self._at:
                self._at[t.index] = t
                self._by_print.setdefault(t.fingerprint, []).append(t)
            old, new = self._tags.get(t.trial_id, frozenset()), tags_of(t)
            for tag in old - new:
                del self._members[tag][t.trial_id]
            for tag in new - old:
                self._members.setdefault(tag, {})[t.trial_id] = t
            if DONE in new - old:
                self._settled.append(t)
            self._tags[t.trial_id] = new
            if t.state == DONE:
                self._done.mark(t.index)
            else:
                self._done.unmark(t.index)
            self._file_best(t)
            self._file_history(t)
            self._file_recent(t)
            self._file_launch(t)

    def _file_best(self, t: Trial) -> None:
        if scored(t) and self._pushed.get(t.trial_id) != t.reward:
            assert t.reward is not None
            self._pushed[t.trial_id] = t.reward
            heapq.heappush(self._best, (-t.reward, t.index, next(self._seq), t))

    def _file_history(self, t: Trial) -> None:
        if t.state != DONE or t.curve is None:
            return
        ended = Ended(tuple(t.curve), t.failure is None and t.stopped_at is None)
        at = self._history_at.get(t.trial_id)
        if at is None:
            self._history_at[t.trial_id] = len(self._history)
            self._history.append(ended)
        else:
            self._history[at] = ended

    def _file_recent(self, t: Trial) -> None:
        if (self.streak < 1 or t.source != "trained" or t.state != DONE or t.finished is None
                or t.finished < self.since or any(r is t for _, _, r in self._recent)):
            return
        insort(self._recent, (t.finished, t.index, t), key=lambda r: (r[0], r[1]))
        del self._recent[:-self.streak]

    def _file_launch(self, t: Trial) -> None:
        """GPU time: a launch's trained members that started (``ledger.gpu_hours``)."""
        old = self._launch_of.pop(t.trial_id, None)
        new = t.launch if TRAINED in self._tags[t.trial_id] and t.began is not None else None
        if old is not None:
            del self._launches[old][t.trial_id]
        if new is not None:
            self._launch_of[t.trial_id] = new
            self._launches.setdefault(new, {})[t.trial_id] = t
        for launch in {old, new} - {None}:
            assert launch is not None
            self._closed_total -= self._closed.pop(launch, 0.0)
            self._open.discard(launch)
            members = self._launches[launch].values()
            if not members:
                del self._launches[launch]
            elif all(m.finished is not None for m in members):
                span = max(m.finished or 0.0 for m in members) - min(m.began or 0.0
                                                                      for m in members)
                self._closed[launch] = span
                self._closed_total += span
            else:
                self._open.add(launch)

    # -- reading it ------------------------------------------------------------------------------

    def _in(self, tag: str) -> dict[str, Trial]:
        return self._members.get(tag, {})

    def count(self, tag: str) -> int:
        return len(self._in(tag))

    def _listed(self, *tags: str) -> list[Trial]:
        """The trials of ``tags`` (sets of their own, none in two), in index order."""
        return sorted((t for tag in tags for t in self._in(tag).values()), key=lambda t: t.index)

    def in_state(self, state: str) -> list[Trial]:
        """The trials in ``state``, in index order (not for ``done``: that is every trial)."""
        assert state != DONE, "done trials are counted, never listed per tick"
        return self._listed(state)

    def live(self) -> list[Trial]:
        """Queued and launched trials, in index order: what the launch ledger works on."""
        return self._listed(QUEUED, LAUNCHED)

    def stop_pending(self) -> list[Trial]:
        return self._listed(STOP_PENDING)

    def uncurved(self) -> list[Trial]:
        """Trained trials ended since the early-stopping rule last read curves."""
        return self._listed(UNCURVED)

    def with_print(self, fingerprint: str) -> Sequence[Trial]:
        """The trials of one function (fingerprint), in index order (the index's own list)."""
        return self._by_print.get(fingerprint, [])

    def held_behind(self, fingerprint: str) -> list[Trial]:
        return [t for t in self.with_print(fingerprint) if t.state == HELD]

    @property
    def history(self) -> Sequence[Ended]:
        """The ended curves the early-stopping rule reads (``stopping.history``), in the order
        they ended: the rules do not depend on the order."""
        return self._history

    def brake_view(self, max_failed: int | None) -> list[Trial]:
        """The trials ``brake.stop_reason`` decides on as it would over all: the failures it
        counts (fewer than ``max_failed`` while the search runs) and the last ``streak`` trained
        children settled since ``since``."""
        view = {t.trial_id: t for _, _, t in self._recent}
        if max_failed is not None:
            view |= self._in(BRAKE_FAILED)
        return list(view.values())

    def settled_since(self, cursor: int) -> tuple[list[Trial], int]:
        """The trials that became done since ``cursor`` (0: every one), in the order they did,
        and the cursor to pass next: what a watcher of settles reads, not every trial again."""
        return self._settled[cursor:], len(self._settled)

    def done_in_order(self, start: int, stop: int) -> list[Trial] | None:
        """The done trials at places ``start`` to ``stop`` in index order; None until that many
        are done."""
        if stop > len(self._done):
            return None
        return [self._at[self._done.kth(k)] for k in range(start, stop)]

    def best(self) -> Trial | None:
        """The best complete result (the earliest of equal rewards), as ``summarize`` finds."""
        while self._best:
            reward, _, _, t = self._best[0]
            if scored(t) and t.reward == -reward:
                return t
            heapq.heappop(self._best)
            if self._pushed.get(t.trial_id) == -reward:
                del self._pushed[t.trial_id]
        return None

    def tally(self) -> Tally:
        """The counts of the per-generation metrics (``trials.tally``)."""
        return Tally(unique_functions=len(self._by_print), cache_hits=self.count("source:cache"),
                     duplicates=self.count("source:duplicate"), trained=self.count(TRAINED),
                     failed=self.count(FAILED))

    def gpu_hours(self, now: float, gpus: int) -> float:
        """``ledger.gpu_hours`` of the trained trials: the spans of launches whose members all
        finished are kept, those of the others (in flight) computed now."""
        open_spans = ((launch, t.began, t.finished) for launch in self._open
                      for t in self._launches[launch].values())
        return self._closed_total * gpus / 3600.0 + gpu_hours(open_spans, now, gpus)

    def running_launches(self) -> int:
        """Processes in flight (members of a pack share one)."""
        return len({t.launch for t in self._in(LAUNCHED).values()})

    def progress(self, samples: int, budget: int, stopped: Stop | None = None) -> Progress:
        """``trials.summarize`` of the trials, from the counts."""
        return Progress(
            done=len(self._done), trained=self.count(TRAINED), running=self.count(LAUNCHED),
            packs=self.running_launches(), queued=self.count(QUEUED),
            failed=self.count(FAILED_TRAINED), cache_hits=self.count("source:cache"),
            duplicates=self.count("source:duplicate"), screened=self.count("source:screen"),
            stopped_early=self.count(STOPPED_EARLY), samples=samples, budget=budget,
            best=self.best(), stopped=stopped)

    def __iter__(self) -> Iterator[Trial]:  # for checks: every trial filed, in index order
        return iter(sorted(self._at.values(), key=lambda t: t.index))
