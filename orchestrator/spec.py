"""The search spec: one typed model used by the CLI, the CRD schema and the operator.

Loaded from YAML (``load_spec``) or from an ActivationSearch object's ``spec``; validated once,
frozen afterwards. Every error names the field (``budget.trials``) and what is allowed, and a
malformed spec fails before anything is created.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from orchestrator.contract import MAX_PACK, TrainConfig
from orchestrator.echo import clip_repr
from orchestrator.errors import ConfigError
from orchestrator.search.registry import STRATEGY_NAMES, check_options
from orchestrator.search.stopping import AshaRule, MedianRule, Rule
from orchestrator.space import BINARY_NAMES, UNARY_NAMES, SearchSpace, SpaceError
from orchestrator.space.screen import ScreenConfig
from orchestrator.validation import read_yaml, validate

NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
MAX_NAME = 40  # leaves room for "-t00000" and a hash in Job names (63 characters)

# Upper bounds of the sizes a spec asks for: far above any real search, low enough that no
# spec makes the controller allocate gigabytes or launch without end (docs/spec.md).
MAX_TRIALS = 100_000
"""budget.trials: trial ids have five digits (``<name>-t00000``)."""
MAX_SAMPLES = 2_000_000
"""budget.max_samples: 20 × MAX_TRIALS, the default ratio."""
MAX_GENERATION = 10_000
"""generation: candidates proposed at a time (the strategy samples them in one batch)."""
MAX_PARALLELISM = 1_024
"""parallelism: child processes or Jobs training at once."""
MAX_SCREEN_DOMAIN = 1e3
"""screen.domain: beyond this almost every function overflows and is screened out."""


def check_name(v: str) -> str:
    """A search or benchmark name: it becomes part of trial ids, Job names and labels."""
    if len(v) > MAX_NAME or not re.match(NAME_PATTERN, v):
        raise ValueError(
            f"must be lowercase letters, digits and '-', start and end alphanumeric, at "
            f"most {MAX_NAME} characters; got {v!r}"
        )
    return v


class _Model(BaseModel):
    # no float of a spec may be NaN or infinite (``.inf`` in YAML): each is a size or a limit
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class SpaceSpec(_Model):
    """The functions searched over."""

    units: int = Field(1, ge=1, le=6, description="Core units per function (1–6).")
    unary: list[str] = Field(
        default_factory=lambda: list(UNARY_NAMES),
        description="Unary ops to search over (default: all 25); see docs/space.md.",
    )
    binary: list[str] = Field(
        default_factory=lambda: list(BINARY_NAMES),
        description="Binary ops to search over (default: all 10); see docs/space.md.",
    )

    @model_validator(mode="after")
    def _valid(self) -> SpaceSpec:
        try:
            self.build()
        except SpaceError as e:
            raise ValueError(str(e).removeprefix("space.")) from e
        return self

    def build(self) -> SearchSpace:
        return SearchSpace(units=self.units, unary=tuple(self.unary), binary=tuple(self.binary))


class StrategySpec(_Model):
    name: Literal["ppo", "reinforce", "random", "exhaustive", "evolution"] = Field(
        "ppo", description=f"Search strategy; one of {', '.join(STRATEGY_NAMES)}."
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="Strategy options (docs/search.md), e.g. {lr: 0.001, batch_size: 20}.",
    )
    failure_reward: float = Field(
        0.0, description="Reward of a failed child (NaN loss, screened out, crashed)."
    )

    @field_validator("options")
    @classmethod
    def _no_failure_reward(cls, v: dict[str, Any]) -> dict[str, Any]:
        if "failure_reward" in v:
            raise ValueError("set strategy.failure_reward, not strategy.options.failure_reward")
        return v

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``make_strategy`` (and ``check_options``)."""
        return {**self.options, "failure_reward": self.failure_reward}


class BudgetSpec(_Model):
    trials: int = Field(100, ge=1, le=MAX_TRIALS,
                        description="Children trained (cache hits do not count).")
    max_samples: int | None = Field(
        None, ge=1, le=MAX_SAMPLES,
        description="Candidates proposed in all, duplicates and screened-out ones included "
        "(default: 20 × trials): stops a search whose policy keeps proposing known functions.",
    )
    gpu_hours: float | None = Field(
        None, gt=0, description="Stop launching once children have used this many GPU-hours "
        "(counted from each child's start: a Job waiting for a node costs nothing)."
    )
    max_failed: int | None = Field(
        None, ge=1,
        description="Stop the search (failed, with the reason) once this many trained children "
        "failed for a reason other than a diverged loss, which is the function's own verdict "
        "(Katib's maxFailedTrialCount); default: no limit.",
    )
    stop_after_infrastructure_failures: int = Field(
        5, ge=0,
        description="Stop the search (failed, with the reason) when this many trained children "
        "in a row, since the search (re)started, failed for the same infrastructure reason: "
        "MLflow, S3 or the data unreachable (exit code 4), an image that cannot be pulled, a "
        "missing Secret or ConfigMap (CreateContainerConfigError), a pod that cannot be "
        "created (FailedCreate); 0 never stops.",
    )

    @property
    def samples(self) -> int:
        return self.max_samples or 20 * self.trials


class ScreenSpec(_Model):
    """Numeric screen applied before training (docs/space.md)."""

    enabled: bool = True
    domain: float = Field(5.0, gt=0, le=MAX_SCREEN_DOMAIN,
                          description="Functions are checked on [-domain, domain].")
    max_abs_value: float = Field(1e3, gt=0)
    max_abs_grad: float = Field(1e3, gt=0)

    def config(self) -> ScreenConfig:
        return ScreenConfig(domain=self.domain, max_abs_value=self.max_abs_value,
                            max_abs_grad=self.max_abs_grad)


class EarlyStoppingSpec(_Model):
    """Stopping children that will not be promoted (docs/search.md, "Early stopping of children"):
    every child reports validation accuracy every ``child.eval_every`` steps, and on each poll
    the controller asks the rule about the children in flight (``orchestrator.search.stopping``)."""

    rule: Literal["median", "asha"] = Field(
        description="'median': Katib's median stopping rule; 'asha': asynchronous successive "
        "halving as a stopping rule (a child it lets through trains on).")
    min_trials: int = Field(
        3, ge=1, description="median: trials completed before it stops anything; asha: values "
        "at a rung before it stops anything there.")
    min_step: int = Field(
        0, ge=0, description="No child is stopped before this many steps (Katib's start_step; "
        "ASHA's first rung is the first evaluation step from here).")
    eta: int | None = Field(
        None, ge=2, description="asha only: a child goes on from a rung when among the top "
        "1/eta of the values recorded there (default 3).")

    @model_validator(mode="after")
    def _eta(self) -> EarlyStoppingSpec:
        if self.eta is not None and self.rule != "asha":
            raise ValueError(f"eta is an option of rule 'asha' only; rule is {self.rule!r}")
        return self

    def make(self) -> Rule:
        """The rule these options describe."""
        if self.rule == "median":
            return MedianRule(min_trials=self.min_trials, start_step=self.min_step)
        return AshaRule(eta=self.eta or 3, min_step=self.min_step, min_trials=self.min_trials)


def evaluation_steps(child: TrainConfig) -> tuple[int, ...]:
    """The steps at which a child reports validation accuracy: every ``eval_every`` steps, and
    its last step (the final evaluation); only the last when ``eval_every`` is 0."""
    every = child.eval_every
    inner = range(every, child.steps, every) if every > 0 else range(0)
    return (*inner, child.steps)


TRACKING_SCHEMES = ("http", "https", "sqlite", "postgresql", "mysql", "mssql", "file",
                    "databricks")
"""URI schemes of MLflow tracking stores (a database's may name its driver: postgresql+psycopg2)."""


class TrackingSpec(_Model):
    uri: str | None = Field(
        None, description="MLflow tracking URI; default: a local SQLite file in the work dir."
    )
    experiment: str = Field("actsearch", min_length=1, description="MLflow experiment.")

    @field_validator("uri")
    @classmethod
    def _uri(cls, v: str | None) -> str | None:
        if v is None:
            return v
        try:
            parts = urlsplit(v)
            parts.port  # noqa: B018 - raises ValueError on a port that is not a number
        except ValueError:
            parts = None
        scheme = parts.scheme.split("+")[0] if parts else ""
        if (parts is None or scheme not in TRACKING_SCHEMES or any(c.isspace() for c in v)
                or (scheme in ("http", "https") and not parts.hostname)):
            raise ValueError(
                "must be an MLflow tracking URI: http(s)://host[:port][/path], sqlite:///path, "
                f"or a {'/'.join(s for s in TRACKING_SCHEMES if s not in ('http', 'https', 'sqlite'))}"
                f" URI; got {clip_repr(v)}")
        return v


class StorageSpec(_Model):
    uri: str | None = Field(
        None, description="Where controller checkpoints go: s3://bucket/prefix or a directory; "
        "default: the work dir.",
    )
    endpoint_url: str | None = Field(
        None, description="S3-compatible endpoint (MinIO); default: AWS or MLFLOW_S3_ENDPOINT_URL."
    )

    @field_validator("uri")
    @classmethod
    def _uri(cls, v: str | None) -> str | None:
        if v is not None and v.startswith("s3://") and not re.match(r"^s3://[^/]+", v):
            raise ValueError(f"must look like s3://bucket/prefix; got {v!r}")
        return v


class LocalBackendSpec(_Model):
    workdir: str = Field(".actsearch", description="Runs, logs and checkpoints of local searches.")
    gpus: list[int] | None = Field(
        None, description="GPU indices to spread children over (CUDA_VISIBLE_DEVICES); "
        "default: every visible GPU, or none.",
    )


class Toleration(_Model):
    key: str | None = None
    operator: Literal["Exists", "Equal"] | None = None
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    tolerationSeconds: int | None = None


QUANTITY_PATTERN = r"^\+?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+|[KMGTPE]i|[numkMGTPE])?$"
"""A Kubernetes resource quantity (``500m``, ``16Gi``, ``2``): the API server refuses a Job
with anything else (``16GB``), so a spec does too, naming the field."""
Quantity = Annotated[str, Field(pattern=QUANTITY_PATTERN)]


class Resources(_Model):
    requests: dict[str, Quantity] = Field(default_factory=dict)
    limits: dict[str, Quantity] = Field(default_factory=dict)


class KubernetesBackendSpec(_Model):
    namespace: str | None = Field(None, description="Namespace of child Jobs (default: the search's).")
    image: str = Field("ghcr.io/actsearch/trainer:0.1.0", description="Trainer image.")
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    gpus: int = Field(1, ge=0, description="nvidia.com/gpu per child.")
    resources: Resources = Field(default_factory=Resources, description="Child container resources.")
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[Toleration] = Field(default_factory=list)
    priority_class: str | None = None
    service_account: str | None = Field(None, description="Children's ServiceAccount.")
    credentials_secret: str | None = Field(
        None, description="Existing Secret with AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY for "
        "children that read a data set from s3:// (a read-only credential: children log "
        "artifacts through the MLflow server and need none for that)."
    )
    tracking_secret: str | None = Field(
        None, description="Existing Secret with MLFLOW_TRACKING_USERNAME / "
        "MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN) for children of an MLflow server "
        "that asks for them; a tracking URI with user:password@ is refused for Jobs."
    )
    backoff_limit: int = Field(2, ge=0, description="Retries of a child after infrastructure failures.")
    active_deadline_seconds: int | None = Field(
        None, ge=1, description="Hard time limit of a child; default: 1800 s plus 1 s per "
        "training step (of every member, for a pack).")
    max_pending_seconds: int | None = Field(
        1800, ge=1, description="A child whose pod stays Pending (unschedulable, or waiting "
        "for room under a ResourceQuota) longer than this fails and its Job is deleted; null "
        "waits for ever. A Job held by Kueue is suspended, not Pending, and is not limited.")
    ttl_seconds_after_finished: int = Field(3600, ge=0, description="Finished Jobs are deleted after this.")
    queue_name: str | None = Field(None, description="Kueue LocalQueue (label kueue.x-k8s.io/queue-name).")


class BackendSpec(_Model):
    kind: Literal["local", "kubernetes"] = "local"
    local: LocalBackendSpec = Field(default_factory=LocalBackendSpec)
    kubernetes: KubernetesBackendSpec = Field(default_factory=KubernetesBackendSpec)


def check_backend(declared: str | None, here: Literal["local", "kubernetes"], subject: str) -> None:
    """Refuse a spec whose children would run elsewhere than where it is run: ``actsearch-ctl
    run`` trains them as local processes, a cluster (``submit``, the operator) as Jobs.
    ``declared`` is the spec's own ``backend.kind``; left out, it means where it is run."""
    if (declared or here) == here:
        return
    if here == "kubernetes":
        raise ConfigError(
            f"{subject}: backend.kind is 'local', which runs children as processes on the "
            "machine of `actsearch-ctl run`; a search in a cluster runs them as Jobs: set "
            "backend.kind to 'kubernetes' (or leave it out)")
    raise ConfigError(
        f"{subject}: backend.kind is {declared!r}: submit this spec to a cluster with "
        "`actsearch-ctl submit`; `actsearch-ctl run` runs backend.kind 'local'")


class SearchSpec(_Model):
    """One activation-function search."""

    name: str = Field(
        description="Search name: lowercase letters, digits and '-', at most 40 characters; "
        "trial ids and Job names derive from it."
    )
    space: SpaceSpec = Field(default_factory=SpaceSpec)
    strategy: StrategySpec = Field(default_factory=StrategySpec)
    budget: BudgetSpec = Field(default_factory=BudgetSpec)
    parallelism: int = Field(
        1, ge=1, le=MAX_PARALLELISM, description="Child processes (local) or Jobs (Kubernetes) training at once, "
        "about the GPUs in use; each carries up to `packing` children.",
    )
    packing: int = Field(
        1, ge=1, le=MAX_PACK,
        description=f"Children trained together in one process/Job on one device (1–{MAX_PACK}), "
        "side by side with one MLflow run each; 1 trains each child alone.",
    )
    generation: int = Field(
        20, ge=1, le=MAX_GENERATION, description="Candidates proposed at a time (PPO: the children per update)."
    )
    seed: int = Field(0, ge=0, description="Seed of the strategy.")
    child: TrainConfig = Field(default_factory=TrainConfig, description="How each child trains.")
    screen: ScreenSpec = Field(default_factory=ScreenSpec)
    tracking: TrackingSpec = Field(default_factory=TrackingSpec)
    storage: StorageSpec = Field(default_factory=StorageSpec)
    backend: BackendSpec = Field(default_factory=BackendSpec)
    early_stopping: EarlyStoppingSpec | None = Field(
        None, description="Stop children early by a rule on their validation accuracy every "
        "child.eval_every steps (docs/search.md); default: every child trains to the end.")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_name(v)

    @model_validator(mode="after")
    def _strategy_options(self) -> SearchSpec:
        try:  # names, types and ranges of the options, without building the strategy
            check_options(self.strategy.name, self.seed, **self.strategy.kwargs())
        except (ValueError, TypeError) as e:
            raise ValueError(f"strategy.options: {e}") from e
        return self

    @model_validator(mode="after")
    def _early_stopping(self) -> SearchSpec:
        es, child = self.early_stopping, self.child
        if es is None:
            return self
        if not 0 < child.eval_every < child.steps:
            raise ValueError(
                "early_stopping needs child.eval_every between 1 and child.steps - 1 "
                f"({child.steps - 1}): the rule compares children's validation accuracy at "
                f"every eval_every steps; got child.eval_every {child.eval_every}")
        if es.min_step >= child.steps:
            raise ValueError(f"early_stopping.min_step must be below child.steps "
                             f"({child.steps}), or no child is ever stopped; got {es.min_step}")
        return self


def parse_spec(data: Any, source: str = "spec") -> SearchSpec:
    return validate(SearchSpec, data, source, "search spec")


def load_spec(path: str | Path) -> SearchSpec:
    """Read and validate a YAML spec file."""
    return parse_spec(read_yaml(path), str(path))
