"""What the controller and a child agree on, importable without torch.

The controller writes a trial spec (``TrialSpec``, or a ``PackSpec`` of several) into the child's
environment, the child trains and records the outcome on its MLflow run, and the controller reads
that run back. Everything both sides must spell the same lives here: the child's configuration,
the spec's shape and environment variable, the child's exit codes, the MLflow tag names and the
failure reasons stored in ``actsearch.failure``. Stored values (tag names, failure strings,
hashes) are read back from old runs and checkpoints, so they never change.

``TrainConfig`` is everything about a child except the activation, so a search spec embeds it
as its ``child`` section and every trial of a search shares it. ``TrialSpec`` adds what differs
per trial (the expression, its fingerprint and the trial's identity). Defaults follow the paper's
child: ResNet-20 on CIFAR-10, 10k steps, batch 128, SGD with Nesterov momentum 0.9, lr 0.1 with
cosine decay, weight decay 5e-4, a 45k/5k train/validation split.
"""

from __future__ import annotations

import hashlib
import json
from enum import Enum, IntEnum
from typing import Any, Final, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from orchestrator.echo import clip_repr
from orchestrator.space import Expr, Numerics, ParseError
from orchestrator.space.activation import (
    ActivationRef,
    BetaMode,
    Builtin,
    activation_fingerprint,
    activation_text,
    parse_activation,
)

ModelName = Literal[
    "resnet20", "resnet32", "resnet56", "preact_resnet164", "wrn_28_10", "densenet100_12",
    "tiny_cnn", "mlp",
]
DatasetName = Literal["cifar10", "cifar100", "fashion_mnist", "digits", "synthetic"]
OptimizerName = Literal["sgd", "adamw"]
ScheduleName = Literal["cosine", "constant"]
Precision = Literal["auto", "fp32", "bf16"]
DeviceName = Literal["auto", "cpu", "cuda"]
CompileMode = Literal["auto", "eager", "compile", "graph", "eager_graph"]

OPERATIONAL_FIELDS: frozenset[str] = frozenset({
    "data_source", "data_sha256", "device", "compile", "log_every", "eval_every",
    "checkpoint_every", "save_weights", "plot",
})
"""Fields that change where or how observably a child runs, not what it learns: left out of
``config_hash`` so the same child read from a mirror, or run with more logging, hits the cache."""


def _allowed(kind: Any) -> str:
    return ", ".join(repr(v) for v in get_args(kind))


class TrainConfig(BaseModel):
    """How one child network is trained; identical for every trial of a search."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: ModelName = Field(default="resnet20", description=f"Network; one of {_allowed(ModelName)}.")
    dataset: DatasetName = Field(default="cifar10", description=f"Data set; one of {_allowed(DatasetName)}.")
    data_source: str | None = Field(
        default=None,
        description="Where CIFAR or Fashion-MNIST comes from: a directory in the official format "
        "(CIFAR's python batches; Fashion-MNIST's four IDX files, gzipped or not), a .tar.gz of it, "
        "or an s3:// URI of that tarball. None: Fashion-MNIST from the Debian package "
        "dataset-fashion-mnist where installed, else (like CIFAR) a torchvision download (needs "
        "internet). Ignored by digits and synthetic.",
    )
    data_sha256: str | None = Field(
        default=None, description="SHA-256 (hex) of the tarball or S3 object; checked before use."
    )
    val_fraction: float = Field(
        default=0.1, description="Share of the training split held out for validation (the reward); "
        "0.1 gives CIFAR's 45k/5k.",
    )
    split_seed: int = Field(
        default=0, description="Seed of the train/validation split, kept apart from `seed` so every "
        "trial of a search is rewarded on the same held-out images.",
    )
    steps: int = Field(default=10_000, description="Optimizer steps.")
    batch_size: int = Field(default=128, description="Images per step.")
    optimizer: OptimizerName = Field(default="sgd", description=f"One of {_allowed(OptimizerName)}.")
    lr: float = Field(default=0.1, description="Peak learning rate.")
    schedule: ScheduleName = Field(
        default="cosine", description=f"Learning-rate schedule after warm-up; one of {_allowed(ScheduleName)}."
    )
    warmup_steps: int = Field(default=0, description="Linear warm-up from 0 to `lr` over this many steps.")
    momentum: float = Field(default=0.9, description="SGD momentum (AdamW: beta1).")
    nesterov: bool = Field(default=True, description="Nesterov momentum (SGD only).")
    weight_decay: float = Field(
        default=5e-4, description="L2 weight decay of every parameter except the activations' β, so "
        "decay does not pull β towards 0 and bias the search.",
    )
    crop_padding: int = Field(
        default=4, description="Random-crop augmentation: zero-pad by this many pixels, crop back; 0 turns it off."
    )
    flip: bool = Field(default=True, description="Random horizontal flip augmentation.")
    seed: int = Field(default=0, description="Seed of initialisation, batch order and augmentation.")
    numerics: Numerics = Field(
        default="safe", description="'safe': guarded ops; 'paper': raw formulas (a NaN fails the child)."
    )
    beta_mode: BetaMode = Field(default="channel", description="'channel': one β per channel of each site; 'scalar'.")
    beta_init: float = Field(default=1.0, description="Initial value of every β.")
    precision: Precision = Field(
        default="auto", description=f"One of {_allowed(Precision)}; auto is bf16 autocast on CUDA, fp32 on CPU."
    )
    device: DeviceName = Field(
        default="auto",
        description=f"One of {_allowed(DeviceName)}; auto picks CUDA when present.",
    )
    compile: CompileMode = Field(
        default="auto",
        description=f"One of {_allowed(CompileMode)}: eager; compile (torch.compile); graph "
        "(compiled, and the whole step captured in a CUDA graph, CUDA only); eager_graph (the "
        "eager step captured in a CUDA graph: no compile time, no kernel fusion; CUDA only). auto: graph on "
        "CUDA, eager on CPU.",
    )
    log_every: int = Field(default=100, description="Log training loss and accuracy every this many steps.")
    eval_every: int = Field(default=0, description="Also log val_accuracy every this many steps; 0: only at the end.")
    checkpoint_every: int = Field(
        default=0, description="Save a resumable checkpoint to the run's artifacts every this many steps; 0: never."
    )
    save_weights: bool = Field(default=False, description="Store the final weights as an artifact.")
    plot: bool = Field(
        default=True, description="Log a plot of the learned function as an artifact (about a "
        "second of CPU per child); false for bulk builds such as accuracy tables.",
    )

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
    """One child to train: the activation and its fingerprint, the trial's identity, and the
    shared ``TrainConfig``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    expression: str = Field(
        description="Activation in canonical text form, e.g. 'sigmul(mul_beta(x), id(x))', or a "
        "built-in the grammar cannot express: 'builtin:lrelu', 'builtin:prelu', 'builtin:elu', "
        "'builtin:selu', 'builtin:gelu'."
    )
    search: str | None = Field(default=None, description="Search name; tag actsearch.search.")
    trial: str | None = Field(default=None, description="Trial id; tag actsearch.trial.")
    experiment: str = Field(
        default="actsearch-children",
        description="MLflow experiment of a run this child creates itself.",
    )
    run_id: str | None = Field(
        default=None, description="MLflow run to log into (pre-created by the controller); default: "
        "$MLFLOW_RUN_ID or --run-id, else a new run. Packed members each name their own."
    )
    child: TrainConfig = Field(default_factory=TrainConfig, description="How the child is trained.")
    fingerprint: str | None = Field(
        default=None, description="The function's fingerprint (tag actsearch.fingerprint), computed by "
        "the controller with `child.numerics`: the key of its dedup and cross-search cache, so "
        "the child records it as given. None (a spec written by hand, or before this field): the "
        "child computes it.",
    )

    @field_validator("expression")
    @classmethod
    def _parses(cls, v: str) -> str:
        try:
            return activation_text(parse_activation(v))
        except ParseError as e:
            raise ValueError(f"{clip_repr(v)} does not parse: {e}") from e

    @field_validator("fingerprint")
    @classmethod
    def _hex16(cls, v: str | None) -> str | None:
        if v is not None and (len(v) != 16 or any(c not in "0123456789abcdef" for c in v)):
            raise ValueError(f"fingerprint must be 16 lowercase hexadecimal digits; got {v!r}")
        return v

    def function_fingerprint(self) -> str:
        """The fingerprint the child records: the controller's when the spec carries one
        (never recomputed, so the controller's cache key and the run's tag cannot disagree),
        otherwise computed here with the child's numerics."""
        return self.fingerprint or activation_fingerprint(self.activation, self.child.numerics)

    @property
    def activation(self) -> ActivationRef:
        return parse_activation(self.expression)

    @property
    def expr(self) -> Expr:
        """The grammar expression; a built-in activation has none (ValueError)."""
        a = self.activation
        if not isinstance(a, Builtin):
            return a
        raise ValueError(f"{self.expression} is a built-in activation, not a grammar expression")


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


class ExitCode(IntEnum):
    """Process exit status of ``actsearch-train`` (1, an unexpected error, is Python's own).

    A Kubernetes Job's ``podFailurePolicy`` keys on these codes: ``FailJob`` on
    ``PERMANENT_EXIT_CODES`` (retrying a bad input, a diverging function or one that does not fit
    in the device's memory cannot help) and on 137 when the pod was not disrupted (the kernel's
    OOM killer), normal retries on 4 (an unreachable server or a dropped download may succeed on
    the next attempt) and on 143 (a SIGTERM: the child checkpointed and stopped, the next attempt
    resumes).
    """

    OK = 0
    """Training finished; the run is FINISHED and carries ``val_accuracy``."""
    BAD_INPUT = 2
    """Unparsable expression, invalid configuration or unusable data; no run was started."""
    NON_FINITE_LOSS = 3
    """The loss became NaN or infinite; the run is FAILED with tag ``actsearch.failure=nan``."""
    INFRASTRUCTURE = 4
    """MLflow, S3 or the data source could not be reached; retrying may succeed."""
    OUT_OF_MEMORY = 5
    """CUDA ran out of memory; the run is FAILED with tag ``actsearch.failure=oom``. The same
    function at the same batch size would again: not retried."""
    INTERRUPTED = 143
    """SIGTERM (a drain, a pre-emption, a deleted Job, a cancelled local child): the child
    finished its step, stored a checkpoint on its run and left the run RUNNING, so the next
    attempt attaches to it and resumes. 128 + 15, what a shell reports for a process ended by
    SIGTERM, so a child killed before it could answer reads the same. Retried; not 4, which
    says the infrastructure is broken (the failure brake counts 4, ``loop.brake``)."""


PERMANENT_EXIT_CODES: Final[tuple[int, ...]] = (
    int(ExitCode.BAD_INPUT), int(ExitCode.NON_FINITE_LOSS), int(ExitCode.OUT_OF_MEMORY))
"""Exit codes after which running the same child again cannot succeed."""


class Cause(Enum):
    """Why a child ended without a result, as its backend saw it: stored beside the trial's
    failure text (which stays the human message, and may be reworded), so that what reads the
    reason (the failure brake, the ``ChildrenCannotStart`` condition) never parses prose.

    The values are stored in checkpoints and never change; the Kubernetes ones are Kubernetes'
    own reasons. A child the trainer answered for (a run tagged ``nan``, ``oom``, ``error``) has
    no cause: its run says why.
    """

    IMAGE_PULL_BACK_OFF = "ImagePullBackOff"
    ERR_IMAGE_PULL = "ErrImagePull"
    INVALID_IMAGE_NAME = "InvalidImageName"
    CREATE_CONTAINER_CONFIG_ERROR = "CreateContainerConfigError"
    """A Secret or ConfigMap the child's container names is missing."""
    FAILED_CREATE = "FailedCreate"
    """The Job controller could not create the pod (a missing ServiceAccount, admission)."""
    QUOTA_EXCEEDED = "QuotaExceeded"
    """A ResourceQuota refused the pod for longer than ``max_pending_seconds``."""
    PENDING_TOO_LONG = "PendingTooLong"
    """The pod stayed Pending (unscheduled, or its containers not started) too long."""
    UNREACHABLE = "Unreachable"
    """Exit code 4 (``ExitCode.INFRASTRUCTURE``): MLflow, S3 or the data source unreachable."""
    OUT_OF_MEMORY = "OutOfMemory"
    """Exit code 5 (``ExitCode.OUT_OF_MEMORY``): CUDA out of memory."""
    OOM_KILLED = "OOMKilled"
    """Exit code 137: killed, most likely by the kernel's out-of-memory killer."""
    INTERRUPTED = "Interrupted"
    """Exit code 143 or SIGTERM (a drain, a pre-emption, a cancel), and not launched again."""
    EXITED = "Exited"
    """Any other exit code (the trial's ``exit_code``), 0 included when no result was logged."""
    DEADLINE_EXCEEDED = "DeadlineExceeded"
    """The Job ran longer than its ``activeDeadlineSeconds``."""
    LOST = "Lost"
    """The backend no longer knows the child (its host, or its Job, is gone)."""
    UNKNOWN = "Unknown"
    """The backend says the child failed, and nothing more."""


def exit_cause(code: int) -> Cause:
    """The cause of a child process that exited with ``code`` (negative: killed by a signal)."""
    return _EXIT_CAUSES.get(code, Cause.EXITED)


_EXIT_CAUSES: Final[dict[int, Cause]] = {
    int(ExitCode.INFRASTRUCTURE): Cause.UNREACHABLE,
    int(ExitCode.OUT_OF_MEMORY): Cause.OUT_OF_MEMORY,
    137: Cause.OOM_KILLED,  # 128 + SIGKILL, as the kubelet reports the OOM killer's
    int(ExitCode.INTERRUPTED): Cause.INTERRUPTED, -15: Cause.INTERRUPTED,  # -15: Popen's SIGTERM
}


def cause_named(value: object, field: str = "cause") -> Cause | None:
    """A stored cause read back (None stays None); ValueError naming ``field`` and the allowed
    values for anything else."""
    if value is None:
        return None
    try:
        return Cause(value)
    except ValueError:
        allowed = ", ".join(c.value for c in Cause)
        raise ValueError(f"{field} must be one of {allowed} (or null); got {value!r}") from None


REWARD: Final = "val_accuracy"
"""The reward, under one name everywhere: the metric a child logs, the leaderboard's sort key,
the parent run's per-trial series (step = trial index) and ``best_val_accuracy`` (best so far).
The per-generation ``gen_mean_reward``/``gen_max_reward`` differ on purpose: a failed trial counts
there as the strategy's ``failure_reward``."""


class Tag:
    """MLflow tag names, on a search's (or benchmark's) parent run and on its children's runs.

    Old runs are read by these names (the evaluation cache, ``actsearch-ctl top``, a resumed
    search), so a value never changes.
    """

    ROLE: Final = "actsearch.role"
    """What the run is: ``search``, ``trial``, ``benchmark``, ``cell`` or ``oneshot``."""
    SEARCH: Final = "actsearch.search"
    SEARCH_UID: Final = "actsearch.search_uid"
    """The search's uid (``orchestrator.identity``), on its parent and trial runs: the name
    alone is not unique (namespaces, users of one tracking server, a re-created object)."""
    NAMESPACE: Final = "actsearch.namespace"
    """The search's Kubernetes namespace, on its parent and trial runs (absent on one machine)."""
    TRUST: Final = "actsearch.trust"
    """On a trial the controller's own child trained: the controller's seal over its result
    (``orchestrator.trust``); the evaluation cache reuses only runs whose seal verifies."""
    TRIAL: Final = "actsearch.trial"
    BENCHMARK: Final = "actsearch.benchmark"
    CELL: Final = "actsearch.cell"
    FINGERPRINT: Final = "actsearch.fingerprint"
    CONFIG_HASH: Final = "actsearch.config_hash"
    EXPRESSION: Final = "actsearch.expression"
    MATH: Final = "actsearch.math"
    SOURCE: Final = "actsearch.source"
    """Where a trial's result came from: ``trained``, ``duplicate``, ``cache`` or ``screen``."""
    FAILURE: Final = "actsearch.failure"
    """Why the run failed: a failure text (``failure_text``)."""
    FAILURE_STEP: Final = "actsearch.failure_step"
    STOPPED_EARLY: Final = "actsearch.stopped_early"
    """On a trial the controller stopped early (``orchestrator.loop.stopping``): the last
    evaluation step its child reached; its reward is the validation accuracy there, not a
    complete result (never on a leaderboard, never reused by the evaluation cache)."""
    ERROR: Final = "actsearch.error"
    DATA_SHA256: Final = "actsearch.data_sha256"
    PACK_SIZE: Final = "actsearch.pack_size"
    MODE: Final = "actsearch.mode"
    CHECKPOINT_STEP: Final = "actsearch.checkpoint_step"
    RESUMED_FROM_STEP: Final = "actsearch.resumed_from_step"
    ACTIVATION: Final = "actsearch.activation"
    ROW: Final = "actsearch.row"
    MODEL: Final = "actsearch.model"
    DATASET: Final = "actsearch.dataset"
    SEED: Final = "actsearch.seed"
    ONESHOT_VARIANT: Final = "actsearch.oneshot_variant"
    RESULT_EXPRESSION: Final = "actsearch.result_expression"
    RESULT_MATH: Final = "actsearch.result_math"
    ONESHOT_OF: Final = "actsearch.oneshot_of"
    EVALUATION_RUN: Final = "actsearch.evaluation_run"
    TRIAL_INDEX: Final = "actsearch.trial_index"
    """A trial's place in its search (0, 1, ...): the x axis of the search's charts."""
    DUPLICATE_OF: Final = "actsearch.duplicate_of"
    """On a trial settled with another run's result (a duplicate or a cache hit): that run's id."""
    BEST_EXPRESSION: Final = "actsearch.best_expression"
    """On a finished search's parent run: the winner's canonical expression."""
    BEST_MATH: Final = "actsearch.best_math"
    BEST_VAL_ACCURACY: Final = "actsearch.best_val_accuracy"
    """On a finished search's parent run: the winner's validation accuracy (the reward)."""
    PARENT_RUN: Final = "mlflow.parentRunId"
    """MLflow's own: the parent run of a nested run."""
    RUN_NAME: Final = "mlflow.runName"
    """MLflow's own: the run's name (the runs table's first column)."""
    NOTE: Final = "mlflow.note.content"
    """MLflow's own: the run's description (Markdown, shown on the run's page)."""


class FailureKind(Enum):
    """Why a trial failed, as the first word(s) of its stored failure text.

    The text is what ``actsearch.failure`` and the ledger hold; ``failure_text`` writes it and
    ``failure_kind`` reads it back, so old runs and checkpoints classify the same way.
    """

    DIVERGED = "nan"
    """The training loss became NaN or infinite: retraining the same function cannot help."""
    OOM = "oom"
    """The child ran out of device memory: the function does not fit at this batch size here."""
    ERROR = "error"
    """The child raised an unexpected error (details in ``actsearch.error``)."""
    CRASHED = "crashed"
    """The child's process or pod ended without a result: says nothing about the function."""
    SCREENED = "screened"
    """Rejected by the search's numeric screen before training."""
    ENDED = "run ended"
    """The run ended (KILLED, FAILED) without saying why."""
    NO_REWARD = "finished without logging"
    """The run FINISHED without its reward metric."""
    OTHER = ""
    """Any text this version does not know (written by hand, or by a newer version)."""

    @property
    def permanent(self) -> bool:
        """Whether the failure belongs to the function and child config, so another search may
        reuse it like a reward. A screen verdict does not: it depends on the search's screen
        settings, which the config hash leaves out."""
        return self in PERMANENT_FAILURES


_SEPARATOR: Final[dict[FailureKind, str]] = {
    FailureKind.CRASHED: ": ", FailureKind.SCREENED: ": ",
    FailureKind.ENDED: " ", FailureKind.NO_REWARD: " ",
}
"""Kinds whose text carries a detail, and what joins it to the kind (the rest are one word)."""

PERMANENT_FAILURES: Final[frozenset[FailureKind]] = frozenset({FailureKind.DIVERGED})
"""Failures the evaluation cache reuses across searches, as it reuses rewards."""


def failure_text(kind: FailureKind, detail: str | None = None) -> str:
    """The stored text of a failure: ``nan``, ``error``, ``crashed: <reason>``, ``screened:
    <reason>``, ``run ended <status>``, ``finished without logging <metric>``; for OTHER, the
    detail itself."""
    if kind is FailureKind.OTHER:
        if not detail:
            raise ValueError("a failure of kind OTHER is its detail; give one")
        return detail
    sep = _SEPARATOR.get(kind)
    if sep is None:
        if detail is not None:
            raise ValueError(f"a {kind.name} failure carries no detail; got {detail!r}")
        return str(kind.value)
    return f"{kind.value}{sep}{detail}"


def failure_kind(text: str) -> FailureKind:
    """The kind of a stored failure text (``failure_text``'s inverse on the kind)."""
    for kind in FailureKind:
        if kind is FailureKind.OTHER:
            continue
        sep = _SEPARATOR.get(kind)
        if text == kind.value if sep is None else text.startswith(kind.value + sep):
            return kind
    return FailureKind.OTHER


def reusable_result(status: str, reward: float | None, failure: str | None) -> bool:
    """Whether a finished trial run's outcome stands for its function and child config: a
    reward, or a permanent failure. The evaluation cache reuses only these."""
    if status == "FINISHED":
        return reward is not None
    return status == "FAILED" and failure is not None and failure_kind(failure).permanent
