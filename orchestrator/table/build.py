"""Building a table: plan the functions, train them as a benchmark, export the file.

Training goes through the project's own machinery: the table spec becomes a ``BenchmarkSpec``
(one row per function, one cell per function × seed) run by ``BenchmarkRunner``, i.e. the launch
ledger the controller uses, the local backend (one process per pack of ``packing`` children)
or Jobs, and the trainer, every cell an MLflow run. So a build is resumable as a benchmark is
(``--resume``: finished cells are kept, running packs re-attached, the rest trained), and the
export reads everything back from MLflow, never from logs.

The time a build took is kept beside its checkpoint (``table-build.json``): one record per
session (start, end, CPU seconds of the build process and the children it reaped), updated
every ``TIMER_EVERY`` seconds, so a killed session still counts up to its last record. A pack's
CPU time counts once its process has exited and been reaped; packs that outlived a killed
session and finished after it are not the next session's children: their CPU time is not
counted.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from orchestrator.adapters.storage import Store, open_store
from orchestrator.adapters.tracking import BENCHMARK, MlflowTracker, TrialRun
from orchestrator.benchmark.cells import cell_id
from orchestrator.contract import FailureKind, failure_kind
from orchestrator.errors import ConfigError
from orchestrator.table.format import Curve, Entry, Table
from orchestrator.table.functions import Census, Function, census, select
from orchestrator.table.spec import TableSpec

log = logging.getLogger(__name__)

TIMER_KEY = "table-build.json"
TIMER_EVERY = 30.0
"""Seconds between updates of the session record."""


def plan(spec: TableSpec) -> tuple[Census, list[Function]]:
    """The space's distinct functions and the ones this table trains, in table order."""
    space = spec.space.build()
    found = census(space, spec.child.numerics)
    f = spec.functions
    try:
        chosen = select(found, f.sample, f.sample_seed, f.include, space, spec.child.numerics)
    except ValueError as e:
        raise ConfigError(f"functions: {e}") from e
    return found, chosen


# -- where and on what it ran ------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """The CPU model, core count and software of this machine (GPU builds add the device)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        torch_version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        torch_version = None
    return {"cpu": cpu, "cores": os.cpu_count(), "os": f"{platform.system()} {platform.machine()}",
            "python": platform.python_version(), "torch": torch_version}


def code() -> dict[str, Any]:
    """The package version and, in a git checkout, the commit (with a flag for local edits)."""
    try:
        version = metadata.version("actsearch")
    except metadata.PackageNotFoundError:
        version = "unknown"
    out: dict[str, Any] = {"version": version, "git": None, "dirty": None}
    root = Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "orchestrator"], cwd=root,
                               capture_output=True, text=True, timeout=10, check=True).stdout
        out.update(git=sha, dirty=bool(dirty.strip()))
    except (OSError, subprocess.SubprocessError):
        pass
    return out


@dataclass
class Session:
    started: float
    ended: float
    cpu_s: float
    git: str | None = None  # the commit the session ran (its children import the same code)
    dirty: bool | None = None


def _cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class BuildTimer:
    """The sessions of a build, kept in its checkpoint store."""

    def __init__(self, store: Store, resume: bool, clock: Callable[[], float] = time.time) -> None:
        self.store, self.clock = store, clock
        self.sessions = load_sessions(store) if resume else []
        now = clock()
        here = code()
        self.current = Session(now, now, 0.0, here["git"], here["dirty"])
        self.sessions.append(self.current)
        self.cpu0 = _cpu_seconds()
        self._saved = -TIMER_EVERY

    def due(self) -> bool:
        return time.monotonic() - self._saved >= TIMER_EVERY

    def tick(self, force: bool = False) -> None:
        if not force and not self.due():
            return
        self.current.ended = self.clock()
        self.current.cpu_s = _cpu_seconds() - self.cpu0
        self.store.put(TIMER_KEY, json.dumps([asdict(s) for s in self.sessions], indent=1).encode())
        self._saved = time.monotonic()


def load_sessions(store: Store) -> list[Session]:
    data = store.get(TIMER_KEY)
    return [Session(**s) for s in json.loads(data)] if data else []


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")


def timing(sessions: list[Session]) -> dict[str, Any]:
    if not sessions:
        return {"sessions": 0}
    return {
        "started": _iso(min(s.started for s in sessions)),
        "ended": _iso(max(s.ended for s in sessions)),
        "sessions": len(sessions),
        "wall_s": round(sum(s.ended - s.started for s in sessions), 1),
        "cpu_s": round(sum(s.cpu_s for s in sessions), 1),
        "commits": sorted({s.git for s in sessions if s.git}),
        "local_edits": any(s.dirty for s in sessions),
    }


# -- the export ---------------------------------------------------------------------------------


def _curve(run: TrialRun, history: Mapping[int, float], steps: list[int]) -> Curve:
    val = [history.get(s) for s in steps]
    test = run.metrics.get("test_accuracy")
    if run.status == "FINISHED" and run.failure is None and test is not None and val[-1] is not None:
        return Curve(tuple(val), test)
    if run.failure is None:
        reason = "no result"
    else:
        kind = failure_kind(run.failure)
        reason = run.failure if kind is FailureKind.OTHER else kind.value
    return Curve(tuple(val), None, reason)


def assemble(spec: TableSpec, found: Census, functions: list[Function],
             runs: Mapping[str, TrialRun], history: Callable[[str], Mapping[int, float]],
             sessions: list[Session], known: Table | None = None) -> Table:
    """The table of every function whose seeds have all ended (the others wait for a resumed
    build), with its metadata; ``partial`` says whether functions are missing. Entries of
    ``known`` (an earlier export of the same build) are taken as they are: an ended run never
    changes, and reading a run's history is the slow part of an export."""
    bench = spec.benchmark(functions)
    reusable = known is not None and known.meta.get("name") == spec.name \
        and list(known.steps) == spec.steps and list(known.seeds) == list(bench.seeds)
    model, dataset = bench.models[0], bench.datasets[0]
    configs = {seed: bench.cell_config(model, dataset, seed) for seed in bench.seeds}
    entries = []
    for f in functions:
        ids = {seed: cell_id(spec.name, f.expression, configs[seed]) for seed in bench.seeds}
        ended = {seed: runs.get(cid) for seed, cid in ids.items()}
        if not all(r is not None and r.done for r in ended.values()):
            continue
        before = known.get(f.fingerprint) if reusable and known is not None else None
        if before is not None and before.expression == f.expression \
                and set(before.curves) == set(ended):
            entries.append(before)
            continue
        curves = {seed: _curve(r, history(r.run_id), spec.steps)
                  for seed, r in ended.items() if r is not None}
        entries.append(Entry(f.expression, f.fingerprint, curves))
    failed = sum(any(c.failure for c in e.curves.values()) for e in entries)
    meta = {
        "name": spec.name,
        "steps": spec.steps,
        "partial": len(entries) < len(functions),
        "functions": {"planned": len(functions), "done": len(entries),
                      "with_a_failed_seed": failed, "included": spec.functions.include},
        "space": {"units": spec.space.units, "unary": spec.space.unary,
                  "binary": spec.space.binary, "sequences": found.sequences,
                  "distinct": found.distinct, "passing_screen": len(found.functions)},
        "seeds": list(bench.seeds),
        "model": spec.model,
        "dataset": spec.dataset,
        "reward": "val_accuracy at the last step",
        "spec": spec.model_dump(mode="json", exclude={"tracking", "storage", "backend"}),
        "code": code(),
        "machine": machine(),
        "build": timing(sessions),
        "exported": _iso(time.time()),
    }
    return Table(meta, tuple(entries))


def export(spec: TableSpec, workdir: str | Path | None = None,
           known: Table | None = None) -> Table:
    """The table as MLflow holds it now (a build finished, running or killed); entries of
    ``known``, an earlier export, are not read again."""
    from orchestrator.embedded import layout

    found, functions = plan(spec)
    bench = spec.benchmark(functions)
    lay = layout(bench, workdir)
    tracker = MlflowTracker(lay.tracking_uri, spec.tracking.experiment, scope=BENCHMARK)
    store = open_store(lay.storage_uri, spec.storage.endpoint_url)
    return assemble(spec, found, functions, tracker.trial_runs(spec.name),
                    lambda run_id: tracker.metric_history(run_id, "val_accuracy"),
                    load_sessions(store), known)


def build(spec: TableSpec, workdir: str | Path | None = None, resume: bool = False,
          on_progress: Callable[[Any], None] | None = None) -> Table:
    """Train every function × seed not yet done, then export the table."""
    from orchestrator.benchmark.assemble import build_runner

    found, functions = plan(spec)
    runner = build_runner(spec.benchmark(functions), workdir, resume=resume)
    timer = BuildTimer(runner.store, resume)

    reap = getattr(runner.backend, "reap", None)  # local processes; Jobs have no CPU here

    def progress(p: Any) -> None:
        if timer.due() and reap is not None:
            reap()
        if timer.due():
            log.info("table %s: %d/%d children done (%d failed), %d running; %.0f CPU-s so far "
                     "this session", spec.name, p.done, p.total, p.failed, p.running,
                     _cpu_seconds() - timer.cpu0)
        timer.tick()
        if on_progress is not None:
            on_progress(p)

    try:
        runner.run(resume=resume, on_progress=progress)
    finally:
        if reap is not None:
            reap()
        timer.tick(force=True)
    assert runner.parent_run_id is not None
    runner.tracker.finish_search(runner.parent_run_id)
    tracker = runner.tracker
    assert isinstance(tracker, MlflowTracker)
    return assemble(spec, found, functions, tracker.trial_runs(spec.name),
                    lambda run_id: tracker.metric_history(run_id, "val_accuracy"),
                    timer.sessions)
