"""The benchmark loop: a fixed list of cells over the search loop's interfaces (backend, tracker,
store), so cells run as local processes or Kubernetes Jobs exactly as trials do.

One ``tick``: settle launched cells (their MLflow run ended, or their child died), launch queued
cells while fewer than ``parallelism`` processes (Jobs) run, checkpoint the ledger when anything
changed. The settle rules are the search loop's: MLflow first; a child that vanished is launched
again under the same run (up to ``max_launches``); one that ended without a finished run is
marked FAILED with the reason.

Packing (``packing`` > 1): a launch is a pack of up to ``packing`` queued cells whose child
configs are equal but for the seed (same model and data set), trained side by side by one
process, each into its own pre-created MLflow run. Queued cells are grouped by that key in cell
order (seed by seed), so packs are the same whenever the same cells are queued; a key's last pack
may be partial. Each cell's launch id (its pack's id) is checkpointed before the pack starts, so
a pack id always names the same cells: a lost pack is launched again, under its id, with its
members whose runs have not ended.

Resume: the ledger (cell states, launch counts and the top-k lists the rows were built from)
is reloaded from the store, and every cell whose MLflow run already ended takes that result:
a finished cell is never trained again, even one that finished after the last checkpoint.
Children still running are re-attached by the backend (pid file or Job name), by launch id.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from orchestrator.backends.base import Backend, ChildState, Launch
from orchestrator.benchmark.cells import (
    Cell,
    Row,
    TopLookup,
    expand,
    pack_id,
    pack_key,
    resolve_rows,
)
from orchestrator.benchmark.results import Results, build, records_from_runs
from orchestrator.benchmark.spec import BenchmarkSpec
from orchestrator.contract import PACK_KEY
from orchestrator.controller import Tracker
from orchestrator.packs import plan_packs
from orchestrator.polling import drive
from orchestrator.storage import Store

log = logging.getLogger(__name__)

CHECKPOINT_KEY = "benchmark.json"
QUEUED, LAUNCHED, DONE = "queued", "launched", "done"


@dataclass
class CellState:
    state: str = QUEUED
    run_id: str | None = None
    launches: int = 0
    value: float | None = None
    failure: str | None = None
    started: float | None = None
    finished: float | None = None
    launch_id: str | None = None  # the cell id, or its pack's id; None until first launched


@dataclass
class BenchmarkProgress:
    total: int = 0
    done: int = 0
    running: int = 0  # cells
    packs: int = 0  # processes/Jobs running them (equal to running without packing)
    failed: int = 0
    finished: bool = False


def _no_top(top: Any) -> list[str]:
    raise RuntimeError("this benchmark has top-k rows but no way to read searches was given")


@dataclass
class BenchmarkRunner:
    spec: BenchmarkSpec
    tracker: Tracker
    store: Store
    backend: Backend
    tracking_uri: str
    lookup_top: TopLookup = _no_top
    poll_interval: float = 2.0
    max_launches: int = 3
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    rows: list[Row] = field(default_factory=list)
    cells: list[Cell] = field(default_factory=list)
    ledger: dict[str, CellState] = field(default_factory=dict)
    top_lists: dict[str, list[str]] = field(default_factory=dict)
    parent_run_id: str | None = None
    _dirty: bool = False

    @property
    def name(self) -> str:
        return self.spec.name

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self, resume: bool) -> None:
        """Open the parent run, reload the ledger when resuming, and take every result MLflow
        already holds."""
        data = self.store.get(CHECKPOINT_KEY) if resume else None
        if data is not None:
            state = json.loads(data)
            self.top_lists = state.get("top", {})
            self.ledger = {k: CellState(**v) for k, v in state["cells"].items()}
        self.rows = resolve_rows(self.spec, self.lookup_top, self.top_lists)
        self.cells = expand(self.spec, self.rows)
        self.parent_run_id = self.tracker.start_search(self.name, self._logged_spec())
        for c in self.cells:
            self.ledger.setdefault(c.cell_id, CellState())
        runs = self.tracker.trial_runs(self.name)
        for c in self.cells:
            st, run = self.ledger[c.cell_id], runs.get(c.cell_id)
            if st.state != DONE and run is not None and run.done:
                self._from_run(c, st, run)
        done = sum(self.ledger[c.cell_id].state == DONE for c in self.cells)
        log.info("benchmark %s: %d cells, %d done%s", self.name, len(self.cells), done,
                 " (resumed)" if data is not None else "")
        self.checkpoint()

    def _logged_spec(self) -> dict[str, Any]:
        spec = self.spec.model_dump(mode="json")
        spec["rows"] = [asdict(r) for r in self.rows]
        return spec

    def checkpoint(self) -> None:
        state = {
            "version": 1,
            "benchmark": self.name,
            "top": self.top_lists,
            "cells": {k: asdict(v) for k, v in self.ledger.items()},
        }
        self.store.put(CHECKPOINT_KEY, json.dumps(state, indent=1, sort_keys=True).encode())
        self._dirty = False

    def run(self, resume: bool = False,
            on_progress: Callable[[BenchmarkProgress], None] | None = None) -> BenchmarkProgress:
        """Train every cell not yet done; returns the final progress."""
        self.start(resume)
        return drive(self.tick, self.progress, self.backend.close, self.sleep, self.poll_interval,
                     on_progress)

    def tick(self) -> bool:
        self._settle()
        self._launch()
        if self._dirty:
            self.checkpoint()
        return all(self.ledger[c.cell_id].state == DONE for c in self.cells)

    # -- launch and settle --------------------------------------------------------------------

    def _in(self, state: str) -> list[Cell]:
        return [c for c in self.cells if self.ledger[c.cell_id].state == state]

    def _launch_of(self, c: Cell) -> str:
        """What the backend knows this cell's process by: its own id, or its pack's."""
        return self.ledger[c.cell_id].launch_id or c.cell_id

    def _pack_of(self, c: Cell) -> str | None:
        """The pack a cell was launched in; None if never launched or launched alone (also by
        an earlier run of the benchmark with ``packing`` 1)."""
        launch_id = self.ledger[c.cell_id].launch_id
        return None if launch_id in (None, c.cell_id) else launch_id

    def _running_launches(self) -> int:
        """Processes/Jobs in flight: what ``parallelism`` bounds (members of a pack share one)."""
        return len({self._launch_of(c) for c in self._in(LAUNCHED)})

    def _launch(self) -> None:
        if self.spec.packing == 1:
            running = self._running_launches()
            for c in self._in(QUEUED):
                if running >= self.spec.parallelism:
                    return
                self._start_child(c)
                running += 1
            return
        packs = self._groups()[:max(self.spec.parallelism - self._running_launches(), 0)]
        fresh = [g for g in packs if self._pack_of(g[0]) is None]
        for group in fresh:  # a pack's members are durable before its process starts, so a
            pid = pack_id(self.name, group[0])  # runner killed in between starts the same pack
            for c in group:
                self.ledger[c.cell_id].launch_id = pid
        if fresh:
            self.checkpoint()
        for group in packs:
            self._start_pack(group)

    def _groups(self) -> list[list[Cell]]:
        """Queued cells as packs, in cell order of their first member (``packs.plan_packs``):
        the undone members of a lost pack go again together under its id; the others, grouped
        by ``pack_key`` in cell order, fill packs of up to ``packing``."""
        return plan_packs(self._in(QUEUED), self.spec.packing, pack_of=self._pack_of,
                          key=lambda c: pack_key(c.config))

    def _trial_spec(self, c: Cell) -> dict[str, Any]:
        """The cell's trial spec, its run pre-created (find-or-create by cell id)."""
        st = self.ledger[c.cell_id]
        assert self.parent_run_id is not None
        st.run_id = self.tracker.create_trial_run(self.name, self.parent_run_id, c.cell_id, c.tags())
        return {
            "expression": c.expression,
            "trial": c.cell_id,
            "experiment": self.spec.tracking.experiment,
            "child": c.config.model_dump(mode="json"),
        }

    def _launched_now(self, c: Cell, launch_id: str) -> None:
        st = self.ledger[c.cell_id]
        st.state, st.launches, st.launch_id = LAUNCHED, st.launches + 1, launch_id
        st.started = st.started or self.clock()
        self._dirty = True

    def _start_child(self, c: Cell) -> None:
        trial_spec = self._trial_spec(c)
        run_id = self.ledger[c.cell_id].run_id
        assert run_id is not None
        env = {"MLFLOW_RUN_ID": run_id, "MLFLOW_TRACKING_URI": self.tracking_uri}
        self.backend.launch(Launch(c.cell_id, run_id, trial_spec, env))
        self._launched_now(c, c.cell_id)
        log.info("cell %s launched: %s on %s/%s seed %d", c.cell_id, c.label, c.model, c.dataset,
                 c.seed)

    def _start_pack(self, members: list[Cell]) -> None:
        """One process for several cells; each member names its own pre-created run."""
        launch_id = self._launch_of(members[0])
        specs = [{**self._trial_spec(c), "run_id": self.ledger[c.cell_id].run_id}
                 for c in members]
        env = {"MLFLOW_TRACKING_URI": self.tracking_uri}
        self.backend.launch(Launch(launch_id, None, {PACK_KEY: specs}, env,
                                   tuple(c.cell_id for c in members)))
        for c in members:
            self._launched_now(c, launch_id)
        log.info("pack %s launched: %d cells of %s/%s (%s)", launch_id, len(members),
                 members[0].model, members[0].dataset,
                 ", ".join(f"{c.label} seed {c.seed}" for c in members))

    def _settle(self) -> None:
        launched = self._in(LAUNCHED)
        if not launched:
            return
        runs = self.tracker.trial_runs(self.name)
        ended = []
        states: dict[str, ChildState] = {}  # one look per launch: members of a pack share it
        for c in launched:
            st, run = self.ledger[c.cell_id], runs.get(c.cell_id)
            if run is not None and run.done:  # results are per cell, a pack's members included
                self._from_run(c, st, run)
                continue
            launch_id = self._launch_of(c)
            if launch_id not in states:
                states[launch_id] = self.backend.state(launch_id)
            child = states[launch_id]
            if child.phase in ("queued", "running"):
                continue
            if child.phase == "missing" and st.launches < self.max_launches:
                # the undone members of a lost pack go again together, under the same pack id
                log.warning("cell %s: child not found; launching it again%s (same run)",
                            c.cell_id, f" in pack {launch_id}" if launch_id != c.cell_id else "")
                st.state, self._dirty = QUEUED, True
                continue
            ended.append((c, st, child))
        if ended:  # a child may end between the two reads: look at MLflow once more
            runs = self.tracker.trial_runs(self.name)
        for c, st, child in ended:
            run = runs.get(c.cell_id)
            if run is not None and run.done:
                self._from_run(c, st, run)
                continue
            reason = child.reason or f"child {child.phase} without logging a result"
            if child.exit_code is not None:
                reason += f" (exit code {child.exit_code})"
            assert st.run_id is not None
            self.tracker.mark_failed(st.run_id, f"crashed: {reason}")
            self._complete(c, st, None, f"crashed: {reason}")

    def _from_run(self, c: Cell, st: CellState, run: Any) -> None:
        st.run_id = run.run_id
        value = run.metrics.get(self.spec.metric) if run.status == "FINISHED" else None
        failure = None if value is not None else (run.failure or f"run ended {run.status}")
        self._complete(c, st, value, failure)

    def _complete(self, c: Cell, st: CellState, value: float | None, failure: str | None) -> None:
        st.state, st.value, st.failure, st.finished = DONE, value, failure, self.clock()
        self._dirty = True
        if failure is None:
            log.info("cell %s finished: %s %.4f", c.cell_id, self.spec.metric, value)
        else:
            log.warning("cell %s (%s on %s/%s seed %d) failed: %s", c.cell_id, c.label, c.model,
                        c.dataset, c.seed, failure)

    # -- reporting ----------------------------------------------------------------------------

    def progress(self) -> BenchmarkProgress:
        states = [self.ledger[c.cell_id] for c in self.cells]
        return BenchmarkProgress(
            total=len(states),
            done=sum(s.state == DONE for s in states),
            running=sum(s.state == LAUNCHED for s in states),
            packs=self._running_launches(),
            failed=sum(s.state == DONE and s.failure is not None for s in states),
        )

    def results(self) -> Results:
        """The table, from the cells' runs as MLflow holds them (this benchmark's cells only)."""
        runs = self.tracker.trial_runs(self.name)
        mine = [runs[c.cell_id] for c in self.cells if c.cell_id in runs]
        columns = self.spec.columns
        st = self.spec.sign_test
        return build(records_from_runs(mine, self.spec.metric), self.spec.metric,
                     self.spec.baseline, st.tie_tolerance, st.pairs, columns)
