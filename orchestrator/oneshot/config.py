"""What a one-shot search child is told: the search's options and the trial spec around them.

``OneShotConfig`` holds the search itself; the network, data and optimiser of the supernet's
weights are the ordinary ``TrainConfig`` (``child``), which is also how the discretised function
is trained from scratch afterwards, so that evaluation is an ordinary child. Defaults follow the
GRAFS fixes (docs/oneshot.md): DrNAS, warm-start one epoch with ReLU, ops clamped to ±10,
independent Dirichlet samples per site, progressive shrinking to one op per slot; then four
screened candidates retrained beside ReLU, the best by validation accuracy returned.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from orchestrator.contract import TrainConfig
from orchestrator.echo import clip_repr
from orchestrator.oneshot.supernet import Variant
from orchestrator.space import BINARY_NAMES, UNARY_NAMES, ParseError, SearchSpace, SpaceError
from orchestrator.space.activation import activation_text, parse_activation

RELU = "max(relu(x), relu(x))"

ONESHOT_KEY = "oneshot"
"""The key that makes a trial spec a one-shot search (``actsearch-train`` dispatches on it)."""


class OneShotConfig(BaseModel):
    """The one-shot search: template, variant, and the GRAFS fixes, each one an option."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    variant: Variant = Field("drnas", description="darts (softmax), drnas (Dirichlet) or gdas (hard Gumbel).")
    units: int = Field(2, ge=1, le=4, description="Core units of the chain template; 2 is the paper's "
                       "b2(u3(b1(u1(x), u2(x))), u4(x)).")
    unary: tuple[str, ...] = Field(UNARY_NAMES, description="Unary ops mixed in every unary slot.")
    binary: tuple[str, ...] = Field(BINARY_NAMES, description="Binary ops mixed in every binary slot.")
    search_steps: int = Field(600, ge=1, description="Alternating steps (one architecture step on the "
                              "held-out part, one weight step on the rest) after the warm-start.")
    warmstart: Literal["relu", "none"] = Field(
        "relu", description="relu: train the weights with a plain ReLU at every site first.")
    warmstart_steps: int | None = Field(
        None, ge=0, description="Weight steps of the warm-start; default one epoch of the weight split.")
    clamp: float | None = Field(10.0, gt=0, description="Clamp every op's output to ±clamp during the "
                                "search; null turns it off.")
    shrink: bool = Field(True, description="Progressive shrinking; off: plain argmax at the end.")
    shrink_end: float = Field(0.75, gt=0, le=1, description="Share of search_steps by which every "
                              "slot is down to one op; the rest trains the discrete cell.")
    arch_fraction: float = Field(0.5, gt=0, lt=1, description="Share of the training split held out "
                                 "for the architecture (α and β) steps.")
    arch_lr: float = Field(0.01, gt=0, description="Adam learning rate of α and β.")
    arch_weight_decay: float = Field(1e-3, ge=0, description="Weight decay of α (not β).")
    tau_max: float = Field(10.0, gt=0, description="gdas: initial Gumbel temperature.")
    tau_min: float = Field(0.1, gt=0, description="gdas: final temperature (geometric decay).")
    restarts: int = Field(1, ge=1, le=16, description="Supernet searches, seeds child.seed + r; their "
                          "derivations are pooled.")
    candidates: int = Field(4, ge=0, le=64, description="Derived functions (screened, distinct) retrained "
                            "beside the baseline; the best by validation accuracy is the result. 0: the "
                            "argmax derivation, unscreened and unchecked (the method before selection).")
    baseline: str = Field(RELU, description="Retrained beside the candidates (an expression or "
                          "builtin:<name>); returned when no candidate retrains better.")
    select_steps: int | None = Field(None, ge=1, description="Steps of each selection retraining; "
                                     "default child.steps.")
    select_seeds: int = Field(2, ge=1, le=8, description="Seeds each candidate is retrained on; the "
                              "mean validation accuracy decides.")
    evaluate: bool = Field(True, description="Then train the result from scratch as a "
                           "normal child (a new run tagged actsearch.oneshot_of).")

    @field_validator("baseline")
    @classmethod
    def _activation(cls, v: str) -> str:
        try:
            return activation_text(parse_activation(v))
        except ParseError as e:
            raise ValueError(f"{clip_repr(v)} does not parse: {e}") from e

    @model_validator(mode="after")
    def _ops(self) -> OneShotConfig:
        try:
            self.space()
        except SpaceError as e:
            raise ValueError(str(e).removeprefix("space.")) from e
        return self

    def space(self) -> SearchSpace:
        """The grammar space the discretised function lies in."""
        return SearchSpace(units=self.units, unary=self.unary, binary=self.binary)


class OneShotSpec(BaseModel):
    """A one-shot child: like ``TrialSpec`` with ``oneshot`` options instead of an expression."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    oneshot: OneShotConfig = Field(default_factory=OneShotConfig)
    search: str | None = Field(None, description="Search name; tag actsearch.search.")
    trial: str | None = Field(None, description="Trial id; tag actsearch.trial (the evaluation child "
                              "gets '<trial>-eval').")
    experiment: str = Field("actsearch-children", description="MLflow experiment of runs created here.")
    child: TrainConfig = Field(default_factory=TrainConfig, description="The supernet's weights "
                               "training and the evaluation child.")

    @field_validator("oneshot", mode="before")
    @classmethod
    def _null_is_default(cls, v: Any) -> Any:
        return {} if v is None else v
