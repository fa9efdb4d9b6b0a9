"""What ``actsearch-ctl submit`` reads: a bare search spec (the file ``actsearch-ctl run``
takes) or an ``ActivationSearch`` manifest (the file ``kubectl apply -f`` takes), as one
ActivationSearch object.

Both forms name the same search the same way: a spec's ``name`` is a manifest's
``metadata.name``. A manifest's ``metadata.namespace`` is used unless the command line names
one; its labels and annotations are kept. A wrong ``apiVersion`` or ``kind``, a missing name or
spec, or a field the manifest cannot carry is refused with the field named.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from orchestrator.adapters.kube import API_VERSION, KIND
from orchestrator.errors import ConfigError
from orchestrator.spec import SearchSpec, check_backend, parse_spec

MANIFEST_KEYS: Final = frozenset({"apiVersion", "kind", "metadata", "spec", "status"})
METADATA_KEYS: Final = frozenset({"name", "namespace", "labels", "annotations"})


@dataclass(frozen=True)
class Submission:
    """One search to create: its validated spec and the object that carries it."""

    spec: SearchSpec
    spec_fields: dict[str, Any]  # as written (defaults stay with the CRD), without the name
    namespace: str | None  # the manifest's metadata.namespace, if it had one
    labels: dict[str, str]
    annotations: dict[str, str]

    def object(self, namespace: str) -> dict[str, Any]:
        """The ActivationSearch in ``namespace``; children run as Jobs unless the file says
        otherwise (and ``check_backend`` refused that already)."""
        spec = dict(self.spec_fields)
        spec["backend"] = {"kind": "kubernetes", **(spec.get("backend") or {})}
        metadata: dict[str, Any] = {"name": self.spec.name, "namespace": namespace}
        if self.labels:
            metadata["labels"] = dict(self.labels)
        if self.annotations:
            metadata["annotations"] = dict(self.annotations)
        return {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": spec}


def is_manifest(raw: Any) -> bool:
    """A Kubernetes object (it says what it is) rather than a bare spec."""
    return isinstance(raw, Mapping) and ("apiVersion" in raw or "kind" in raw)


def read_submission(raw: Any, source: str) -> Submission:
    """A file's parsed YAML as a Submission; ConfigError names every bad field."""
    if not is_manifest(raw):
        spec = parse_spec(raw, source)  # a mapping, its backend one too, once this passed
        check_backend((raw.get("backend") or {}).get("kind"), "kubernetes", source)
        return Submission(spec, {k: v for k, v in raw.items() if k != "name"}, None, {}, {})
    return _from_manifest(raw, source)


def _from_manifest(raw: Mapping[str, Any], source: str) -> Submission:
    problems = []
    if raw.get("apiVersion") != API_VERSION:
        problems.append(f"apiVersion: must be {API_VERSION}; got {raw.get('apiVersion')!r}")
    if raw.get("kind") != KIND:
        problems.append(f"kind: must be {KIND}; got {raw.get('kind')!r}")
    problems += [f"{k}: unknown field (an ActivationSearch has apiVersion, kind, metadata and "
                 "spec)" for k in sorted(set(raw) - MANIFEST_KEYS)]
    meta = raw.get("metadata")
    if not isinstance(meta, Mapping):
        problems.append("metadata: required, a mapping with at least metadata.name")
        meta = {}
    elif not meta.get("name"):
        problems.append("metadata.name: required (the search's name)")
    problems += [f"metadata.{k}: not taken by submit (only name, namespace, labels and "
                 "annotations)" for k in sorted(set(meta) - METADATA_KEYS)]
    for k in ("labels", "annotations"):
        value = meta.get(k)
        if value is not None and not (isinstance(value, Mapping) and all(
                isinstance(v, str) for v in value.values())):
            problems.append(f"metadata.{k}: a mapping of strings")
    spec = raw.get("spec")
    if not isinstance(spec, Mapping):
        problems.append("spec: required, a mapping (the search spec, without its name)")
        spec = {}
    elif "name" in spec:
        problems.append("spec.name: a manifest names the search in metadata.name")
    if problems:
        raise ConfigError(f"{source} is not a valid ActivationSearch manifest:\n"
                          + "\n".join(problems))
    fields = dict(spec)
    parsed = parse_spec({**fields, "name": meta["name"]}, f"{source} (spec)")
    check_backend((fields.get("backend") or {}).get("kind"), "kubernetes", source)
    return Submission(parsed, fields, meta.get("namespace"), dict(meta.get("labels") or {}),
                      dict(meta.get("annotations") or {}))
