"""In-memory stand-ins for the tracker and the backend, implementing the controller's protocols.

The fake backend "trains" a child by writing its outcome into the fake tracker after a few
ticks, tagging the run with the fingerprint the real child records (``TrialSpec.
function_fingerprint``); the reward is a deterministic function of the expression, so runs can be
compared. The fake tracker's evaluation cache reuses what the real one does
(``contract.reusable_result``). A pack
(``{"pack": [trial spec, ...]}``) is one launch whose members each get their own outcome, as the
trainer's packed mode does: a diverged member fails alone, and the process exits 3 only when
every member diverged.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from orchestrator.backends.base import ChildState, Launch
from orchestrator.contract import PACK_KEY, Tag, TrialSpec, reusable_result


@dataclass
class FakeRun:
    run_id: str
    trial_id: str
    tags: dict[str, str]
    status: str = "RUNNING"
    reward: float | None = None
    failure: str | None = None

    @property
    def done(self) -> bool:
        return self.status in ("FINISHED", "FAILED", "KILLED")

    @property
    def fingerprint(self) -> str:
        return self.tags.get(Tag.FINGERPRINT, "")


@dataclass
class FakeTracker:
    runs: dict[str, FakeRun] = field(default_factory=dict)
    searches: dict[str, str] = field(default_factory=dict)
    generations: list[tuple[str, int, dict[str, float]]] = field(default_factory=list)
    texts: dict[tuple[str, str], str] = field(default_factory=dict)
    creates: int = 0
    polls: list[dict[str, str | None]] = field(default_factory=list)
    points: list[tuple[str, int, dict[str, float]]] = field(default_factory=list)
    tags: dict[str, dict[str, str]] = field(default_factory=dict)
    vouched: list[tuple[str, str, str, float | None, str | None]] = field(default_factory=list)
    lookups: list[set[str]] = field(default_factory=list)  # cached_results calls
    point_batches: int = 0  # log_points calls

    def start_search(self, search: str, spec: dict[str, Any]) -> str:
        return self.searches.setdefault(search, f"parent-{search}")

    def create_trial_run(self, search: str, parent_run_id: str, trial_id: str,
                         tags: dict[str, str], new: bool = False) -> str:
        """As the MLflow tracker's: found by trial id unless ``new``; a ``new`` trial that has
        a run already is the controller's bug, so it fails here (MLflow would duplicate it)."""
        for r in self.runs.values():
            if r.trial_id == trial_id and r.tags[Tag.SEARCH] == search:
                assert not new, f"trial {trial_id} created as new, but its run {r.run_id} exists"
                return r.run_id
        self.creates += 1
        run_id = f"run-{len(self.runs)}"
        self.runs[run_id] = FakeRun(run_id, trial_id, {**tags, Tag.SEARCH: search,
                                                       Tag.PARENT_RUN: parent_run_id})
        return run_id

    def create_trial_runs(self, search: str, parent_run_id: str,
                          trials: Sequence[tuple[str, dict[str, str], bool]]) -> list[str]:
        return [self.create_trial_run(search, parent_run_id, *t) for t in trials]

    def create_settled_runs(self, search: str, parent_run_id: str,
                            settled: Sequence[tuple[str, dict[str, str], bool, float | None,
                                                    str | None]]) -> list[str]:
        ids = [self.create_trial_run(search, parent_run_id, t, tags, new)
               for t, tags, new, _, _ in settled]
        for run_id, (_, _, _, reward, failure) in zip(ids, settled, strict=True):
            self.record_outcome(run_id, reward, failure)
        return ids

    def trial_runs(self, search: str) -> dict[str, FakeRun]:
        return {r.trial_id: r for r in self.runs.values() if r.tags[Tag.SEARCH] == search}

    def ended_runs(self, search: str, runs: Mapping[str, str | None]) -> dict[str, FakeRun]:
        """As the MLflow tracker's: the ended ones of the runs named (by run id, or by trial id
        where the run id is unknown), by trial id. Each poll's question is kept in ``polls``."""
        self.polls.append(dict(runs))
        found: dict[str, FakeRun] = {}
        for trial_id, run_id in runs.items():
            run = self.runs.get(run_id) if run_id is not None else next(
                (r for r in self.runs.values()
                 if r.trial_id == trial_id and r.tags[Tag.SEARCH] == search), None)
            if run is not None and run.done:
                found[trial_id] = run
        return found

    def mark_failed(self, run_id: str, reason: str) -> None:
        run = self.runs[run_id]
        run.status, run.failure = "FAILED", reason

    def record_outcome(self, run_id: str, reward: float | None, failure: str | None) -> None:
        if failure is not None:
            self.mark_failed(run_id, failure)
        else:
            run = self.runs[run_id]
            run.status, run.reward = "FINISHED", reward

    def cached_results(self, fingerprints: Collection[str], config_hash: str, search: str
                       ) -> dict[str, FakeRun]:
        """Reusable runs of other searches, by fingerprint; each call is kept in ``lookups``."""
        self.lookups.append(set(fingerprints))
        return {r.fingerprint: r for r in self.runs.values()
                if r.fingerprint in fingerprints and r.tags.get(Tag.CONFIG_HASH) == config_hash
                and r.tags[Tag.SEARCH] != search and reusable_result(r.status, r.reward, r.failure)}

    def vouch(self, run_id: str, fingerprint: str, config_hash: str, reward: float | None,
              failure: str | None) -> None:
        """Records the seal's inputs (this fake's cache trusts every run: the real tracker's
        seals are tested against the real MLflow server)."""
        self.vouched.append((run_id, fingerprint, config_hash, reward, failure))

    def metric_history(self, run_id: str, key: str) -> dict[int, float]:
        """``key``'s values logged on ``run_id`` (``log_metrics``, ``log_points``), by step; the
        fake children log none but their outcome."""
        return {step: m[key] for r, step, m in self.points if r == run_id and key in m}

    def log_generation(self, parent_run_id: str, step: int, metrics: dict[str, float]) -> None:
        self.generations.append((parent_run_id, step, metrics))

    def log_metrics(self, run_id: str, step: int, metrics: dict[str, float]) -> None:
        self.points.append((run_id, step, metrics))

    def log_points(self, run_id: str, points: Sequence[tuple[int, Mapping[str, float]]]) -> None:
        self.point_batches += 1
        self.points += [(run_id, step, dict(metrics)) for step, metrics in points]

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        self.tags.setdefault(run_id, {}).update(tags)

    def log_image(self, run_id: str, local_path: str, key: str, step: int = 0) -> None:
        self.texts[(run_id, f"image:{key}")] = "<image>"

    def log_text(self, run_id: str, text: str, path: str) -> None:
        self.texts[(run_id, path)] = text

    def log_file(self, run_id: str, local_path: str, artifact_dir: str | None = None) -> None:
        self.texts[(run_id, local_path)] = "<file>"

    def finish_search(self, parent_run_id: str, status: str = "FINISHED") -> None:
        self.texts[(parent_run_id, "status")] = status


def hashed_reward(expression: str) -> float:
    """A deterministic pseudo-accuracy in [0.1, 0.99] per expression."""
    return 0.1 + 0.89 * (zlib.crc32(expression.encode()) % 1000) / 999


OOM_KILLED = ChildState("failed", reason="OOMKilled", exit_code=137)


@dataclass
class FakeBackend:
    """Children finish ``ticks`` state queries after launch, logging ``reward(expression)``
    (None: the loss diverged). ``crash``/``vanish`` act on the whole process: a pack crashes or
    vanishes when any of its members' expressions says so."""

    tracker: FakeTracker
    ticks: int = 2
    reward: Callable[[str], float | None] = hashed_reward
    crash: Callable[[str], bool] = lambda expr: False
    vanish: Callable[[str], bool] = lambda expr: False
    crashed: ChildState = OOM_KILLED  # what a crashed child's state says
    gpus_per_child: int = 1
    launched: list[str] = field(default_factory=list)
    launches: list[Launch] = field(default_factory=list)
    running: dict[str, int] = field(default_factory=dict)
    max_running: int = 0
    _launch: dict[str, Launch] = field(default_factory=dict)
    closed: bool = False

    def launch(self, launch: Launch) -> None:
        if launch.trial_id in self.running:
            return
        self.launched.append(launch.trial_id)
        self.launches.append(launch)
        self._launch[launch.trial_id] = launch
        self.running[launch.trial_id] = self.ticks
        self.max_running = max(self.max_running, len(self.running))

    def state(self, trial_id: str) -> ChildState:
        if trial_id not in self.running:
            return ChildState("missing")
        left = self.running[trial_id] - 1
        launch = self._launch[trial_id]
        if left > 0:
            self.running[trial_id] = left
            return ChildState("running")
        del self.running[trial_id]
        members = launch.trial_spec[PACK_KEY] if PACK_KEY in launch.trial_spec else [
            {**launch.trial_spec, "run_id": launch.env["MLFLOW_RUN_ID"]}]
        exprs = [m["expression"] for m in members]
        if any(map(self.vanish, exprs)):
            return ChildState("missing")
        if any(map(self.crash, exprs)):
            return self.crashed
        diverged = 0
        for m in members:
            run = self.tracker.runs[m["run_id"]]  # the child's own tags, as trainer.run writes them
            run.tags[Tag.FINGERPRINT] = TrialSpec.model_validate(m).function_fingerprint()
            reward = self.reward(m["expression"])
            if reward is None:
                self.tracker.mark_failed(m["run_id"], "nan")
                diverged += 1
            else:
                self.tracker.record_outcome(m["run_id"], reward, None)
        if diverged == len(members):
            return ChildState("failed", exit_code=3)
        return ChildState("succeeded", exit_code=0)

    def cancel(self, trial_id: str) -> None:
        self.running.pop(trial_id, None)

    def close(self) -> None:
        self.closed = True
