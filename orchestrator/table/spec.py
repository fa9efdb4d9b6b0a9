"""The table build spec (``actsearch-ctl table build SPEC``): which functions, how many seeds,
the child's training, where the file goes. Validated strictly, as every spec: an unknown key or
a bad value is one line naming the field.

A build is a benchmark in disguise: each function × seed is a cell of a ``BenchmarkSpec``
(``benchmark()``), run by the benchmark runner over the launch ledger, the local backend (or
Jobs) and the trainer, packed and resumable like any benchmark.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from orchestrator.benchmark.spec import BASELINES, BenchmarkSpec, baseline_name
from orchestrator.contract import MAX_PACK, DatasetName, ModelName, TrainConfig
from orchestrator.echo import clip_repr
from orchestrator.space import ParseError, parse, to_text
from orchestrator.spec import (
    MAX_PARALLELISM,
    BackendSpec,
    SpaceSpec,
    StorageSpec,
    TrackingSpec,
    check_name,
)
from orchestrator.table.functions import Function
from orchestrator.validation import read_yaml, validate

AXIS_FIELDS = frozenset({"model", "dataset", "seed"})
MAX_SEEDS = 100


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class FunctionsSpec(_Model):
    """The distinct functions of the space (after fingerprint dedup and the numeric screen)."""

    sample: int | None = Field(
        None, ge=1, description="How many to draw uniformly (seeded), besides those included; "
        "null: every distinct function of the space.",
    )
    sample_seed: int = Field(0, ge=0, description="Seed of the uniform sample.")
    include: list[str] = Field(
        default_factory=list, description="Functions always trained: the paper's baseline names "
        f"({', '.join(k for k, v in BASELINES.items() if not v.startswith('builtin:'))}) or "
        "canonical expressions of the space.",
    )

    @field_validator("include")
    @classmethod
    def _expressions(cls, v: list[str]) -> list[str]:
        out = []
        for i, text in enumerate(v):
            name = baseline_name(text)
            if name is not None:
                text = BASELINES[name]
                if text.startswith("builtin:"):
                    raise ValueError(f"{i}: {name} is a built-in, not a function of the grammar")
            try:
                out.append(to_text(parse(text)))
            except ParseError as e:
                raise ValueError(f"{i}: {clip_repr(text)} is neither a baseline name nor an "
                                 f"expression: {e}") from e
        dup = sorted({x for x in out if out.count(x) > 1})
        if dup:
            raise ValueError(f"listed twice: {dup}")
        return out


class TableSpec(_Model):
    """One accuracy table: every selected function trained with every seed."""

    name: str = Field(description="Build name: lowercase letters, digits and '-', at most 40 "
                      "characters; cell ids and the MLflow parent run derive from it.")
    space: SpaceSpec = Field(default_factory=SpaceSpec, description="The space (1 unit: it is "
                             "enumerated whole).")
    functions: FunctionsSpec = Field(default_factory=FunctionsSpec)
    seeds: int = Field(2, ge=2, le=MAX_SEEDS, description="Training seeds 0..N-1 per function "
                       "(at least 2: the replay draws the seed noise from them).")
    model: ModelName = Field("mlp", description="Network of every child.")
    dataset: DatasetName = Field("fashion_mnist", description="Data set of every child.")
    child: TrainConfig = Field(
        default_factory=lambda: TrainConfig(steps=400, batch_size=128, eval_every=100),
        description="The child's training; eval_every > 0 sets the table's steps (eval_every, "
        "2·eval_every, ..., steps); model, dataset and seed come from above.",
    )
    parallelism: int = Field(1, ge=1, le=MAX_PARALLELISM, description="Child processes at once.")
    packing: int = Field(16, ge=1, le=MAX_PACK, description="Children trained side by side "
                         "in one process.")
    output: str | None = Field(None, description="The table file; default tables/<name>.jsonl.gz.")
    tracking: TrackingSpec = Field(default_factory=TrackingSpec)
    storage: StorageSpec = Field(default_factory=StorageSpec)
    backend: BackendSpec = Field(default_factory=BackendSpec)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_name(v)

    @field_validator("space")
    @classmethod
    def _one_unit(cls, v: SpaceSpec) -> SpaceSpec:
        if v.units != 1:
            raise ValueError(f"units must be 1 (a table enumerates its space whole); got {v.units}")
        return v

    @field_validator("child")
    @classmethod
    def _child(cls, v: TrainConfig) -> TrainConfig:
        given = sorted(v.model_fields_set & AXIS_FIELDS)
        if given:
            raise ValueError(f"{', '.join(given)}: set model and dataset at the top level; "
                             "seeds come from seeds")
        if v.eval_every < 1:
            raise ValueError(f"eval_every must be at least 1 (the table records validation "
                             f"accuracy every eval_every steps); got {v.eval_every}")
        if v.steps % v.eval_every:
            raise ValueError(f"steps ({v.steps}) must be a multiple of eval_every ({v.eval_every})")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> TableSpec:
        TrainConfig.model_validate({**self.child.model_dump(mode="json", exclude_unset=True),
                                    "model": self.model, "dataset": self.dataset})
        return self

    @property
    def steps(self) -> list[int]:
        """Where each curve is read: every eval_every steps, the last at the end of training."""
        every = self.child.eval_every
        return list(range(every, self.child.steps + 1, every))

    @property
    def output_path(self) -> Path:
        return Path(self.output or f"tables/{self.name}.jsonl.gz")

    def benchmark(self, functions: Sequence[Function]) -> BenchmarkSpec:
        """The build as a benchmark: one row per function (labelled by its fingerprint, unique),
        one model, one data set, the seeds; rewards read as validation accuracy."""
        data: dict[str, Any] = {
            "name": self.name,
            "activations": [{"name": f.fingerprint, "expression": f.expression} for f in functions],
            "models": [self.model],
            "datasets": [self.dataset],
            "seeds": self.seeds,
            "metric": "val_accuracy",
            "order": "rows",
            "parallelism": self.parallelism,
            "packing": self.packing,
            "child": self.child.model_dump(mode="json", exclude_unset=True),
            "tracking": self.tracking.model_dump(mode="json"),
            "storage": self.storage.model_dump(mode="json"),
            "backend": self.backend.model_dump(mode="json"),
        }
        return BenchmarkSpec.model_validate(data)


def parse_table_spec(data: Any, source: str = "spec") -> TableSpec:
    return validate(TableSpec, data, source, "table spec")


def load_table_spec(path: str | Path) -> TableSpec:
    """Read and validate a YAML table spec."""
    return parse_table_spec(read_yaml(path), str(path))
