"""The benchmark loop: a fixed list of cells over the search loop's interfaces (backend, tracker,
store), so cells run as local processes or Kubernetes Jobs exactly as trials do.

One ``tick``: settle launched cells (their MLflow run ended, or their child died), launch queued
cells while fewer than ``parallelism`` processes (Jobs) run, checkpoint the ledger when anything
changed. Launching and settling are the search loop's, through the same launch ledger
(``orchestrator.loop.ledger``): MLflow first; a child that vanished is launched again under the same
run (up to ``max_launches``); one that ended without a finished run is marked FAILED with the
reason.

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

A tick settles and launches the cells not done yet (``_live``, derived at start like the
failure count, never checkpointed): a done cell is never looked at again.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from orchestrator.adapters.storage import Store
from orchestrator.backends.base import Backend
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
from orchestrator.benchmark.spec import AXIS_FIELDS, BenchmarkSpec
from orchestrator.loop.ledger import DONE, LAUNCHED, QUEUED, Ledger, Outcome
from orchestrator.loop.polling import drive
from orchestrator.loop.tracker import Tracker

log = logging.getLogger(__name__)

CHECKPOINT_KEY = "benchmark.json"


@dataclass
class CellState:
    state: str = QUEUED
    run_id: str | None = None
    launches: int = 0
    value: float | None = None
    failure: str | None = None
    started: float | None = None
    finished: float | None = None
    began: float | None = None  # the child's start, as the backend reported it (the ledger's)
    launch_id: str | None = None  # the cell id, or its pack's id; None until first launched


@dataclass
class BenchmarkProgress:
    total: int = 0
    done: int = 0
    running: int = 0  # cells
    packs: int = 0  # processes/Jobs running them (equal to running without packing)
    failed: int = 0
    finished: bool = False


def _describe(c: Cell) -> str:
    return f"{c.label} on {c.model}/{c.dataset} seed {c.seed}"


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
    _live: dict[str, Cell] = field(default_factory=dict)  # cells not done, in cell order (derived)
    _failed: int = 0  # cells done with a failure (derived)

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
            run = runs.get(c.cell_id)
            if self.ledger[c.cell_id].state != DONE and run is not None and run.done:
                self._complete(self._ledger.outcome(c, run))
        self._live = {c.cell_id: c for c in self.cells if self.ledger[c.cell_id].state != DONE}
        self._failed = sum(self.ledger[c.cell_id].failure is not None for c in self.cells
                           if c.cell_id not in self._live)
        done = len(self.cells) - len(self._live)
        log.info("benchmark %s: %d cells, %d done%s", self.name, len(self.cells), done,
                 " (resumed)" if data is not None else "")
        self.checkpoint()

    def _logged_spec(self) -> dict[str, Any]:
        spec = self.spec.model_dump(mode="json")
        for axis in AXIS_FIELDS:  # each cell's own: the shared section's defaults were not used
            spec["child"].pop(axis, None)
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
        return not self._live

    # -- launch and settle: the launch ledger ----------------------------------------------

    @property
    def _ledger(self) -> Ledger[Cell]:
        return Ledger(
            name=self.name, noun="cell", id_of=lambda c: c.cell_id,
            record_of=lambda c: self.ledger[c.cell_id], trial_spec=self._trial_spec,
            pack_id=lambda c: pack_id(self.name, c), pack_key=lambda c: pack_key(c.config),
            describe=_describe, metric=self.spec.metric,
            value_of=lambda run: run.metrics.get(self.spec.metric),
            tracker=self.tracker, backend=self.backend, tracking_uri=self.tracking_uri,
            clock=self.clock, max_launches=self.max_launches)

    def _launch(self) -> None:
        """Queued cells in cell order; with packing, cells equal but for the seed share packs."""
        self._dirty |= self._ledger.launch(list(self._live.values()),
                                           parallelism=self.spec.parallelism,
                                           packing=self.spec.packing, checkpoint=self.checkpoint)

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

    def _settle(self) -> None:
        settled = self._ledger.settle(list(self._live.values()))
        for outcome in settled.outcomes:
            self._complete(outcome)
        self._dirty |= bool(settled.requeued)

    def _complete(self, outcome: Outcome[Cell]) -> None:
        st = self.ledger[outcome.item.cell_id]
        st.state, st.value, st.failure = DONE, outcome.value, outcome.failure
        st.finished = self.clock()
        self._dirty = True
        if self._live.pop(outcome.item.cell_id, None) is not None and st.failure is not None:
            self._failed += 1

    # -- reporting ----------------------------------------------------------------------------

    def progress(self) -> BenchmarkProgress:
        """From the cells not done (``_live``) and the count of failures: a tick's cost follows
        the cells left, not the benchmark's size."""
        live = list(self._live.values())
        return BenchmarkProgress(
            total=len(self.cells),
            done=len(self.cells) - len(live),
            running=sum(self.ledger[c.cell_id].state == LAUNCHED for c in live),
            packs=self._ledger.running_launches(live),
            failed=self._failed,
        )

    def results(self) -> Results:
        """The table, from the cells' runs as MLflow holds them (this benchmark's cells only)."""
        runs = self.tracker.trial_runs(self.name)
        mine = [runs[c.cell_id] for c in self.cells if c.cell_id in runs]
        columns = self.spec.columns
        st = self.spec.sign_test
        return build(records_from_runs(mine, self.spec.metric), self.spec.metric,
                     self.spec.baseline, st.tie_tolerance, st.pairs, columns)
