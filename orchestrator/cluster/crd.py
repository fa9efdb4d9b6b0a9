"""The ActivationSearch CustomResourceDefinition, generated from the spec model.

The CRD's ``.spec`` schema is ``SearchSpec``'s JSON schema minus ``name`` (which comes from
``metadata.name``), rewritten into the *structural* OpenAPI v3 dialect the API server accepts:
``$ref``s inlined, ``X | None`` as ``nullable: true``, free-form maps kept open with
``x-kubernetes-preserve-unknown-fields``. Generating it means the API server and the operator
never disagree about what a search looks like; ``python -m orchestrator.cluster.crd`` writes the YAML
that the chart ships (``make crds``) and a test checks the committed copy is current.

``validate_cr`` checks an ActivationSearch object the way the API server would (schema only: the
model's cross-field rules still run when the operator parses the spec).
"""

from __future__ import annotations

import copy
import sys
from typing import Any, Final, Literal

import jsonschema
import yaml
from pydantic import BaseModel, ConfigDict, Field

from orchestrator.backends.kubernetes import GROUP, KIND, PLURAL, VERSION
from orchestrator.spec import MAX_NAME, NAME_PATTERN, SearchSpec

SINGULAR: Final = KIND.lower()
SHORT_NAMES: Final = ["asearch"]
CATEGORIES: Final = ["actsearch"]
CRD_NAME: Final = f"{PLURAL}.{GROUP}"

OPERATOR_SECTIONS: Final[tuple[str, ...]] = ("tracking", "storage", "backend")
"""Sections of ``.spec`` where the CRD declares no ``default:``: the operator's defaults file
(the chart's ``children`` and ``tracking`` values) fills them. The API server writes a CRD
default into every stored object, where it is indistinguishable from what the user wrote, so a
CRD default there would always beat the operator's (a private registry's trainer image, the
team's experiment). The operator parses each spec with the model, whose defaults still apply
last, as for ``actsearch-ctl run``."""

CLUSTER_DEFAULTS: Final[dict[tuple[str, ...], Any]] = {("backend", "kind"): "kubernetes"}
"""Where the CRD's default differs from the model's: a search submitted to a cluster runs its
children as Jobs there, while ``actsearch-ctl run`` (the model's default) runs them locally. The
API server writes defaults into the stored object, so without this every CR would say ``local``."""

# JSON-schema keywords carried over unchanged; anything else in the model's schema is an error,
# so a model change the API server cannot express fails here instead of at `kubectl apply`.
_KEPT: Final = frozenset({
    "type", "description", "enum", "minimum", "maximum", "minLength", "maxLength", "pattern",
    "minItems", "maxItems", "format", "required",
})
_DROPPED: Final = frozenset({"title"})
_ORDER: Final = (
    "type", "nullable", "format", "description", "enum", "default", "minimum", "exclusiveMinimum",
    "maximum", "exclusiveMaximum", "minLength", "maxLength", "pattern", "minItems", "maxItems",
    "x-kubernetes-preserve-unknown-fields", "required", "items", "additionalProperties", "properties",
)


class Condition(BaseModel):
    """A standard Kubernetes condition, shaped like metav1.Condition."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(description="Condition type, e.g. Ready or BudgetExhausted.")
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str | None = Field(None, description="CamelCase reason for the last transition.")
    message: str | None = Field(None, description="Human-readable details.")
    lastTransitionTime: str | None = Field(
        None, description="When the status last changed (RFC 3339).", json_schema_extra={"format": "date-time"}
    )
    observedGeneration: int | None = Field(None, ge=0, description="metadata.generation it describes.")


class BestTrial(BaseModel):
    """The leading trial so far (Katib's currentOptimalTrial): what `kubectl get` shows
    without asking MLflow."""

    model_config = ConfigDict(extra="forbid")

    trial: str | None = Field(None, description="Trial id, e.g. s1-t00042.")
    expression: str | None = Field(None, description="The function in math form.")
    valAccuracy: float | None = Field(None, description="Its validation accuracy.")
    fingerprint: str | None = Field(None, description="Fingerprint of the function.")
    runId: str | None = Field(None, description="MLflow run id of the trial.")


class SearchStatus(BaseModel):
    """What the operator reports on a search: summaries only, so the object stays small however
    many trials run (per-trial detail lives in MLflow)."""

    model_config = ConfigDict(extra="forbid")

    phase: Literal["Pending", "Running", "Succeeded", "Failed", "Cancelled"] | None = Field(
        None, description="Pending, Running, Succeeded, Failed or Cancelled."
    )
    trialsDone: int | None = Field(None, ge=0, description="Children finished (cache hits excluded).")
    trialsRunning: int | None = Field(None, ge=0, description="Children launched and not yet finished.")
    trialsFailed: int | None = Field(None, ge=0, description="Children that failed (NaN, crash, screened out).")
    trialsBudget: int | None = Field(None, ge=0, description="Children the budget allows (budget.trials in force).")
    cacheHits: int | None = Field(None, ge=0, description="Candidates answered from earlier results.")
    best: BestTrial | None = Field(None, description="The best trial so far.")
    bestAccuracy: float | None = Field(None, description="Best validation accuracy so far (also best.valAccuracy).")
    bestFunction: str | None = Field(None, description="Expression of the best function so far (also best.expression).")
    bestFingerprint: str | None = Field(None, description="Fingerprint of the best function (also best.fingerprint).")
    parentRunId: str | None = Field(None, description="MLflow run id of the search.")
    message: str | None = Field(None, description="Last notable event, in a sentence.")
    observedGeneration: int | None = Field(None, ge=0, description="metadata.generation last acted on.")
    conditions: list[Condition] = Field(default_factory=list, description="Standard conditions.")


def structural(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """One pydantic JSON-schema node as a structural OpenAPI v3 schema node."""
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        return structural({**target, **{k: v for k, v in node.items() if k != "$ref"}}, defs)
    if "anyOf" in node:
        branches = [b for b in node["anyOf"] if b != {"type": "null"}]
        if len(branches) != 1 or len(branches) == len(node["anyOf"]):
            raise ValueError(f"only `X | None` unions fit a structural schema; got {node['anyOf']}")
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        return _ordered({**structural({**branches[0], **rest}, defs), "nullable": True})

    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _KEPT:
            out[key] = value
        elif key == "default":
            if value is not None:
                out["default"] = value
        elif key == "exclusiveMinimum":  # draft 2020-12 number -> OpenAPI 3.0 boolean
            out["minimum"], out["exclusiveMinimum"] = value, True
        elif key == "exclusiveMaximum":
            out["maximum"], out["exclusiveMaximum"] = value, True
        elif key == "items":
            out["items"] = structural(value, defs)
        elif key == "properties":
            out["properties"] = {name: _property(name, sub, node, defs) for name, sub in value.items()}
        elif key == "additionalProperties":
            if value is True:
                out["x-kubernetes-preserve-unknown-fields"] = True
            elif isinstance(value, dict):
                out["additionalProperties"] = structural(value, defs)
            # False: the API server forbids it; unknown fields are pruned or rejected anyway
        elif key not in _DROPPED:
            raise ValueError(f"JSON-schema keyword {key!r} has no structural equivalent")
    if "type" not in out and not out.get("x-kubernetes-preserve-unknown-fields"):
        raise ValueError(f"a structural schema needs a type at every level; got {node}")
    return _ordered(out)


def _ordered(node: dict[str, Any]) -> dict[str, Any]:
    """Keys in a fixed reading order (type and description first, properties last)."""
    return dict(sorted(node.items(), key=lambda kv: _ORDER.index(kv[0])))


def _property(name: str, sub: dict[str, Any], parent: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """An optional nested object defaults to ``{}``, so the API server fills in its defaults too;
    one with required fields of its own does not (``early_stopping``: absent is off, and ``{}``
    would be refused)."""
    prop = structural(sub, defs)
    if (prop.get("properties") and "default" not in prop and name not in parent.get("required", [])
            and not prop.get("required")):
        prop = _ordered({**prop, "default": {}})
    return prop


def _model_schema(model: type[BaseModel], drop: tuple[str, ...] = ()) -> dict[str, Any]:
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})
    schema["properties"] = {k: v for k, v in schema["properties"].items() if k not in drop}
    schema["required"] = [k for k in schema.get("required", []) if k not in drop]
    if not schema["required"]:
        del schema["required"]
    return structural(schema, defs)


def _without_defaults(node: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in node.items() if k != "default"}
    if "properties" in out:
        out["properties"] = {k: _without_defaults(v) for k, v in out["properties"].items()}
    if isinstance(out.get("items"), dict):
        out["items"] = _without_defaults(out["items"])
    if isinstance(out.get("additionalProperties"), dict):
        out["additionalProperties"] = _without_defaults(out["additionalProperties"])
    return out


def spec_schema() -> dict[str, Any]:
    """``.spec``: SearchSpec minus ``name``, without defaults in ``OPERATOR_SECTIONS``, with the
    cluster's defaults."""
    schema = _model_schema(SearchSpec, drop=("name",))
    for section in OPERATOR_SECTIONS:
        schema["properties"][section] = _without_defaults(schema["properties"][section])
    for path, value in CLUSTER_DEFAULTS.items():
        node = schema
        for part in path:
            sub = node["properties"][part]
            # the objects above a default default to {}, so the API server reaches it
            node["properties"][part] = _ordered({"default": {}, **sub} if part != path[-1]
                                                else {**sub, "default": value})
            node = node["properties"][part]
    return schema


def defaults_the_crd_overrides(fragment: Any, node: dict[str, Any] | None = None,
                               path: str = "") -> list[str]:
    """The fields of an operator defaults fragment that could never take effect, because the
    CRD gives them another default, which the API server stores in every search."""
    node = spec_schema() if node is None else node
    found = []
    for key, value in (fragment.items() if isinstance(fragment, dict) else ()):
        sub = (node.get("properties") or {}).get(key)
        if sub is None:
            continue
        where = f"{path}.{key}" if path else key
        if "default" in sub and sub["default"] != value and not isinstance(value, dict):
            found.append(where)
        found += defaults_the_crd_overrides(value, sub, where)
    return found


def status_schema() -> dict[str, Any]:
    schema = _model_schema(SearchStatus)
    conditions = schema["properties"]["conditions"]
    conditions.pop("default", None)
    conditions |= {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]}
    return schema


def crd_schema() -> dict[str, Any]:
    """The ``openAPIV3Schema`` of the served version."""
    return {
        "type": "object",
        "description": "A search for neural-network activation functions (Ramachandran, Zoph & "
        "Le, 2017): the controller samples candidates, trains each as a child Job and learns "
        "from their validation accuracies.",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {
                "type": "object",
                "properties": {"name": {
                    "type": "string", "maxLength": MAX_NAME, "pattern": NAME_PATTERN,
                    "description": SearchSpec.model_fields["name"].description,
                }},
            },
            "spec": spec_schema(),
            "status": status_schema(),
        },
    }


PRINTER_COLUMNS: Final[list[dict[str, str | int]]] = [
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {"name": "Done", "type": "integer", "jsonPath": ".status.trialsDone",
     "description": "Children trained."},
    {"name": "Budget", "type": "integer", "jsonPath": ".status.trialsBudget",
     "description": "Children the budget allows."},
    {"name": "Running", "type": "integer", "jsonPath": ".status.trialsRunning", "priority": 1},
    {"name": "Failed", "type": "integer", "jsonPath": ".status.trialsFailed", "priority": 1},
    {"name": "Best", "type": "number", "jsonPath": ".status.best.valAccuracy",
     "description": "Best validation accuracy so far."},
    {"name": "Function", "type": "string", "jsonPath": ".status.best.expression",
     "description": "The best function so far."},
    {"name": "Trial", "type": "string", "jsonPath": ".status.best.trial", "priority": 1},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]
"""``kubectl get activationsearches``: the leader without reaching MLflow; ``-o wide`` adds
the columns of priority 1."""


def crd_manifest() -> dict[str, Any]:
    """The CustomResourceDefinition object, as ``kubectl apply`` takes it."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": CRD_NAME,
            "labels": {"app.kubernetes.io/name": "actsearch", "app.kubernetes.io/part-of": "actsearch"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND, "listKind": f"{KIND}List", "plural": PLURAL, "singular": SINGULAR,
                "shortNames": SHORT_NAMES, "categories": CATEGORIES,
            },
            "versions": [{
                "name": VERSION,
                "served": True,
                "storage": True,
                "schema": {"openAPIV3Schema": crd_schema()},
                "subresources": {"status": {}},
                "additionalPrinterColumns": PRINTER_COLUMNS,
            }],
        },
    }


def _draft4(node: dict[str, Any], closed: bool = True) -> dict[str, Any]:
    """A structural schema node as JSON Schema draft 4 (OpenAPI 3.0's numeric keywords), with
    unknown fields rejected as ``kubectl``'s strict field validation rejects them."""
    out = {k: v for k, v in node.items() if not k.startswith("x-kubernetes-") and k not in ("nullable", "default")}
    if node.get("nullable"):
        out["type"] = [node["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    if "items" in node:
        out["items"] = _draft4(node["items"])
    if isinstance(node.get("additionalProperties"), dict):
        out["additionalProperties"] = _draft4(node["additionalProperties"])
    if "properties" in node:
        out["properties"] = {k: _draft4(v) for k, v in node["properties"].items()}
        if closed and not node.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    return out


def validate_cr(obj: Any, schema: dict[str, Any] | None = None) -> list[str]:
    """Why the API server would reject ``obj`` as an ActivationSearch: one line per problem,
    ``path: message``; empty when it would be accepted. ``schema``: the ``openAPIV3Schema`` of
    the CRD a cluster serves (default: this version's)."""
    if not isinstance(obj, dict):
        return [f"an ActivationSearch is a mapping; got {type(obj).__name__}"]
    errors = []
    if obj.get("apiVersion") != f"{GROUP}/{VERSION}":
        errors.append(f"apiVersion: must be {GROUP}/{VERSION}; got {obj.get('apiVersion')!r}")
    if obj.get("kind") != KIND:
        errors.append(f"kind: must be {KIND}; got {obj.get('kind')!r}")
    schema = copy.deepcopy(schema) if schema is not None else crd_schema()
    metadata = schema["properties"].pop("metadata", {"type": "object"})
    draft4 = _draft4(schema)
    draft4["properties"]["metadata"] = _draft4(metadata, closed=False)
    draft4["required"] = ["metadata", "spec"]
    validator = jsonschema.Draft4Validator(draft4)
    for e in sorted(validator.iter_errors(obj), key=lambda e: [str(p) for p in e.absolute_path]):
        where = ".".join(str(p) for p in e.absolute_path)
        errors.append(f"{where}: {e.message}" if where else e.message)
    return errors


def render() -> str:
    """The CRD as the YAML file the chart ships."""
    header = "# Generated from orchestrator/spec.py by `python -m orchestrator.cluster.crd` (make crds); do not edit.\n"
    return header + yaml.safe_dump(crd_manifest(), sort_keys=False, width=100, allow_unicode=True)


def main() -> None:
    sys.stdout.write(render())


if __name__ == "__main__":
    main()
