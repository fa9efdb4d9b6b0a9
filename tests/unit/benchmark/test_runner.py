"""The benchmark loop against in-memory fakes of its tracker, store and backend: every cell runs
once under the parent run, parallelism holds, failures are recorded, top-k rows are resolved once,
and a resumed benchmark never trains a finished cell again."""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from orchestrator.adapters.storage import LocalStore
from orchestrator.backends.base import ChildState, Launch
from orchestrator.benchmark.runner import BenchmarkRunner
from orchestrator.benchmark.spec import parse_benchmark


@dataclass
class Run:
    run_id: str
    trial_id: str
    tags: dict[str, str]
    status: str = "RUNNING"
    failure: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.status in ("FINISHED", "FAILED", "KILLED")


@dataclass
class Tracker:
    runs: dict[str, Run] = field(default_factory=dict)
    parents: dict[str, str] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)

    def start_search(self, search: str, spec: dict[str, Any]) -> str:
        return self.parents.setdefault(search, f"parent-{search}")

    def create_trial_run(self, search: str, parent_run_id: str, trial_id: str,
                         tags: dict[str, str]) -> str:
        for r in self.runs.values():
            if r.trial_id == trial_id:
                return r.run_id
        run_id = f"run-{len(self.runs)}"
        self.runs[run_id] = Run(run_id, trial_id, {**tags, "parent": parent_run_id})
        return run_id

    def trial_runs(self, search: str) -> dict[str, Run]:
        return {r.trial_id: r for r in self.runs.values()}

    def ended_runs(self, search: str, runs: Mapping[str, str | None]) -> dict[str, Run]:
        by_run = {r.run_id: r for r in self.runs.values()}
        return {cell: by_run[run_id] for cell, run_id in runs.items()
                if run_id in by_run and by_run[run_id].done}

    def mark_failed(self, run_id: str, reason: str) -> None:
        self.runs[run_id].status, self.runs[run_id].failure = "FAILED", reason

    def log_text(self, run_id: str, text: str, path: str) -> None:
        self.texts[path] = text

    def log_file(self, run_id: str, local_path: str, artifact_dir: str | None = None) -> None:
        self.texts[local_path] = "<file>"

    def finish_search(self, parent_run_id: str, status: str = "FINISHED") -> None:
        self.texts["status"] = status


def accuracy(expression: str, seed: int) -> float:
    return 0.8 + (zlib.crc32(f"{expression}{seed}".encode()) % 100) / 1000


@dataclass
class Backend:
    """A child finishes on its second state query, logging ``accuracy`` into its run; a pack
    (``{"pack": [...]}``) ends each member's run on its own, the ``nan`` one FAILED. Launch ids in
    ``lose`` vanish at their first look (once); cells in ``abandon`` are left RUNNING when their
    process exits."""

    tracker: Tracker
    nan: str = "builtin:selu"
    gpus_per_child: int = 0
    launched: list[str] = field(default_factory=list)
    polls: dict[str, int] = field(default_factory=dict)
    specs: dict[str, Launch] = field(default_factory=dict)
    max_running: int = 0
    lose: set[str] = field(default_factory=set)
    abandon: set[str] = field(default_factory=set)
    history: list[Launch] = field(default_factory=list)

    def launch(self, launch: Launch) -> None:
        self.launched.append(launch.trial_id)
        self.history.append(launch)
        self.specs[launch.trial_id] = launch
        self.polls[launch.trial_id] = 0
        self.max_running = max(self.max_running, len(self.polls))

    def state(self, trial_id: str) -> ChildState:
        if trial_id not in self.polls:
            return ChildState("missing")
        if trial_id in self.lose:
            self.lose.discard(trial_id)
            del self.polls[trial_id]
            return ChildState("missing")
        self.polls[trial_id] += 1
        if self.polls[trial_id] < 2:
            return ChildState("running")
        del self.polls[trial_id]
        launch = self.specs[trial_id]
        if launch.is_pack:
            members = [(m, self.tracker.runs[m["run_id"]]) for m in launch.trial_spec["pack"]]
        else:
            members = [(launch.trial_spec, self.tracker.runs[launch.run_id])]
        diverged = 0
        for spec, run in members:
            if spec["trial"] in self.abandon:
                continue
            if spec["expression"] == self.nan:
                run.status, run.failure = "FAILED", "nan"
                diverged += 1
                continue
            run.metrics = {"test_accuracy": accuracy(spec["expression"], spec["child"]["seed"]),
                           "val_accuracy": 0.5}
            run.status = "FINISHED"
        if diverged == len(members):
            return ChildState("failed", exit_code=3)
        return ChildState("succeeded", exit_code=0)

    def cancel(self, trial_id: str) -> None:
        self.polls.pop(trial_id, None)

    def close(self) -> None:
        pass


SPEC = {"name": "fake", "activations": ["ReLU", "Swish", "SELU"], "models": ["mlp", "tiny_cnn"],
        "datasets": ["digits"], "seeds": 3, "parallelism": 2}


def runner(tracker: Tracker, backend: Backend, store: LocalStore, **spec: Any) -> BenchmarkRunner:
    return BenchmarkRunner(parse_benchmark({**SPEC, **spec}), tracker, store, backend,
                           "http://mlflow", poll_interval=0, sleep=lambda s: None,
                           lookup_top=lambda top: ["max(id(x), sin(x))", "sigmul(mul_beta(x), id(x))"])


def test_every_cell_runs_once_under_the_parent_run_and_failures_are_recorded(tmp_path) -> None:  # type: ignore[no-untyped-def]
    tracker = Tracker()
    backend = Backend(tracker)
    r = runner(tracker, backend, LocalStore(tmp_path))
    final = r.run()
    assert final.finished and final.total == 3 * 2 * 3 and final.done == 18 and final.failed == 6
    assert sorted(backend.launched) == sorted(c.cell_id for c in r.cells)  # each once
    assert backend.max_running == 2
    assert all(run.tags["parent"] == "parent-fake" for run in tracker.runs.values())
    first = r.cells[0]
    assert first.cell_id.startswith("fake-") and len(first.cell_id) == len("fake-") + 10
    assert tracker.runs["run-0"].tags["actsearch.activation"] == "ReLU"
    assert {c.seed for c in r.cells[:6]} == {0}  # seed by seed
    spec = backend.specs[first.cell_id].trial_spec
    assert spec["expression"] == "max(relu(x), relu(x))" and spec["child"]["model"] == "mlp"
    res = r.results()
    assert res.failures[("SELU", "mlp", "digits")] == 3
    relu = sorted(accuracy("max(relu(x), relu(x))", s) for s in range(3))
    assert res.summary("ReLU", ("mlp", "digits")).median == relu[1]


def test_a_resumed_benchmark_never_trains_a_finished_cell_again(tmp_path) -> None:  # type: ignore[no-untyped-def]
    tracker, store = Tracker(), LocalStore(tmp_path)
    first_backend = Backend(tracker)
    first = runner(tracker, first_backend, store)
    first.start(resume=False)
    for _ in range(7):  # some cells done, two in flight: then the controller dies
        first.tick()
    done_before = {k for k, v in first.ledger.items() if v.state == "done"}
    in_flight = {k for k, v in first.ledger.items() if v.state == "launched"}
    assert done_before and len(in_flight) == 2
    # one in-flight child finishes while nobody watches: its run is FINISHED, the ledger stale
    finished_unseen = sorted(in_flight)[0]
    run = next(r for r in tracker.runs.values() if r.trial_id == finished_unseen)
    run.status, run.metrics = "FINISHED", {"test_accuracy": 0.9}

    second_backend = Backend(tracker)  # a fresh backend: the other in-flight child is gone
    second = runner(tracker, second_backend, store)
    final = second.run(resume=True)
    assert final.finished and final.done == 18
    relaunched = set(second_backend.launched)
    assert not relaunched & done_before
    assert finished_unseen not in relaunched
    assert relaunched == {c.cell_id for c in second.cells} - done_before - {finished_unseen}
    assert len(tracker.runs) == 18  # one run per cell, none duplicated
    assert second.ledger[finished_unseen].value == 0.9


def test_a_benchmark_with_a_checkpoint_is_not_restarted_by_accident(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from orchestrator.benchmark.assemble import build_runner
    from orchestrator.errors import ConfigError

    spec = parse_benchmark({**SPEC, "tracking": {"uri": f"sqlite:///{tmp_path}/m.db"}})
    (tmp_path / "fake" / "checkpoints").mkdir(parents=True)
    (tmp_path / "fake" / "checkpoints" / "benchmark.json").write_text("{}")
    with pytest.raises(ConfigError, match="pass --resume"):
        build_runner(spec, tmp_path)


def test_top_rows_are_resolved_once_and_kept_across_a_resume(tmp_path) -> None:  # type: ignore[no-untyped-def]
    tracker, store = Tracker(), LocalStore(tmp_path)
    spec = {"activations": ["ReLU", "Swish", {"top": {"search": "s", "k": 2}}], "seeds": 1}
    r = runner(tracker, Backend(tracker), store, **spec)
    r.start(resume=False)
    # Swish is already a row: the top-2 adds only max(x, sin(x))
    assert [row.label for row in r.rows] == ["ReLU", "Swish", "max(x, sin(x))"]
    assert r.rows[2].origin == "top of s"
    again = runner(tracker, Backend(tracker), store, **spec)
    again.lookup_top = lambda top: ["min(id(x), cos(x))"]  # the search went on meanwhile
    again.start(resume=True)
    assert [row.label for row in again.rows] == ["ReLU", "Swish", "max(x, sin(x))"]


def test_the_progress_kept_as_cells_settle_equals_a_count_over_every_cell(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A tick reads the cells not done (``BenchmarkRunner._live``, derived, never stored): its
    progress equals the count over every cell's state, before and after a resume."""
    from orchestrator.benchmark.runner import BenchmarkProgress
    from orchestrator.loop.ledger import running_launches

    def counted(r: BenchmarkRunner, finished: bool) -> BenchmarkProgress:
        states = {c.cell_id: r.ledger[c.cell_id] for c in r.cells}
        launched = [(k, s) for k, s in states.items() if s.state == "launched"]
        return BenchmarkProgress(
            total=len(states), done=sum(s.state == "done" for s in states.values()),
            running=len(launched), packs=running_launches(s.launch_id or k for k, s in launched),
            failed=sum(s.state == "done" and s.failure is not None for s in states.values()),
            finished=finished)

    tracker, store = Tracker(), LocalStore(tmp_path)
    first = runner(tracker, Backend(tracker), store, packing=2)
    first.start(resume=False)
    for _ in range(4):
        over = first.tick()
        assert first.progress() == counted(first, False) and not over
    saved = store.get("benchmark.json")
    second = runner(tracker, Backend(tracker), store, packing=2)
    checks: list[bool] = []  # after each tick
    final = second.run(resume=True, on_progress=lambda p: checks.append(
        p == counted(second, p.finished)))
    assert store.get("benchmark.json") != saved and final.done == 18 and final.failed == 6
    assert len(checks) > 3 and all(checks)
