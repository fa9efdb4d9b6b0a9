"""The comparison protocol of ``actsearch-ctl search-sim --protocol FILE`` (docs/search.md).

A protocol file fixes, before any run, what a comparison of strategies is judged on: the space,
budget, seeds (at least ``MIN_SEEDS``) and threshold; the strategies, each with its options and
a label (``evolution+surrogate``); the baseline they are tested against; and two disjoint lists
of target functions: ``development`` targets, on which options may be tuned, and ``heldout``
targets, on which results are reported and nothing is tuned. Declaring the held-out targets up
front is what keeps a tuned default from being judged on the targets it was tuned on.

A *table protocol* (``TableProtocol``, a file with ``table: PATH``) does the same on a replayed
accuracy table: the table's functions are split in two halves by a fixed rule
(``orchestrator.table.split``), tuned on one, reported on the other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from orchestrator.search.base import StrategyError
from orchestrator.search.registry import STRATEGY_NAMES, check_options
from orchestrator.search.simulate import SimilarityReward
from orchestrator.space import (
    BINARY_NAMES,
    UNARY_NAMES,
    Expr,
    ParseError,
    SearchSpace,
    SpaceError,
    parse,
)
from orchestrator.space.fingerprint import fingerprint
from orchestrator.validation import read_yaml, validate

MIN_SEEDS = 20
Split = Literal["development", "heldout"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class Arm(_Model):
    """One strategy with its options, under a label of its own."""

    name: str
    label: str = ""
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in STRATEGY_NAMES:
            raise ValueError(f"unknown strategy {v!r}; allowed: {', '.join(STRATEGY_NAMES)}")
        return v

    @model_validator(mode="after")
    def _options(self) -> Arm:
        try:
            check_options(self.name, 0, table_halves=True, **self.options)
        except StrategyError as e:
            raise ValueError(f"options: {e}") from e
        if not self.label:
            object.__setattr__(self, "label", self.name)
        return self

    @property
    def prior(self) -> str | None:
        """The table half its surrogate is pre-fitted on (``surrogate.prior``), if any."""
        surrogate = self.options.get("surrogate")
        return surrogate.get("prior") if isinstance(surrogate, dict) else None


class _Arms(_Model):
    """What both kinds of protocol share: the strategies and the baseline they are tested against."""

    budget: int = Field(ge=1, le=100_000)
    seeds: int = Field(ge=MIN_SEEDS, le=1_000)
    batch: int = Field(20, ge=1, le=1_000)
    baseline: str = "random"
    strategies: list[Arm] = Field(min_length=1)

    @field_validator("strategies", mode="before")
    @classmethod
    def _names_as_arms(cls, v: Any) -> Any:
        return [{"name": a} if isinstance(a, str) else a for a in v] if isinstance(v, list) else v

    def _check_arms(self) -> None:
        labels = [a.label for a in self.strategies]
        if len(set(labels)) != len(labels):
            raise ValueError("strategies: labels must be distinct; give repeated strategies a label")
        if self.baseline not in labels:
            raise ValueError(f"baseline {self.baseline!r} must be the label of one of the "
                             f"strategies: {', '.join(labels)}")


class TableProtocol(_Arms):
    """A comparison on a replayed accuracy table, split in two halves by a fixed rule
    (``orchestrator.table.split``): options are tuned on the ``development`` half, results
    reported on the ``heldout`` half, each half with its own top ``top_fraction`` as the goal.
    A surrogate may be pre-fitted on one half (``surrogate: {prior: development}``), never on
    the half in play."""

    table: str = Field(min_length=1)
    top_fraction: float = Field(0.01, gt=0.0, le=1.0)

    @model_validator(mode="after")
    def _consistent(self) -> TableProtocol:
        self._check_arms()
        return self


class ComparisonProtocol(_Arms):
    units: int = Field(ge=1, le=4)
    unary: list[str] | None = None
    binary: list[str] | None = None
    threshold: float = Field(gt=0.0, le=1.0)
    development: list[str] = Field(min_length=1)
    heldout: list[str] = Field(min_length=1)

    @field_validator("development", "heldout")
    @classmethod
    def _expressions(cls, v: list[str]) -> list[str]:
        for text in v:
            try:
                SimilarityReward(parse(text))
            except ParseError as e:
                raise ValueError(f"{text!r} is not an expression: {e}") from e
            except ValueError as e:
                raise ValueError(f"{text!r}: {e}") from e
        return v

    @model_validator(mode="after")
    def _consistent(self) -> ComparisonProtocol:
        try:
            self.space()
        except SpaceError as e:
            raise ValueError(f"space: {e}") from e
        self._check_arms()
        for i, arm in enumerate(self.strategies):
            if arm.prior is not None:
                raise ValueError(f"strategies.{i}.options.surrogate.prior: only a table protocol "
                                 "(with table:) has halves to fit a surrogate on")
        shared = {to_key(t) for t in self.development} & {to_key(t) for t in self.heldout}
        if shared:
            raise ValueError("heldout: a target computes the same function as a development "
                             "target; the two lists must be disjoint")
        return self

    def space(self) -> SearchSpace:
        return SearchSpace(units=self.units, unary=tuple(self.unary or UNARY_NAMES),
                           binary=tuple(self.binary or BINARY_NAMES))

    def targets(self, split: Split) -> list[Expr]:
        return [parse(t) for t in (self.development if split == "development" else self.heldout)]


def to_key(text: str) -> str:
    """A target's functional fingerprint: two spellings of one function count as one target."""
    return fingerprint(parse(text))


def load_protocol(path: str | Path) -> ComparisonProtocol | TableProtocol:
    """A protocol file, or ``ConfigError`` naming every bad field: a table protocol when it
    names a ``table``, a protocol of target functions otherwise."""
    data = read_yaml(path)
    if isinstance(data, dict) and "table" in data:
        return validate(TableProtocol, data, str(path), "protocol")
    return validate(ComparisonProtocol, data, str(path), "protocol")
