"""The administrator's policy for children: what a search on a shared cluster may ask for.

Whoever may create an ActivationSearch makes the operator create pods and send requests. Left
unbounded, that is any image, run with any Secret of the namespace in its environment, under any
ServiceAccount, at ``system-node-critical`` priority, on every GPU of a node, and requests to any
URL from the controller's pod. The policy (the chart's ``policy`` values, rendered into the
operator's ``--policy`` file) bounds each of these, and ``check`` compares a search's spec (over
the operator's defaults) with it, naming every field outside it and the rule, so the operator
fails the search before any Job exists or any endpoint is contacted.

What the operator gives children itself (``Given``: its defaults file's trainer image,
ServiceAccount, credentials Secret, priority class, tolerations and node selector, and its own
tracking server, storage prefix and S3 endpoint) is always within the policy; the policy's lists
add to it. So the defaults are strict: with an empty policy a search can only lower what it asks
for. Images, URIs and names are compared as text (no registry or DNS is asked what they mean).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from orchestrator.echo import clip, clip_repr
from orchestrator.errors import ConfigError
from orchestrator.spec import (
    QUANTITY_PATTERN,
    KubernetesBackendSpec,
    Quantity,
    SearchSpec,
    Toleration,
)
from orchestrator.validation import read_yaml, validate

GPU = "nvidia.com/gpu"
DEFAULT_MAX_RESOURCES: Mapping[str, str] = {
    "cpu": "16", "memory": "128Gi", "ephemeral-storage": "100Gi", GPU: "8"}
"""Per child (per Job: a pack shares one): one node's worth of a common 8-GPU machine."""


class ChildPolicy(BaseModel):
    """The policy file (camelCase keys, as in the chart's ``policy`` values). Lists name what a
    search may use besides what the operator gives children itself."""

    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel,
                              populate_by_name=False, allow_inf_nan=False)

    images: list[str] = Field(
        default_factory=list, description="Trainer images a search may name: `repo:tag` or "
        "`repo@digest` exactly, `repo` with any tag or digest, or a prefix ending in `/` "
        "(a registry or a folder of it).")
    secrets: list[str] = Field(default_factory=list, description="Secrets a search may name "
                               "as backend.kubernetes.credentials_secret.")
    priority_classes: list[str] = Field(default_factory=list,
                                        description="PriorityClasses a search may name.")
    tolerations: list[Toleration] = Field(default_factory=list,
                                          description="Tolerations a search may add, each as a whole.")
    node_selectors: dict[str, list[str]] = Field(
        default_factory=dict, description="Node labels a search may select on: label -> values.")
    max_resources: dict[str, Quantity] = Field(
        default_factory=lambda: dict(DEFAULT_MAX_RESOURCES),
        description="Resources a child may ask for (requests and limits), each up to this "
        f"amount; `gpus` counts as {GPU}.")
    max_backoff_limit: int = Field(6, ge=0, description="Highest backoff_limit of a child Job.")
    max_parallelism: int = Field(64, ge=1, description="Highest parallelism (Jobs at once).")
    max_trials: int = Field(10_000, ge=1, description="Highest budget.trials (children in all).")
    tracking_uris: list[str] = Field(default_factory=list,
                                     description="MLflow servers a search may name in tracking.uri.")
    storage_uris: list[str] = Field(
        default_factory=list, description="s3://bucket[/prefix] under which a search's "
        "storage.uri may lie.")
    s3_endpoints: list[str] = Field(default_factory=list,
                                    description="S3 endpoints a search may name in storage.endpoint_url.")

    @field_validator("images", "secrets", "priority_classes")
    @classmethod
    def _names(cls, v: list[str]) -> list[str]:
        bad = [x for x in v if not x or any(c.isspace() for c in x)]
        if bad:
            raise ValueError(f"names are non-empty and hold no spaces; got {clip_repr(bad[0])}")
        return v

    @field_validator("tracking_uris", "s3_endpoints")
    @classmethod
    def _endpoints(cls, v: list[str]) -> list[str]:
        for uri in v:
            if endpoint(uri) is None:
                raise ValueError(f"an entry is a URI with a scheme and a host; got {clip_repr(uri)}")
        return v

    @field_validator("storage_uris")
    @classmethod
    def _storage(cls, v: list[str]) -> list[str]:
        for uri in v:
            if s3_path(uri) is None:
                raise ValueError(f"an entry looks like s3://bucket[/prefix]; got {clip_repr(uri)}")
        return v


@dataclass(frozen=True)
class Given:
    """What the operator gives children itself, always within its policy."""

    kubernetes: KubernetesBackendSpec = field(default_factory=KubernetesBackendSpec)
    tracking_uri: str | None = None
    storage_uri: str | None = None
    s3_endpoint: str | None = None

    @classmethod
    def of(cls, spec_defaults: Mapping[str, Any], tracking_uri: str | None = None,
           storage_uri: str | None = None, s3_endpoint: str | None = None) -> Given:
        """From the operator's defaults file (a spec fragment) and its own endpoints;
        ConfigError when its ``backend.kubernetes`` is not valid."""
        k8s = (spec_defaults.get("backend") or {}).get("kubernetes") or {}
        return cls(validate(KubernetesBackendSpec, dict(k8s), "the operator's defaults",
                            "backend.kubernetes section"), tracking_uri, storage_uri, s3_endpoint)


@dataclass(frozen=True)
class Violation:
    """One field of a search outside the policy, and the rule it breaks."""

    field: str
    rule: str

    def __str__(self) -> str:
        return f"{self.field}: {self.rule}"


class PolicyViolation(ConfigError):
    """A search asks for more than the cluster's policy allows; nothing was created."""

    def __init__(self, subject: str, violations: Sequence[Violation]) -> None:
        self.violations = tuple(violations)
        super().__init__(f"{subject} is outside the cluster's policy for searches:\n"
                         + "\n".join(str(v) for v in self.violations))


def load_policy(path: str | Path) -> ChildPolicy:
    """The policy file, read strictly (UTF-8, no key given twice); ConfigError naming each bad
    field. An empty file is the default policy."""
    return validate(ChildPolicy, read_yaml(path) or {}, f"--policy {path}", "policy")


def enforce(policy: ChildPolicy, spec: SearchSpec, given: Given, subject: str) -> None:
    """PolicyViolation listing every field of ``spec`` outside ``policy``."""
    found = check(policy, spec, given)
    if found:
        raise PolicyViolation(subject, found)


def check(policy: ChildPolicy, spec: SearchSpec, given: Given = Given()) -> list[Violation]:
    """Every field of ``spec`` (merged over the operator's defaults) outside ``policy``."""
    k = spec.backend.kubernetes
    out: list[Violation] = []
    at = "backend.kubernetes."
    images = [given.kubernetes.image, *policy.images]
    if not any(image_allowed(k.image, entry) for entry in images):
        out.append(Violation(at + "image", f"{clip_repr(k.image)} is not an allowed image; "
                             f"allowed: {_listing(images)} (policy.images)"))
    if k.service_account != given.kubernetes.service_account:
        runs_as = (f"children run as the ServiceAccount {given.kubernetes.service_account!r}"
                   if given.kubernetes.service_account else
                   "children run as the namespace's default ServiceAccount")
        out.append(Violation(at + "service_account", f"{runs_as}, set by the operator; a "
                             f"search may not choose another; got {clip_repr(k.service_account)}"))
    for name in secret_fields():  # every Secret a Job may take from the spec, by name
        secret, secrets = getattr(k, name), _with(getattr(given.kubernetes, name), policy.secrets)
        if secret is not None and secret not in secrets:
            out.append(Violation(at + name, f"Secret {clip_repr(secret)} may not be referenced; "
                                 f"allowed: {_listing(secrets)} (policy.secrets)"))
    classes = _with(given.kubernetes.priority_class, policy.priority_classes)
    if k.priority_class is not None and k.priority_class not in classes:
        out.append(Violation(at + "priority_class", f"{clip_repr(k.priority_class)} is not an "
                             f"allowed PriorityClass; allowed: {_listing(classes)} "
                             "(policy.priorityClasses), or none for the cluster's default"))
    allowed = [_toleration(t) for t in (*given.kubernetes.tolerations, *policy.tolerations)]
    for i, t in enumerate(k.tolerations):
        if _toleration(t) not in allowed:
            out.append(Violation(f"{at}tolerations[{i}]", f"{clip(str(_toleration(t)))} is not an "
                                 f"allowed toleration; allowed: {_listing(allowed)} "
                                 "(policy.tolerations)"))
    if given.kubernetes.queue_name and not k.queue_name:
        out.append(Violation(at + "queue_name", f"children go through a Kueue LocalQueue (the "
                             f"operator's is {given.kubernetes.queue_name!r}); a search may "
                             "name another of its namespace, not none"))
    selectors = {key: set(values) for key, values in policy.node_selectors.items()}
    for key, value in given.kubernetes.node_selector.items():
        selectors.setdefault(key, set()).add(value)
    for key, value in k.node_selector.items():
        if value not in selectors.get(key, set()):
            allowed_here = sorted(f"{x}={v}" for x in selectors for v in sorted(selectors[x]))
            out.append(Violation(f"{at}node_selector.{clip(key, 60)}", f"node label "
                                 f"{clip(f'{key}={value}')} is not allowed; allowed: "
                                 f"{_listing(allowed_here)} (policy.nodeSelectors)"))
    out += _resources(policy, k)
    out += _at_most("backend.kubernetes.backoff_limit", k.backoff_limit,
                    policy.max_backoff_limit, "policy.maxBackoffLimit")
    out += _at_most("parallelism", spec.parallelism, policy.max_parallelism, "policy.maxParallelism")
    out += _at_most("budget.trials", spec.budget.trials, policy.max_trials, "policy.maxTrials")
    out += _endpoints(policy, spec, given)
    return out


# -- the rules, one by one ------------------------------------------------------------------------


def secret_fields() -> list[str]:
    """The fields of ``backend.kubernetes`` that name a Secret (``*_secret``): each puts that
    Secret's keys into the children's environment, so each is held to ``policy.secrets``."""
    return [n for n in KubernetesBackendSpec.model_fields if n.endswith("_secret")]



def image_allowed(image: str, entry: str) -> bool:
    """Whether ``entry`` of ``policy.images`` allows ``image``: the same reference, its
    repository (then any tag or digest: ``entry:`` or ``entry@`` follows), or a prefix ending in
    ``/``. A repository entry never matches a longer name (``ghcr.io/a/trainer`` does not allow
    ``ghcr.io/a/trainer-evil``)."""
    if image == entry:
        return True
    if entry.endswith("/"):
        return image.startswith(entry) and ".." not in image[len(entry):].split("/")
    return image.startswith((entry + ":", entry + "@")) and "/" not in image[len(entry):]


def _toleration(t: Toleration) -> dict[str, Any]:
    """A toleration as Kubernetes compares it (``operator`` defaults to ``Equal``)."""
    return {"operator": "Equal", **t.model_dump(exclude_none=True)}


_SUFFIX: dict[str, Decimal | int] = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
           "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": 1,
           "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}


def quantity(text: str) -> Decimal:
    """A Kubernetes resource quantity as a number (``500m`` is 0.5, ``16Gi`` 17179869184)."""
    m = re.match(QUANTITY_PATTERN, text)
    if m is None:
        raise ValueError(f"not a Kubernetes quantity: {clip_repr(text)}")
    number, suffix = Decimal(m.group(1)), m.group(3) or ""
    if suffix[:1] in ("e", "E") and len(suffix) > 1:
        return number.scaleb(int(suffix[1:]))
    return number * _SUFFIX[suffix]


def _resources(policy: ChildPolicy, k: KubernetesBackendSpec) -> list[Violation]:
    out: list[Violation] = []
    limits = policy.max_resources
    asked: list[tuple[str, str, str]] = [("backend.kubernetes.gpus", GPU, str(k.gpus))] if k.gpus else []
    for kind, values in (("requests", k.resources.requests), ("limits", k.resources.limits)):
        asked += [(f"backend.kubernetes.resources.{kind}.{clip(name, 60)}", name, q)
                  for name, q in values.items()]
    for where, name, q in asked:
        if name not in limits:
            out.append(Violation(where, f"{clip_repr(name)} is not a resource a child may ask "
                                 f"for; allowed: {_listing(sorted(limits))} (policy.maxResources)"))
        elif quantity(q) > quantity(limits[name]):
            out.append(Violation(where, f"{clip(q)} is more than the {limits[name]} a child may "
                                 f"ask for (policy.maxResources.{name})"))
    return out


def _at_most(where: str, value: int, maximum: int, rule: str) -> list[Violation]:
    return [Violation(where, f"{value} is more than the {maximum} allowed ({rule})")] \
        if value > maximum else []


def endpoint(uri: str) -> tuple[str, str, int | None, str] | None:
    """(scheme, host, port, path) of a URI as a server is reached, or None when it names no
    host. Credentials in it are ignored: they do not change where a request goes."""
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return None
    if not parts.scheme or not parts.hostname or any(c.isspace() for c in uri):
        return None
    scheme = parts.scheme.lower()
    port = port or {"http": 80, "https": 443}.get(scheme)
    return scheme, parts.hostname.lower(), port, parts.path.rstrip("/")


def s3_path(uri: str) -> tuple[str, ...] | None:
    """``s3://bucket/a/b`` as ``("bucket", "a", "b")``; None for anything else, or a path with
    an empty, ``.`` or ``..`` segment."""
    if not uri.startswith("s3://"):
        return None
    parts = tuple(uri.removeprefix("s3://").rstrip("/").split("/"))
    if not parts[0] or any(p in ("", ".", "..") for p in parts):
        return None
    return parts


def _endpoints(policy: ChildPolicy, spec: SearchSpec, given: Given) -> list[Violation]:
    out: list[Violation] = []
    if spec.tracking.uri is not None:
        tracking = _with(given.tracking_uri, policy.tracking_uris)
        if endpoint(spec.tracking.uri) not in _reached(tracking):
            out.append(Violation("tracking.uri", f"{clip_repr(spec.tracking.uri)} is not an "
                                 f"allowed tracking server; allowed: {_listing(tracking)} "
                                 "(policy.trackingUris), or leave it out for the operator's"))
    if spec.storage.uri is not None:
        roots = _with(given.storage_uri, policy.storage_uris)
        path = s3_path(spec.storage.uri)
        if path is None or not any(path[:len(r)] == r for r in map(s3_path, roots) if r):
            out.append(Violation("storage.uri", f"{clip_repr(spec.storage.uri)} is not under an "
                                 f"allowed storage prefix; allowed: {_listing(roots)} "
                                 "(policy.storageUris), or leave it out for the operator's"))
    if spec.storage.endpoint_url is not None:
        endpoints = _with(given.s3_endpoint, policy.s3_endpoints)
        if endpoint(spec.storage.endpoint_url) not in _reached(endpoints):
            out.append(Violation("storage.endpoint_url", f"{clip_repr(spec.storage.endpoint_url)}"
                                 f" is not an allowed S3 endpoint; allowed: {_listing(endpoints)} "
                                 "(policy.s3Endpoints), or leave it out for the operator's"))
    return out


def _reached(uris: Iterable[str]) -> set[tuple[str, str, int | None, str]]:
    return {e for e in map(endpoint, uris) if e is not None}


def _with(own: str | None, listed: Iterable[str]) -> list[str]:
    return ([own] if own else []) + [x for x in listed if x != own]


def _listing(values: Sequence[Any]) -> str:
    """Allowed values for a message: a few, then how many more."""
    if not values:
        return "none"
    shown = ", ".join(str(v) for v in values[:5])
    more = f" and {len(values) - 5} more" if len(values) > 5 else ""
    return clip(shown, 300) + more
