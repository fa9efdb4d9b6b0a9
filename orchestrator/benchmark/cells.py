"""Rows (activations) and cells (row × model × dataset × seed) of a benchmark.

A cell's id is ``<benchmark>-<10 hex>``, a hash of its activation and its full child config
(which holds model, dataset, seed and every hyper-parameter): deterministic, unchanged when
rows or seeds are added or reordered, and new when anything that changes the training changes.
It names the cell's MLflow run (tag ``actsearch.cell``), its local process directory and its
Job (at most 40 + 11 characters).

With ``packing`` > 1, cells whose child configs are equal but for the seed (same model and data
set) train side by side in one process: a pack, named ``<benchmark>-p<10 hex of its first
cell>`` (at most 40 + 12 characters; never a cell id, as ``p`` is no hex digit).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

from orchestrator.benchmark.spec import BenchmarkSpec, TopSpec, label_of
from orchestrator.contract import PACK_FREE_FIELDS, Tag, TrainConfig
from orchestrator.space.naming import shorten

log = logging.getLogger(__name__)

TopLookup = Callable[[TopSpec], list[str]]
"""The expressions of a search's k best distinct functions, best first."""


@dataclass(frozen=True)
class Row:
    label: str
    expression: str
    origin: str = "spec"  # or "top of <search>"


@dataclass(frozen=True)
class Cell:
    cell_id: str
    row: int  # index into the rows: the table's row order
    label: str
    expression: str
    model: str
    dataset: str
    seed: int
    config: TrainConfig

    def tags(self) -> dict[str, str]:
        return {
            Tag.ACTIVATION: self.label,
            Tag.EXPRESSION: self.expression,
            Tag.ROW: str(self.row),
            Tag.MODEL: self.model,
            Tag.DATASET: self.dataset,
            Tag.SEED: str(self.seed),
            Tag.CONFIG_HASH: self.config.config_hash(),
            Tag.RUN_NAME: shorten(f"{self.label}·{self.model}·{self.dataset}·{self.seed}"),
        }


def top_key(top: TopSpec) -> str:
    return f"{top.experiment or ''}/{top.search}/{top.k}"


def resolve_rows(spec: BenchmarkSpec, lookup: TopLookup, known: dict[str, list[str]]) -> list[Row]:
    """The spec's activations with each ``top`` expanded; ``known`` caches (and receives) the
    top-k lists, so a resumed benchmark keeps the functions it started with."""
    rows: list[Row] = []
    seen: set[str] = set()
    for a in spec.activations:
        if a.top is None:
            assert a.expression is not None
            rows.append(Row(a.label, a.expression))
            seen.add(a.expression)
            continue
        key = top_key(a.top)
        if key not in known:
            known[key] = lookup(a.top)
        for expression in known[key]:
            if expression in seen:
                log.info("top function %s of search %s is already a row", expression, a.top.search)
                continue
            rows.append(Row(label_of(expression), expression, f"top of {a.top.search}"))
            seen.add(expression)
    return rows


def cell_id(benchmark: str, expression: str, config: TrainConfig) -> str:
    digest = hashlib.sha256(f"{expression}|{config.config_hash()}".encode()).hexdigest()
    return f"{benchmark}-{digest[:10]}"


def expand(spec: BenchmarkSpec, rows: list[Row]) -> list[Cell]:
    """Every cell, seed by seed (``order: seeds``: a benchmark cut short has whole seeds of the
    table first), or row by row (``order: rows``: every seed of a row before the next row, so an
    accuracy table cut short has whole functions)."""
    cells = []
    for seed in spec.seeds:
        for model in spec.models:
            for dataset in spec.datasets:
                config = spec.cell_config(model, dataset, seed)
                for i, row in enumerate(rows):
                    cells.append(Cell(cell_id(spec.name, row.expression, config), i, row.label,
                                      row.expression, model.name, dataset.name, seed, config))
    if spec.order == "rows":
        cells.sort(key=lambda c: c.row)  # stable: seeds, models, data sets keep their order
    return cells


def pack_key(config: TrainConfig) -> str:
    """What cells sharing a pack must have in common: the child config but for the seed."""
    return json.dumps(config.model_dump(mode="json", exclude=set(PACK_FREE_FIELDS)),
                      sort_keys=True)


def pack_id(benchmark: str, first: Cell) -> str:
    """The launch id of a pack: the benchmark's name and its first cell's hash."""
    return f"{benchmark}-p{first.cell_id[len(benchmark) + 1:]}"
