"""The child's configuration: one frozen model, validated once, hashed for result caching.

``TrainConfig`` is everything about a child except the activation, so a search spec embeds it
as its ``child`` section and every trial of a search shares it. ``TrialSpec`` adds what differs
per trial (the expression and the trial's identity). Defaults follow PAPER.md §3: ResNet-20 on
CIFAR-10, 10k steps, batch 128, SGD with Nesterov momentum 0.9, lr 0.1 with cosine decay,
weight decay 5e-4, a 45k/5k train/validation split.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from orchestrator.space import Expr, Numerics, ParseError
from orchestrator.space.activation import (
    ActivationRef,
    BetaMode,
    Builtin,
    activation_text,
    parse_activation,
)

ModelName = Literal[
    "resnet20", "resnet32", "resnet56", "preact_resnet164", "wrn_28_10", "densenet100_12",
    "tiny_cnn", "mlp",
]
DatasetName = Literal["cifar10", "cifar100", "digits", "synthetic"]
OptimizerName = Literal["sgd", "adamw"]
ScheduleName = Literal["cosine", "constant"]
Precision = Literal["auto", "fp32", "bf16"]
DeviceName = Literal["auto", "cpu", "cuda"]
CompileMode = Literal["auto", "eager", "compile", "graph", "eager_graph"]

OPERATIONAL_FIELDS: frozenset[str] = frozenset({
    "data_source", "data_sha256", "device", "compile", "log_every", "eval_every",
    "checkpoint_every", "save_weights",
})
"""Fields that change where or how observably a child runs, not what it learns: left out of
``config_hash`` so the same child read from a mirror, or run with more logging, hits the cache."""


def _allowed(kind: Any) -> str:
    return ", ".join(repr(v) for v in get_args(kind))


class TrainConfig(BaseModel):
    """How one child network is trained; identical for every trial of a search."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: ModelName = Field("resnet20", description=f"Network; one of {_allowed(ModelName)}.")
    dataset: DatasetName = Field("cifar10", description=f"Data set; one of {_allowed(DatasetName)}.")
    data_source: str | None = Field(
        None,
        description="Where CIFAR comes from: a directory in the official python format, a "
        ".tar.gz of it, or an s3:// URI of that tarball. None downloads with torchvision "
        "(needs internet). Ignored by digits and synthetic.",
    )
    data_sha256: str | None = Field(
        None, description="SHA-256 (hex) of the tarball or S3 object; checked before use."
    )
    val_fraction: float = Field(
        0.1, description="Share of the training split held out for validation (the reward); "
        "0.1 gives CIFAR's 45k/5k.",
    )
    split_seed: int = Field(
        0, description="Seed of the train/validation split, kept apart from `seed` so every "
        "trial of a search is rewarded on the same held-out images.",
    )
    steps: int = Field(10_000, description="Optimizer steps.")
    batch_size: int = Field(128, description="Images per step.")
    optimizer: OptimizerName = Field("sgd", description=f"One of {_allowed(OptimizerName)}.")
    lr: float = Field(0.1, description="Peak learning rate.")
    schedule: ScheduleName = Field(
        "cosine", description=f"Learning-rate schedule after warm-up; one of {_allowed(ScheduleName)}."
    )
    warmup_steps: int = Field(0, description="Linear warm-up from 0 to `lr` over this many steps.")
    momentum: float = Field(0.9, description="SGD momentum (AdamW: beta1).")
    nesterov: bool = Field(True, description="Nesterov momentum (SGD only).")
    weight_decay: float = Field(
        5e-4, description="L2 weight decay of every parameter except the activations' β, so "
        "decay does not pull β towards 0 and bias the search.",
    )
    crop_padding: int = Field(
        4, description="Random-crop augmentation: zero-pad by this many pixels, crop back; 0 turns it off."
    )
    flip: bool = Field(True, description="Random horizontal flip augmentation.")
    seed: int = Field(0, description="Seed of initialisation, batch order and augmentation.")
    numerics: Numerics = Field(
        "safe", description="'safe': guarded ops; 'paper': raw formulas (a NaN fails the child)."
    )
    beta_mode: BetaMode = Field("channel", description="'channel': one β per channel of each site; 'scalar'.")
    beta_init: float = Field(1.0, description="Initial value of every β.")
    precision: Precision = Field(
        "auto", description=f"One of {_allowed(Precision)}; auto is bf16 autocast on CUDA, fp32 on CPU."
    )
    device: DeviceName = Field("auto", description=f"One of {_allowed(DeviceName)}; auto picks CUDA when present.")
    compile: CompileMode = Field(
        "auto",
        description=f"One of {_allowed(CompileMode)}: eager; compile (torch.compile); graph "
        "(compiled, and the whole step captured in a CUDA graph, CUDA only); eager_graph (the "
        "eager step captured in a CUDA graph: no compile time, no kernel fusion; CUDA only). auto: graph on "
        "CUDA, eager on CPU.",
    )
    log_every: int = Field(100, description="Log training loss and accuracy every this many steps.")
    eval_every: int = Field(0, description="Also log val_accuracy every this many steps; 0: only at the end.")
    checkpoint_every: int = Field(
        0, description="Save a resumable checkpoint to the run's artifacts every this many steps; 0: never."
    )
    save_weights: bool = Field(False, description="Store the final weights as an artifact.")

    @field_validator("steps", "batch_size", "log_every")
    @classmethod
    def _positive(cls, v: int, info: Any) -> int:
        if v < 1:
            raise ValueError(f"{info.field_name} must be at least 1; got {v}")
        return v

    @field_validator("warmup_steps", "eval_every", "checkpoint_every", "crop_padding")
    @classmethod
    def _non_negative(cls, v: int, info: Any) -> int:
        if v < 0:
            raise ValueError(f"{info.field_name} must be 0 or more; got {v}")
        return v

    @field_validator("lr")
    @classmethod
    def _lr(cls, v: float) -> float:
        if not v > 0:
            raise ValueError(f"lr must be a positive number; got {v}")
        return v

    @field_validator("weight_decay", "momentum")
    @classmethod
    def _unit_interval(cls, v: float, info: Any) -> float:
        if not 0 <= v < 1:
            raise ValueError(f"{info.field_name} must be in [0, 1); got {v}")
        return v

    @field_validator("val_fraction")
    @classmethod
    def _fraction(cls, v: float) -> float:
        if not 0 < v < 1:
            raise ValueError(f"val_fraction must be strictly between 0 and 1; got {v}")
        return v

    @field_validator("data_sha256")
    @classmethod
    def _sha(cls, v: str | None) -> str | None:
        if v is not None and (len(v) != 64 or any(c not in "0123456789abcdef" for c in v.lower())):
            raise ValueError(f"data_sha256 must be 64 hexadecimal digits; got {v!r}")
        return None if v is None else v.lower()

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        if self.device == "cpu" and self.compile in ("graph", "eager_graph"):
            raise ValueError(f"compile={self.compile!r} needs device 'cuda' or 'auto'; CUDA graphs do not exist on CPU")
        if self.device == "cpu" and self.precision == "bf16":
            raise ValueError("precision='bf16' needs device 'cuda' or 'auto'; use 'fp32' or 'auto' on CPU")
        if self.warmup_steps >= self.steps:
            raise ValueError(f"warmup_steps ({self.warmup_steps}) must be below steps ({self.steps})")
        return self

    def config_hash(self) -> str:
        """16 hex digits over every field that affects the result (not OPERATIONAL_FIELDS).

        Computed from sorted JSON, so field order and defaults written out or left implicit give
        the same hash; adding a field with a default keeps old hashes only if its value is excluded.
        """
        payload = {k: v for k, v in self.model_dump(mode="json").items() if k not in OPERATIONAL_FIELDS}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


TRIAL_SPEC_ENV = "ACTSEARCH_TRIAL_SPEC"
"""Environment variable holding the trial spec as JSON: how a Kubernetes Job hands it to its
child (``actsearch-train`` reads it when no ``--spec`` is given)."""


class TrialSpec(BaseModel):
    """One child to train: the activation, the trial's identity, and the shared ``TrainConfig``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    expression: str = Field(
        description="Activation in canonical text form, e.g. 'sigmul(mul_beta(x), id(x))', or a "
        "built-in the grammar cannot express: 'builtin:lrelu', 'builtin:prelu', 'builtin:elu', "
        "'builtin:selu', 'builtin:gelu'."
    )
    search: str | None = Field(None, description="Search name; tag actsearch.search.")
    trial: str | None = Field(None, description="Trial id; tag actsearch.trial.")
    experiment: str = Field("actsearch-children", description="MLflow experiment of a run this child creates itself.")
    run_id: str | None = Field(
        None, description="MLflow run to log into (pre-created by the controller); default: "
        "$MLFLOW_RUN_ID or --run-id, else a new run. Packed members each name their own."
    )
    child: TrainConfig = Field(default_factory=TrainConfig, description="How the child is trained.")

    @field_validator("expression")
    @classmethod
    def _parses(cls, v: str) -> str:
        try:
            return activation_text(parse_activation(v))
        except ParseError as e:
            raise ValueError(f"{v!r} does not parse: {e}") from e

    @property
    def activation(self) -> ActivationRef:
        return parse_activation(self.expression)

    @property
    def expr(self) -> Expr:
        """The grammar expression; a built-in activation has none (ValueError)."""
        a = self.activation
        if isinstance(a, Builtin):
            raise ValueError(f"{self.expression} is a built-in activation, not a grammar expression")
        return a


PACK_KEY = "pack"
MAX_PACK = 64
PACK_FREE_FIELDS: frozenset[str] = frozenset({"seed"})
"""TrainConfig fields members of one pack may set differently: each member has its own
initialisation and batches; everything else (model, data, schedule, device) is shared."""


class PackSpec(BaseModel):
    """Several children trained side by side in one process on one device (docs/trainer.md,
    "Packing"): ``{"pack": [trial spec, ...]}``, one MLflow run per member.

    Members differ in activation and may differ in ``seed``; every other ``child`` setting must
    be equal, because one fused network trains them all in lockstep.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    pack: list[TrialSpec] = Field(
        min_length=1, max_length=MAX_PACK,
        description=f"The members, 1 to {MAX_PACK} trial specs.",
    )

    @model_validator(mode="after")
    def _compatible(self) -> PackSpec:
        first = self.pack[0].child.model_dump(exclude=set(PACK_FREE_FIELDS))
        for i, member in enumerate(self.pack[1:], start=1):
            other = member.child.model_dump(exclude=set(PACK_FREE_FIELDS))
            diff = sorted(k for k in first if first[k] != other[k])
            if diff:
                raise ValueError(
                    f"pack[{i}].child differs from pack[0].child in {', '.join(diff)}; members "
                    f"of a pack may differ only in {', '.join(sorted(PACK_FREE_FIELDS))}"
                )
        for key in ("trial", "run_id"):
            seen = [getattr(m, key) for m in self.pack if getattr(m, key) is not None]
            dup = sorted({v for v in seen if seen.count(v) > 1})
            if dup:
                raise ValueError(f"pack: {key} {dup[0]!r} names more than one member")
        return self

    @property
    def child(self) -> TrainConfig:
        """The shared settings (the first member's; only ``seed`` may differ)."""
        return self.pack[0].child
