"""The benchmark spec: activations × models × datasets × seeds, validated once, frozen.

Activations are written as the paper's baseline names (``ReLU``, ``LReLU``, ``PReLU``,
``Softplus``, ``ELU``, ``SELU``, ``GELU``, ``Swish-1``, ``Swish``; any case), as any canonical
expression or ``builtin:<name>``, as ``{name: LABEL, expression: ...}`` to choose the row label,
or as ``{top: {search: NAME, k: 3}}``: the k best functions of a finished search, read from
MLflow when the benchmark starts. ``tracking``, ``storage`` and ``backend`` are the search
spec's sections; ``child`` is the search spec's ``TrainConfig``, shared by every cell, with
per-model overrides for each model's published hyper-parameters and per-data-set overrides (a
data set's ``data_source``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from orchestrator.contract import MAX_PACK, DatasetName, ModelName, TrainConfig
from orchestrator.echo import clip_repr
from orchestrator.space import ParseError
from orchestrator.space.activation import (
    Builtin,
    activation_math,
    activation_text,
    parse_activation,
)
from orchestrator.spec import BackendSpec, StorageSpec, TrackingSpec, check_name
from orchestrator.validation import describe, read_yaml, validate

BASELINES: dict[str, str] = {
    "ReLU": "max(relu(x), relu(x))",
    "LReLU": "builtin:lrelu",
    "PReLU": "builtin:prelu",
    "Softplus": "max(softplus(x), softplus(x))",
    "ELU": "builtin:elu",
    "SELU": "builtin:selu",
    "GELU": "builtin:gelu",
    "Swish-1": "sigmul(id(x), id(x))",
    "Swish": "sigmul(mul_beta(x), id(x))",
}
"""The paper's baselines (docs/benchmark.md): grammar forms where the grammar is exact, else built-ins."""

_BY_KEY = {re.sub(r"[^a-z0-9]", "", k.lower()): k for k in BASELINES}
_BY_EXPRESSION = {v: k for k, v in BASELINES.items()}
AXIS_FIELDS = frozenset({"model", "dataset", "seed"})


def baseline_name(text: str) -> str | None:
    """``'swish-1'``, ``'Swish1'``, ``'SWISH_1'`` -> ``'Swish-1'``; None if not a baseline."""
    return _BY_KEY.get(re.sub(r"[^a-z0-9]", "", text.lower()))


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TopSpec(_Model):
    search: str = Field(description="A search (run by `actsearch-ctl run` or in a cluster).")
    k: int = Field(3, ge=1, le=100, description="How many of its best distinct functions.")
    experiment: str | None = Field(
        None, description="MLflow experiment of the search; default: the benchmark's."
    )


class ActivationSpec(_Model):
    """One row of the table: a named expression or built-in, or the top-k of a search."""

    name: str | None = Field(None, description="Row label; default: the baseline's name or the math form.")
    expression: str | None = Field(None, description="Canonical expression or builtin:<name>.")
    top: TopSpec | None = Field(None, description="The k best functions of a finished search.")

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, v: Any) -> Any:
        if isinstance(v, str):
            name = baseline_name(v)
            return {"name": name, "expression": BASELINES[name]} if name else {"expression": v}
        return v

    @field_validator("expression")
    @classmethod
    def _parses(cls, v: str | None) -> str | None:
        if v is None:
            return None
        try:
            return activation_text(parse_activation(v))
        except ParseError as e:
            raise ValueError(
                f"{clip_repr(v)} is neither a baseline ({', '.join(BASELINES)}) nor an expression: {e}"
            ) from e

    @model_validator(mode="after")
    def _one_kind(self) -> ActivationSpec:
        if (self.expression is None) == (self.top is None):
            raise ValueError("give exactly one of expression and top")
        if self.top is not None and self.name is not None:
            raise ValueError("the rows of top get their labels from their functions; drop name")
        return self

    @property
    def label(self) -> str:
        assert self.expression is not None
        return self.name or label_of(self.expression)


def label_of(expression: str) -> str:
    """A baseline's name, else the function in math notation."""
    if expression in _BY_EXPRESSION:
        return _BY_EXPRESSION[expression]
    a = parse_activation(expression)
    return str(a) if isinstance(a, Builtin) else activation_math(a)


class ModelSpec(_Model):
    name: ModelName = Field(description="Network, as in child.model.")
    child: dict[str, Any] = Field(
        default_factory=dict,
        description="TrainConfig fields for this model only (its published hyper-parameters), "
        "over the shared child section.",
    )

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, v: Any) -> Any:
        return {"name": v} if isinstance(v, str) else v


class DatasetSpec(_Model):
    name: DatasetName = Field(description="Data set, as in child.dataset.")
    child: dict[str, Any] = Field(
        default_factory=dict,
        description="TrainConfig fields for this data set only (e.g. its data_source), over the "
        "shared child section; a model's overrides win over these.",
    )

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, v: Any) -> Any:
        return {"name": v} if isinstance(v, str) else v


class SignTestSpec(_Model):
    baseline: str | None = Field(
        None, description="Row label every other activation is compared with; default: ReLU "
        "when benchmarked, else the first activation."
    )
    tie_tolerance: float = Field(
        0.0, ge=0, description="Differences of at most this much accuracy (0.001 = 0.1 "
        "points) count as ties.",
    )
    pairs: Literal["medians", "seeds"] = Field(
        "medians", description="'medians': one comparison per model × dataset, of the medians "
        "over seeds (the paper's Table 3); 'seeds': one per model × dataset × seed.",
    )


class BenchmarkSpec(_Model):
    """One benchmark: every activation trained on every model × dataset × seed."""

    name: str = Field(description="Benchmark name: lowercase letters, digits and '-', at most 40 "
                      "characters; cell ids and Job names derive from it.")
    activations: list[ActivationSpec] = Field(min_length=1, description="Rows of the table.")
    models: list[ModelSpec] = Field(min_length=1)
    datasets: list[DatasetSpec] = Field(min_length=1)
    seeds: list[int] = Field(
        default_factory=lambda: [0, 1, 2, 3, 4],
        description="Training seeds, or a count N for seeds 0..N-1 (the paper: median of 5).",
    )
    order: Literal["seeds", "rows"] = Field(
        "seeds", description="Training order: 'seeds', seed by seed (a benchmark cut short has "
        "whole seeds of the table); 'rows', every cell of one activation before the next (whole "
        "rows: what an accuracy table wants).",
    )
    metric: Literal["test_accuracy", "val_accuracy"] = Field(
        "test_accuracy", description="What the table reports (the paper: test accuracy)."
    )
    sign_test: SignTestSpec = Field(default_factory=SignTestSpec)
    parallelism: int = Field(
        1, ge=1, description="Child processes (local) or Jobs (Kubernetes) training at once; "
        "each carries up to `packing` cells.",
    )
    packing: int = Field(
        1, ge=1, le=MAX_PACK,
        description=f"Cells trained together in one process/Job on one device (1–{MAX_PACK}), "
        "side by side with one MLflow run each; only cells of the same model and data set "
        "(configs equal but for the seed) share a pack. 1 trains each cell alone.",
    )
    child: TrainConfig = Field(default_factory=TrainConfig, description="Shared child settings; "
                               "model, dataset and seed come from the axes.")
    tracking: TrackingSpec = Field(default_factory=TrackingSpec)
    storage: StorageSpec = Field(default_factory=StorageSpec)
    backend: BackendSpec = Field(default_factory=BackendSpec)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_name(v)

    @field_validator("seeds", mode="before")
    @classmethod
    def _seed_count(cls, v: Any) -> Any:
        if isinstance(v, int) and not isinstance(v, bool):
            if v < 1:
                raise ValueError(f"a seed count must be at least 1; got {v}")
            return list(range(v))
        return v

    @field_validator("seeds")
    @classmethod
    def _unique_seeds(cls, v: list[int]) -> list[int]:
        if not v:
            raise ValueError("name at least one seed")
        if len(set(v)) != len(v):
            raise ValueError(f"seeds repeat: {v}")
        return v

    @field_validator("models", "datasets")
    @classmethod
    def _unique_names(cls, v: list[Any], info: Any) -> list[Any]:
        names = [m.name for m in v]
        if len(set(names)) != len(names):
            raise ValueError(f"{info.field_name} repeat: {names}")
        return v

    @field_validator("child")
    @classmethod
    def _no_axes_in_child(cls, v: TrainConfig) -> TrainConfig:
        given = sorted(v.model_fields_set & AXIS_FIELDS)
        if given:
            raise ValueError(f"{', '.join(given)} come from models, datasets and seeds; "
                             "remove them from child")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> BenchmarkSpec:
        labels = [a.label for a in self.activations if a.top is None]
        dup = sorted({x for x in labels if labels.count(x) > 1})
        if dup:
            raise ValueError(f"activations: labels repeat: {dup}; give each row its own name")
        exprs = [a.expression for a in self.activations if a.expression is not None]
        dup = sorted({x for x in exprs if exprs.count(x) > 1})
        if dup:
            raise ValueError(f"activations: the same function is listed twice: {dup}")
        base = self.sign_test.baseline
        if base is not None and base not in labels:
            raise ValueError(f"sign_test.baseline: {base!r} is not one of the activations' "
                             f"labels ({', '.join(labels) or 'none: only top-k rows'})")
        axes: tuple[tuple[str, Sequence[ModelSpec | DatasetSpec]], ...] = (
            ("models", self.models), ("datasets", self.datasets))
        for axis, entries in axes:
            for i, entry in enumerate(entries):
                given = sorted(set(entry.child) & AXIS_FIELDS)
                if given:
                    raise ValueError(f"{axis}.{i}.child: {', '.join(given)} come from the axes; "
                                     "remove them")
        for i, m in enumerate(self.models):
            for d in self.datasets:
                try:
                    self.cell_config(m, d, self.seeds[0])
                except ValidationError as e:
                    raise ValueError(f"models.{i}.child ({m.name} on {d.name}): "
                                     f"{describe(e, 'child config')}") from e
        return self

    @property
    def baseline(self) -> str:
        """The sign test's baseline label."""
        if self.sign_test.baseline is not None:
            return self.sign_test.baseline
        labels = [a.label for a in self.activations if a.top is None]
        return "ReLU" if "ReLU" in labels else (labels[0] if labels else "")

    def cell_config(self, model: ModelSpec, dataset: DatasetSpec, seed: int) -> TrainConfig:
        """The child config of one cell: the shared section, the data set's overrides, the
        model's overrides, then the axes."""
        shared = self.child.model_dump(mode="json", exclude_unset=True)
        return TrainConfig.model_validate({
            **shared, **dataset.child, **model.child,
            "model": model.name, "dataset": dataset.name, "seed": seed,
        })

    @property
    def columns(self) -> list[tuple[str, str]]:
        """The table's columns: (model, dataset), models outer."""
        return [(m.name, d.name) for m in self.models for d in self.datasets]


def parse_benchmark(data: Any, source: str = "spec") -> BenchmarkSpec:
    return validate(BenchmarkSpec, data, source, "benchmark spec")


def load_benchmark(path: str | Path) -> BenchmarkSpec:
    """Read and validate a YAML benchmark spec."""
    return parse_benchmark(read_yaml(path), str(path))
