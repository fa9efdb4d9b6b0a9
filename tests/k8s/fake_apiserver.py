"""A stateful fake Kubernetes API server for tests, over real HTTP on 127.0.0.1.

No real API server (kube-apiserver, k3s, kind, envtest) can run where these tests run, so this
fake stands in for one. It speaks real HTTP to the official ``kubernetes`` client and to kopf
(``http.server`` in a thread, chunked watch streams) with the API's semantics for what actsearch
uses, so the code under test goes through its real serialisation, URLs, headers and errors.

Implemented:

- discovery: ``/version``, ``/api``, ``/api/v1``, ``/apis``, ``/apis/<group>/<version>``;
- resources: ``batch/v1`` jobs (+ ``/status``), ``actsearch.io/v1alpha1`` activationsearches
  (+ ``/status``), core ``v1`` pods (+ ``/log``, text set by the test) and events,
  ``coordination.k8s.io/v1`` leases (stored as sent: no field validation), all namespaced; cluster-scoped ``apiextensions.k8s.io/v1`` customresourcedefinitions: once the
  ActivationSearch CRD is stored here, its served schema (not this version's) checks the
  objects, so a CRD upgrade can be tested;
- create (201; 409 AlreadyExists; 422 Invalid for bad names, label values, a Job without
  containers or with a restartPolicy other than Never/OnFailure, a non-string env value; 400
  for a namespace that differs from the URL's), get (404 NotFound as a Status), list (namespaced
  and across namespaces) with label selectors (``a=b``, ``a==b``, ``a!=b``, ``a``, ``!a``,
  ``a in (x,y)``, ``a notin (x,y)``) and field selectors (``FIELD_LABELS``: ``metadata.name``,
  an Event's ``involvedObject.name``, ...); replace (PUT, with the resourceVersion precondition: 409 Conflict);
  patch as JSON merge patch, JSON patch (add/remove/replace/test) or strategic merge patch (as a
  merge patch, and refused with 415 for custom resources, as the real server does); delete with
  ``propagationPolicy`` and finalizers (``deletionTimestamp`` first, gone once the finalizers are);
- the status subresource: a write to the main resource keeps ``.status``; a write to
  ``/status`` changes only ``.status``;
- ``uid``, ``creationTimestamp``, one cluster-wide ``resourceVersion`` counter, ``generation``
  bumped on changes outside metadata and status;
- garbage collection through ownerReferences: an object whose owners are all gone is deleted
  (deleting a search deletes its Jobs; a Job created for an owner already gone, or for an owner in
  another namespace, which the API treats as absent, is removed);
- watch (``?watch=true``, any case): ADDED/MODIFIED/DELETED as JSON lines, the current objects
  first when no resourceVersion is given, history after a given resourceVersion (410 Gone when it
  is older than the history kept), label/field selectors, ``timeoutSeconds``;
- resource quantities of a Job's containers parsed as the API server parses them (``16GB`` is
  refused with 400, as a decoding error; a negative quantity or a request above its limit with
  422 Invalid);
- the Job defaults the tests rely on (``job-name`` labels on the pod template);
- a record of every request as (verb, API group, resource[/subresource], namespace), for RBAC
  coverage tests; fault injection: ``fail(verb, resource, status, times)``;
- structural schema of custom resources, from the CRD the chart installs (``CRD_FILE``): on
  every create, update and patch, unknown fields are pruned (``x-kubernetes-preserve-unknown-
  fields`` keeps them; ``?fieldValidation=Strict``, kubectl's default, refuses them with 400
  instead) and ``default:`` values are filled in, so what is stored is what a real API server
  would store;
- RBAC: a bearer token listed in ``grants`` (the tests give the controller's ServiceAccount
  ``orchestrator.cluster.rbac.RULES``) gets 403 Forbidden for any request outside its rules, with the
  API server's wording; OwnerReferencesPermissionEnforcement on create and update: an
  ``ownerReference`` with ``blockOwnerDeletion: true`` needs ``update`` on the owner's
  ``finalizers`` subresource (recorded in ``checks``, so the RBAC audit sees it used);
- optional schema validation of created ActivationSearch objects through
  ``orchestrator.cluster.crd.validate_cr`` when that function exists.

Not implemented: authentication (any token is accepted; one not in ``grants`` is an
administrator's), RBAC's resourceNames and non-resource URLs, the owner check on patches,
admission webhooks, server-side apply, field managers,
``deletecollection``, pagination (``limit``/``continue`` are ignored: everything comes in one
page), watch bookmarks, a watch turning a MODIFIED object that leaves a label selector into
DELETED, controllers (no pods are made for Jobs and no Job status changes unless a test writes
them with ``set_status`` or starts the Job controller of ``fake_jobs.py``), namespaces as objects (every namespace exists), protobuf, and the
rest of the API's resources (404, as for a resource whose CRD is not installed; ``namespaces``
is only listed in discovery).
"""

from __future__ import annotations

import copy
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Kind:
    group: str
    version: str
    plural: str
    kind: str
    singular: str
    subresources: tuple[str, ...] = ()
    custom: bool = False
    short_names: tuple[str, ...] = ()
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


KINDS = (
    Kind("batch", "v1", "jobs", "Job", "job", ("status",)),
    Kind("actsearch.io", "v1alpha1", "activationsearches", "ActivationSearch", "activationsearch",
         ("status",), custom=True, short_names=("asearch",)),
    Kind("", "v1", "pods", "Pod", "pod", ("status", "log")),
    Kind("", "v1", "events", "Event", "event"),
    Kind("coordination.k8s.io", "v1", "leases", "Lease", "lease"),
    Kind("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition",
         "customresourcedefinition", ("status",), short_names=("crd",), namespaced=False),
)
CLUSTER = ""  # the namespace under which cluster-scoped objects are kept


@dataclass(frozen=True)
class Request:
    """One API request as RBAC sees it; ``resource`` includes a subresource (``jobs/status``)."""

    verb: str
    group: str
    resource: str
    namespace: str | None
    name: str | None = None
    body: Any = field(default=None, compare=False, hash=False)  # what the client sent
    user: str | None = field(default=None, compare=False, hash=False)
    """Who sent it: the user a ``grants`` token stands for, None for an administrator."""


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details or {}

    def body(self) -> dict[str, Any]:
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": self.message, "reason": self.reason, "details": self.details,
                "code": self.code}


# -- selectors ---------------------------------------------------------------------------------

_SET_RE = re.compile(r"^\s*([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


def _split_selector(selector: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in selector:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


def label_matcher(selector: str | None) -> Callable[[dict[str, str]], bool]:
    """A predicate over a label dict for a Kubernetes label selector string."""
    tests: list[Callable[[dict[str, str]], bool]] = []
    for req in _split_selector(selector or ""):
        m = _SET_RE.match(req)
        if m:
            key, op, values = m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",")}
            if op == "in":
                tests.append(lambda ls, k=key, vs=values: ls.get(k) in vs)
            else:
                tests.append(lambda ls, k=key, vs=values: ls.get(k) not in vs)
        elif "!=" in req:
            k, v = (s.strip() for s in req.split("!=", 1))
            tests.append(lambda ls, k=k, v=v: ls.get(k) != v)
        elif "=" in req:
            k, v = (s.strip() for s in re.split("==?", req, maxsplit=1))
            tests.append(lambda ls, k=k, v=v: ls.get(k) == v)
        elif req.startswith("!"):
            absent = req[1:].strip()
            tests.append(lambda ls, k=absent: k not in ls)
        elif re.match(r"^[\w./-]+$", req):
            tests.append(lambda ls, k=req: k in ls)
        else:
            raise ApiError(400, "BadRequest", f"unable to parse requirement: {req!r}")
    return lambda labels: all(t(labels) for t in tests)


FIELD_LABELS = {"metadata.name", "metadata.namespace", "involvedObject.kind", "involvedObject.name",
                "involvedObject.namespace", "involvedObject.uid", "reason", "type", "status.phase",
                "spec.nodeName"}
"""Field selectors served: every resource's metadata ones, an Event's involvedObject, reason and
type, a pod's phase and node (the real server supports a few more per resource)."""


def _field(obj: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        obj = obj.get(part) if isinstance(obj, dict) else None  # type: ignore[assignment]
    return "" if obj is None else obj


def field_matcher(selector: str | None) -> Callable[[dict[str, Any]], bool]:
    tests: list[Callable[[dict[str, Any]], bool]] = []
    for req in _split_selector(selector or ""):
        neg = "!=" in req
        k, v = (s.strip() for s in re.split("!=|==?", req, maxsplit=1))
        if k not in FIELD_LABELS:
            raise ApiError(400, "BadRequest", f"field label not supported: {k}")
        tests.append(lambda o, k=k, v=v, neg=neg: (_field(o, k) == v) != neg)
    return lambda obj: all(t(obj) for t in tests)


# -- patches -----------------------------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    return [p.replace("~1", "/").replace("~0", "~") for p in path.lstrip("/").split("/")]


def json_patch(doc: Any, ops: list[dict[str, Any]]) -> Any:
    """RFC 6902: add, remove, replace, test."""
    doc = copy.deepcopy(doc)
    for op in ops:
        parts = _pointer(op["path"])
        parent = doc
        for p in parts[:-1]:
            parent = parent[int(p)] if isinstance(parent, list) else parent[p]
        last = parts[-1] if parts else None
        kind = op["op"]
        try:
            if kind == "test":
                cur = parent[int(last)] if isinstance(parent, list) else parent[last]
                if cur != op["value"]:
                    raise ApiError(422, "Invalid", f"the test of {op['path']} failed")
            elif kind == "remove":
                if isinstance(parent, list):
                    parent.pop(int(last))
                else:
                    del parent[last]
            elif kind in ("add", "replace"):
                if isinstance(parent, list):
                    if last == "-":
                        parent.append(op["value"])
                    elif kind == "add":
                        parent.insert(int(last), op["value"])
                    else:
                        parent[int(last)] = op["value"]
                else:
                    if kind == "replace" and last not in parent:
                        raise KeyError(last)
                    parent[last] = op["value"]
            else:
                raise ApiError(422, "Invalid", f"JSON patch operation {kind!r} is not supported")
        except (KeyError, IndexError, ValueError, TypeError) as e:
            raise ApiError(422, "Invalid", f"the JSON patch {op} does not apply: {e}") from e
    return doc


# -- validation ---------------------------------------------------------------------------------

_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


_QUANTITY_RE = re.compile(r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$")
_SUFFIXES = {"": 1, "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "k": 10**3,
             "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18, "Ki": 2**10,
             "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}


def parse_quantity(text: Any) -> Decimal:
    """A resource quantity (``500m``, ``16Gi``, ``1e3``) as the API server reads it;
    ValueError with the server's words for anything else (``16GB``)."""
    m = _QUANTITY_RE.match(str(text)) if isinstance(text, (str, int, float)) else None
    if m is None:
        raise ValueError("quantities must match the regular expression "
                         f"'{_QUANTITY_RE.pattern}'")
    number, suffix = m.groups()
    try:
        value = Decimal(number)
        if suffix in _SUFFIXES:
            return value * Decimal(_SUFFIXES[suffix])
        if re.fullmatch(r"[eE][-+]?[0-9]+", suffix):
            return value * Decimal(10) ** int(suffix[1:])
    except InvalidOperation:
        pass
    raise ValueError("unable to parse quantity's suffix")


def _check_resources(kind: Kind, obj: dict[str, Any], problems: list[str]) -> None:
    """A malformed quantity fails decoding (400, as the typed API does); a negative one, or a
    request above its limit, fails validation (422, collected into ``problems``)."""
    pod = obj.get("spec", {}).get("template", {}).get("spec", {})
    for i, c in enumerate(pod.get("containers") or []):
        res = c.get("resources") or {}
        parsed: dict[str, dict[str, Decimal]] = {}
        for part in ("limits", "requests"):
            for name, value in (res.get(part) or {}).items():
                try:
                    parsed.setdefault(part, {})[name] = q = parse_quantity(value)
                except ValueError as e:
                    raise ApiError(400, "BadRequest", f'{kind.kind} in version "{kind.version}" '
                                   f"cannot be handled as a {kind.kind}: {e}") from e
                if q < 0:
                    problems.append(f"spec.template.spec.containers[{i}].resources.{part}[{name}]: "
                                    f"Invalid value: {value!r}: must be greater than or equal to 0")
        for name, q in (parsed.get("requests") or {}).items():
            limit = (parsed.get("limits") or {}).get(name)
            if limit is not None and q > limit:
                problems.append(f"spec.template.spec.containers[{i}].resources.requests: Invalid "
                                f"value: {res['requests'][name]!r}: must be less than or equal to "
                                f"{name} limit of {res['limits'][name]}")


def _validate(kind: Kind, obj: dict[str, Any], validate_cr: Callable[..., list[str]] | None,
              served_schema: dict[str, Any] | None = None) -> None:
    meta = obj["metadata"]
    problems = []
    name = meta.get("name", "")
    if not _NAME_RE.match(name) or len(name) > 253:
        problems.append(f"metadata.name: Invalid value: {name!r}: a lowercase RFC 1123 subdomain")
    if kind.kind == "Job" and len(name) > 63:
        problems.append(f"metadata.name: Invalid value: {name!r}: must be no more than 63 characters")
    labels = {**(meta.get("labels") or {})}
    if kind.kind == "Job":
        labels.update(obj.get("spec", {}).get("template", {}).get("metadata", {}).get("labels") or {})
    for k, v in labels.items():
        if not isinstance(v, str) or len(v) > 63 or not _LABEL_VALUE_RE.match(v):
            problems.append(f"metadata.labels: Invalid value: {v!r} (label {k}): a valid label "
                            "value is at most 63 characters of [A-Za-z0-9_.-]")
    if kind.kind == "Job":
        pod = obj.get("spec", {}).get("template", {}).get("spec", {})
        if not pod.get("containers"):
            problems.append("spec.template.spec.containers: Required value")
        if pod.get("restartPolicy") not in ("Never", "OnFailure"):
            problems.append("spec.template.spec.restartPolicy: Unsupported value: "
                            f"{pod.get('restartPolicy')!r}: supported values: \"OnFailure\", \"Never\"")
        _check_resources(kind, obj, problems)
        for c in pod.get("containers") or []:
            for e in c.get("env") or []:
                if "value" in e and not isinstance(e["value"], str):
                    raise ApiError(400, "BadRequest",
                                   f"json: cannot unmarshal {type(e['value']).__name__} into Go "
                                   f"struct field EnvVar.value of type string (env {e.get('name')})")
    if kind.custom and validate_cr is not None:
        problems += validate_cr(obj, served_schema) if served_schema else validate_cr(obj)
    if problems:
        raise ApiError(422, "Invalid", f"{kind.kind} {name!r} is invalid: " + "; ".join(problems),
                       {"name": name, "group": kind.group, "kind": kind.kind})


def _crd_validator() -> Callable[..., list[str]] | None:
    try:
        from orchestrator.cluster.crd import validate_cr  # type: ignore[attr-defined]
    except ImportError:
        return None
    return validate_cr  # type: ignore[no-any-return]


CRD_FILE = (Path(__file__).resolve().parents[2] / "helm" / "actsearch" / "crds"
            / "activationsearches.actsearch.io.yaml")
"""The CRD the chart installs: its ``openAPIV3Schema`` drives defaulting and pruning."""


def crd_schema_from_file(path: Path = CRD_FILE) -> dict[str, Any]:
    import yaml

    crd = yaml.safe_load(path.read_text())
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]  # type: ignore[no-any-return]


_OBJECT_META = {"apiVersion", "kind", "metadata"}


def prune(schema: dict[str, Any], obj: Any, path: str = "") -> tuple[Any, list[str]]:
    """Drop the fields a structural schema does not know, as the API server does (unless a
    node has ``x-kubernetes-preserve-unknown-fields``); returns the object and the dropped
    fields' paths (``spec.budget.trails``). ``apiVersion``, ``kind`` and ``metadata`` of the
    root are the API's own, never pruned."""
    dropped: list[str] = []
    if isinstance(obj, dict) and ("properties" in schema or "additionalProperties" in schema
                                  or schema.get("type") == "object"):
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        keep = schema.get("x-kubernetes-preserve-unknown-fields")
        out = {}
        for k, v in obj.items():
            where = f"{path}.{k}" if path else k
            if not path and k in _OBJECT_META:
                out[k] = v
            elif k in props:
                out[k], d = prune(props[k], v, where)
                dropped += d
            elif isinstance(extra, dict):
                out[k], d = prune(extra, v, where)
                dropped += d
            elif keep or extra is True:
                out[k] = v
            else:
                dropped.append(where)
        return out, dropped
    if isinstance(obj, list) and isinstance(schema.get("items"), dict):
        out_list = []
        for i, v in enumerate(obj):
            item, d = prune(schema["items"], v, f"{path}[{i}]")
            out_list.append(item)
            dropped += d
        return out_list, dropped
    return obj, dropped


def apply_defaults(schema: dict[str, Any], obj: Any) -> Any:
    """Structural defaulting as the API server does it on every write: an absent field (or a
    null in a non-nullable one) with a ``default`` gets it, then defaulting goes on inside, so
    ``default: {}`` on an object fills its fields' defaults."""
    if isinstance(obj, dict):
        for name, sub in (schema.get("properties") or {}).items():
            if "default" in sub and (name not in obj or (obj[name] is None
                                                          and not sub.get("nullable"))):
                obj[name] = copy.deepcopy(sub["default"])
            if name in obj:
                obj[name] = apply_defaults(sub, obj[name])
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for k in list(obj):
                obj[k] = apply_defaults(extra, obj[k])
    elif isinstance(obj, list) and isinstance(schema.get("items"), dict):
        return [apply_defaults(schema["items"], x) for x in obj]
    return obj


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- the store -----------------------------------------------------------------------------------

Key = tuple[str, str, str, str]  # group, plural, namespace, name


@dataclass
class Event:
    rv: int
    type: str
    kind: Kind
    obj: dict[str, Any]


@dataclass
class Fault:
    verb: str
    resource: str
    status: int
    times: int


@dataclass
class FakeApiServer:
    """The fake; ``start()`` serves it on a free port of 127.0.0.1 (or use it as a context)."""

    validate_crs: bool = True
    structural: bool = True  # prune and default custom resources by the chart's CRD schema
    crd_installed: bool = True  # False: activationsearches answer 404 as for a missing CRD
    history: int = 10_000
    objects: dict[Key, dict[str, Any]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    logs: dict[tuple[str, str], str] = field(default_factory=dict)
    grants: dict[str, tuple[str, list[dict[str, list[str]]]]] = field(default_factory=dict)
    """Bearer token -> (user, RBAC rules): a request with such a token is authorised against
    its rules (403 Forbidden outside them), as for a ServiceAccount bound to a Role; any other
    token is a cluster administrator's."""
    checks: list[Request] = field(default_factory=list)
    """Permissions checked without a request of their own (admission: an ownerReference's
    ``blockOwnerDeletion`` needs ``update`` on the owner's ``finalizers``)."""

    def __post_init__(self) -> None:
        self._lock = threading.Condition()
        self._rv = 0
        self._events: list[Event] = []
        self._faults: list[Fault] = []
        self._stopping = False
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._validate_cr = _crd_validator() if self.validate_crs else None
        self._schema = crd_schema_from_file() if self.structural else None

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._httpd is not None, "start() the fake first"
        return f"http://{HOST}:{self._httpd.server_address[1]}"

    def start(self) -> FakeApiServer:
        server = self

        class Handler(_Handler):
            api = server

        self._httpd = ThreadingHTTPServer((HOST, 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="fake-apiserver",
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> FakeApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def write_kubeconfig(self, path: Path, namespace: str = "default") -> Path:
        """A kubeconfig whose current context points at this fake."""
        import yaml

        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "tester", "user": {"token": "fake-token"}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "tester",
                                                      "namespace": namespace}}],
        }))
        return path

    # -- test controls -----------------------------------------------------------------------

    def fail(self, verb: str, resource: str, status: int, times: int = 1) -> None:
        """Answer the next ``times`` requests ``(verb, resource)`` with ``status``
        (``resource`` as RBAC writes it: ``jobs``, ``activationsearches/status``)."""
        with self._lock:
            self._faults.append(Fault(verb, resource, status, times))

    def calls(self, verb: str | None = None, resource: str | None = None) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if (verb is None or r.verb == verb)
                    and (resource is None or r.resource == resource)]

    def resource_requests(self) -> set[tuple[str, str, str]]:
        """(verb, group, resource) of every resource request (discovery excluded)."""
        with self._lock:
            return {(r.verb, r.group, r.resource) for r in [*self.requests, *self.checks]
                    if r.resource}

    def items(self, plural: str, namespace: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [copy.deepcopy(o) for (g, p, ns, n), o in sorted(self.objects.items())
                    if p == plural and (namespace is None or ns == namespace)]

    def get(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        kind = _kind_by_plural(plural)
        with self._lock:
            obj = self.objects.get((kind.group, plural, namespace, name))
            return copy.deepcopy(obj) if obj else None

    def put_object(self, plural: str, namespace: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Create an object in-process, as a controller in the cluster would (pods of a Job)."""
        kind = _kind_by_plural(plural)
        with self._lock:
            return self._create(kind, namespace, copy.deepcopy(obj))

    def delete_object(self, plural: str, namespace: str, name: str,
                      propagation: str = "Background") -> None:
        """Delete in-process, as ``kubectl delete`` would (finalizers and owners honoured;
        ``Orphan``: ``--cascade=orphan``, dependents kept)."""
        with self._lock:
            self._delete(_kind_by_plural(plural), namespace, name, propagation)

    def patch_object(self, plural: str, namespace: str, name: str, patch: dict[str, Any],
                     subresource: str | None = None) -> dict[str, Any]:
        """Merge-patch in-process, as ``kubectl patch --type=merge`` would, unrecorded."""
        kind = _kind_by_plural(plural)
        with self._lock:
            return self._update(kind, namespace, name, subresource,
                                lambda old: merge_patch(old, patch))

    def set_status(self, plural: str, namespace: str, name: str, status: dict[str, Any]) -> None:
        """Write ``.status`` in-process, as the Job controller would."""
        kind = _kind_by_plural(plural)
        with self._lock:
            key = (kind.group, plural, namespace, name)
            obj = copy.deepcopy(self.objects[key])
            obj["status"] = status
            self._store(kind, key, obj, "MODIFIED")

    # -- authorisation ---------------------------------------------------------------------------

    def _allowed(self, token: str | None, verb: str, group: str, resource: str) -> bool:
        if token not in self.grants:
            return True
        _, rules = self.grants[token]
        return any(verb in r["verbs"] or "*" in r["verbs"] for r in rules
                   if (group in r["apiGroups"] or "*" in r["apiGroups"])
                   and (resource in r["resources"] or "*" in r["resources"]))

    def _authorize(self, token: str | None, verb: str, group: str, resource: str,
                   namespace: str | None) -> None:
        """RBAC: 403 with the API server's wording when the token's rules lack the request."""
        if not self._allowed(token, verb, group, resource):
            user = self.grants[token or ""][0]
            where = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
            raise ApiError(403, "Forbidden", f'{resource.split("/")[0]}{"." + group if group else ""} '
                           f'is forbidden: User "{user}" cannot {verb} resource "{resource}" in API '
                           f'group "{group}" {where}', {"group": group, "kind": resource})

    def _admit_owners(self, token: str | None, kind: Kind, namespace: str, obj: Any) -> None:
        """OwnerReferencesPermissionEnforcement (on in OpenShift and many hardened clusters):
        setting ``blockOwnerDeletion: true`` needs ``update`` on the owner's ``finalizers``."""
        refs = ((obj or {}).get("metadata") or {}).get("ownerReferences") or []
        for ref in refs if isinstance(refs, list) else []:
            if not ref.get("blockOwnerDeletion"):
                continue
            owner = next((k for k in KINDS if k.kind == ref.get("kind")
                          and k.api_version == ref.get("apiVersion")), None)
            group = owner.group if owner else str(ref.get("apiVersion", "")).rpartition("/")[0]
            plural = owner.plural if owner else f"{str(ref.get('kind', '')).lower()}s"
            resource = f"{plural}/finalizers"
            if not self._allowed(token, "update", group, resource):
                name = (obj.get("metadata") or {}).get("name")
                user = self.grants[token or ""][0]
                raise ApiError(403, "Forbidden", f'{kind.plural}.{kind.group or "core"} "{name}" is '
                               "forbidden: cannot set blockOwnerDeletion if an ownerReference "
                               f"refers to a resource you can't set finalizers on: User \"{user}\" "
                               f'cannot update resource "{resource}" in API group "{group}" in the '
                               f'namespace "{namespace}"', {"name": name, "kind": kind.plural})
            if token in self.grants:
                self.checks.append(Request("update", group, resource, namespace, ref.get("name")))

    # -- the API, called by the handler under the lock -------------------------------------------

    def _take_fault(self, verb: str, resource: str) -> int | None:
        for f in self._faults:
            if f.verb == verb and f.resource == resource and f.times > 0:
                f.times -= 1
                return f.status
        return None

    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    def _store(self, kind: Kind, key: Key, obj: dict[str, Any], event: str) -> dict[str, Any]:
        obj["metadata"]["resourceVersion"] = self._next_rv()
        self.objects[key] = obj
        self._emit(event, kind, obj)
        return copy.deepcopy(obj)

    def _emit(self, type_: str, kind: Kind, obj: dict[str, Any]) -> None:
        self._events.append(Event(int(obj["metadata"]["resourceVersion"]), type_, kind,
                                  copy.deepcopy(obj)))
        del self._events[: -self.history]
        self._lock.notify_all()

    def _structural(self, kind: Kind, obj: dict[str, Any], field_validation: str) -> dict[str, Any]:
        """Prune unknown fields and apply defaults, as the API server does to a custom resource
        on every write; ``?fieldValidation=Strict`` (kubectl's default) refuses unknown fields
        instead (400, as the real server answers a strict decoding error)."""
        if not kind.custom or self._schema is None:
            return obj
        pruned, dropped = prune(self._schema, obj)
        if dropped and field_validation == "Strict":
            raise ApiError(400, "BadRequest", f'{kind.kind} in version "{kind.version}" cannot be '
                           f"handled as a {kind.kind}: strict decoding error: "
                           + ", ".join(f'unknown field "{d}"' for d in dropped))
        return apply_defaults(self._schema, pruned)  # type: ignore[no-any-return]

    def _create(self, kind: Kind, namespace: str, obj: dict[str, Any],
                field_validation: str = "Warn") -> dict[str, Any]:
        obj = self._structural(kind, obj, field_validation)
        meta = obj.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        if kind.namespaced and meta.get("namespace", namespace) != namespace:
            raise ApiError(400, "BadRequest", "the namespace of the provided object does not "
                           "match the namespace sent on the request")
        obj.setdefault("apiVersion", kind.api_version)
        obj.setdefault("kind", kind.kind)
        if kind.namespaced:
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        if kind.kind == "Job":
            template_labels = obj.setdefault("spec", {}).setdefault("template", {}) \
                .setdefault("metadata", {}).setdefault("labels", {})
            template_labels.setdefault("batch.kubernetes.io/job-name", meta.get("name", ""))
            template_labels.setdefault("job-name", meta.get("name", ""))
        _validate(kind, obj, self._validate_cr, self._served_schema(kind))
        key = (kind.group, kind.plural, namespace, meta["name"])
        if key in self.objects:
            raise ApiError(409, "AlreadyExists",
                           f'{kind.plural}.{kind.group or "core"} "{meta["name"]}" already exists',
                           {"name": meta["name"], "group": kind.group, "kind": kind.plural})
        for managed in ("uid", "resourceVersion", "deletionTimestamp"):
            meta.pop(managed, None)
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=_now(), generation=1)
        if kind.subresources and "status" in kind.subresources and kind.custom:
            obj.pop("status", None)  # a create does not set the status of a custom resource
        out = self._store(kind, key, obj, "ADDED")
        self._collect_garbage()
        return out

    def _served_schema(self, kind: Kind) -> dict[str, Any] | None:
        """The ``openAPIV3Schema`` of ``kind`` in the CRD stored here, if a test or a client
        created one (else custom objects are checked against this version's CRD)."""
        crd = self.objects.get(("apiextensions.k8s.io", "customresourcedefinitions", CLUSTER,
                                f"{kind.plural}.{kind.group}"))
        if not kind.custom or crd is None:
            return None
        for version in (crd.get("spec") or {}).get("versions") or []:
            if version.get("name") == kind.version and version.get("served"):
                return (version.get("schema") or {}).get("openAPIV3Schema")
        return None

    def _existing(self, kind: Kind, namespace: str, name: str) -> dict[str, Any]:
        obj = self.objects.get((kind.group, kind.plural, namespace, name))
        if obj is None:
            raise ApiError(404, "NotFound", f'{kind.plural}.{kind.group or "core"} "{name}" not found',
                           {"name": name, "group": kind.group, "kind": kind.plural})
        return obj

    def _update(self, kind: Kind, namespace: str, name: str, sub: str | None,
                change: Callable[[dict[str, Any]], dict[str, Any]],
                field_validation: str = "Warn") -> dict[str, Any]:
        old = self._existing(kind, namespace, name)
        new = self._structural(kind, change(copy.deepcopy(old)), field_validation)
        rv = (new.get("metadata") or {}).get("resourceVersion")
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {kind.plural} "{name}": '
                           "the object has been modified; please apply your changes to the latest "
                           "version and try again", {"name": name, "kind": kind.plural})
        if sub == "status":
            merged = copy.deepcopy(old)
            if "status" in new:
                merged["status"] = new["status"]
            else:
                merged.pop("status", None)
        else:
            merged = new
            merged["metadata"] = {**new.get("metadata", {})}
            for managed in ("uid", "creationTimestamp", "generation", "namespace", "name",
                            "deletionTimestamp"):
                if managed in old["metadata"]:
                    merged["metadata"][managed] = old["metadata"][managed]
                else:
                    merged["metadata"].pop(managed, None)
            if "status" in kind.subresources:  # the main resource ignores .status
                if "status" in old:
                    merged["status"] = old["status"]
                else:
                    merged.pop("status", None)
            body = lambda o: {k: v for k, v in o.items() if k not in ("metadata", "status")}  # noqa: E731
            if body(merged) != body(old):
                merged["metadata"]["generation"] = old["metadata"]["generation"] + 1
        if (kind.kind == "Job" and sub is None) or kind.custom:
            _validate(kind, merged, self._validate_cr, self._served_schema(kind))
        key = (kind.group, kind.plural, namespace, name)
        if merged["metadata"].get("deletionTimestamp") and not merged["metadata"].get("finalizers"):
            merged["metadata"]["resourceVersion"] = self._next_rv()
            self._remove(kind, key, merged)
            return copy.deepcopy(merged)
        merged["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        if merged == old:
            return copy.deepcopy(old)  # no change: no new resourceVersion, no event
        return self._store(kind, key, merged, "MODIFIED")

    def _remove(self, kind: Kind, key: Key, obj: dict[str, Any]) -> None:
        self.objects.pop(key, None)
        obj["metadata"]["resourceVersion"] = self._next_rv()
        self._emit("DELETED", kind, obj)
        self._collect_garbage()

    def _delete(self, kind: Kind, namespace: str, name: str, policy: str) -> dict[str, Any]:
        obj = self._existing(kind, namespace, name)
        key = (kind.group, kind.plural, namespace, name)
        if obj["metadata"].get("finalizers"):
            if not obj["metadata"].get("deletionTimestamp"):
                obj = copy.deepcopy(obj)
                obj["metadata"]["deletionTimestamp"] = _now()
                obj["metadata"]["deletionGracePeriodSeconds"] = 0
                return self._store(kind, key, obj, "MODIFIED")
            return copy.deepcopy(obj)
        if policy == "Orphan":
            uid = obj["metadata"]["uid"]
            for k, o in list(self.objects.items()):
                refs = o["metadata"].get("ownerReferences") or []
                if any(r.get("uid") == uid for r in refs):
                    o = copy.deepcopy(o)
                    o["metadata"]["ownerReferences"] = [r for r in refs if r.get("uid") != uid]
                    self._store(_kind_by_plural(k[1]), k, o, "MODIFIED")
        out = copy.deepcopy(obj)
        self._remove(kind, key, out)
        return out

    def _collect_garbage(self) -> None:
        """Delete every object whose ownerReferences all point at objects that are gone."""
        uids = {(o["metadata"].get("namespace", CLUSTER), o["metadata"]["uid"])
                for o in self.objects.values()}
        for key, o in list(self.objects.items()):
            refs = o["metadata"].get("ownerReferences") or []
            # a namespaced owner counts only in the dependent's own namespace
            if refs and not any((key[2], r.get("uid")) in uids for r in refs) and key in self.objects:
                self._delete(_kind_by_plural(key[1]), key[2], key[3], "Background")

    def _list(self, kind: Kind, namespace: str | None, labels: str | None, fields: str | None
              ) -> list[dict[str, Any]]:
        lm, fm = label_matcher(labels), field_matcher(fields)
        return [copy.deepcopy(o) for (g, p, ns, _), o in sorted(self.objects.items())
                if g == kind.group and p == kind.plural and (namespace is None or ns == namespace)
                and lm(o["metadata"].get("labels") or {}) and fm(o)]

    def _watch(self, kind: Kind, namespace: str | None, labels: str | None, fields: str | None,
               since: str | None, timeout: float) -> Iterator[dict[str, Any]]:
        lm, fm = label_matcher(labels), field_matcher(fields)

        def matches(ev: Event) -> bool:
            o = ev.obj
            return (ev.kind == kind and (namespace is None or o["metadata"]["namespace"] == namespace)
                    and lm(o["metadata"].get("labels") or {}) and fm(o))

        deadline = time.monotonic() + timeout
        with self._lock:
            if since in (None, "", "0"):
                pending = [{"type": "ADDED", "object": o}
                           for o in self._list(kind, namespace, labels, fields)]
                cursor = self._rv
            else:
                cursor = int(since)
                oldest = self._events[0].rv if self._events else self._rv + 1
                pending = []
                if self._events and cursor < oldest - 1:
                    pending = [{"type": "ERROR", "object": ApiError(
                        410, "Expired", f"too old resource version: {since} ({oldest - 1})").body()}]
        yield from pending
        if pending and pending[0]["type"] == "ERROR":
            return
        while True:
            with self._lock:
                while not self._stopping and time.monotonic() < deadline and \
                        not (self._events and self._events[-1].rv > cursor):
                    self._lock.wait(min(0.2, max(deadline - time.monotonic(), 0.0)))
                if self._stopping or time.monotonic() >= deadline:
                    return
                fresh = [e for e in self._events if e.rv > cursor]
                cursor = fresh[-1].rv
            for ev in fresh:
                if matches(ev):
                    yield {"type": ev.type, "object": copy.deepcopy(ev.obj)}


def _kind_by_plural(plural: str) -> Kind:
    for k in KINDS:
        if k.plural == plural:
            return k
    raise KeyError(plural)


# -- HTTP ------------------------------------------------------------------------------------------

_PATH_RE = re.compile(
    r"^/(?:api/(?P<cv>v1)|apis/(?P<group>[^/]+)/(?P<version>[^/]+))"
    r"(?:/namespaces/(?P<ns>[^/]+))?/(?P<plural>[^/]+)(?:/(?P<name>[^/]+))?(?:/(?P<sub>[^/]+))?$"
)


def _discovery(path: str, crd_installed: bool = True) -> dict[str, Any] | None:
    kinds = [k for k in KINDS if crd_installed or not k.custom]
    if path == "/version":
        return {"major": "1", "minor": "35", "gitVersion": "v1.35.0-fake", "platform": "linux/amd64"}
    if path == "/api":
        return {"kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": HOST}]}
    if path == "/apis":
        groups = sorted({(k.group, k.version) for k in kinds if k.group})
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
            {"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v}],
             "preferredVersion": {"groupVersion": f"{g}/{v}", "version": v}} for g, v in groups]}
    m = re.match(r"^/(?:api/(v1)|apis/([^/]+)/([^/]+))$", path)
    if not m:
        return None
    group, version = ("", "v1") if m.group(1) else (m.group(2), m.group(3))
    served = [k for k in kinds if k.group == group and k.version == version]
    if not served:
        return None
    verbs = ["create", "delete", "get", "list", "patch", "update", "watch"]
    resources = []
    for k in served:
        resources.append({"name": k.plural, "singularName": k.singular, "namespaced": k.namespaced,
                          "kind": k.kind, "verbs": verbs, "shortNames": list(k.short_names)})
        for s in k.subresources:
            resources.append({"name": f"{k.plural}/{s}", "singularName": "", "namespaced": k.namespaced,
                              "kind": k.kind, "verbs": ["get", "patch", "update"]})
    if not group:  # discovery only (kopf looks for it); namespaces are not served as objects
        resources.append({"name": "namespaces", "singularName": "namespace", "namespaced": False,
                          "kind": "Namespace", "verbs": ["get", "list", "watch"]})
    return {"kind": "APIResourceList", "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version, "resources": resources}


def _flag(q: dict[str, list[str]], name: str) -> bool:
    return (q.get(name) or ["false"])[0].lower() in ("true", "1")


class _Handler(BaseHTTPRequestHandler):
    api: FakeApiServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: the request record is the log

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _body(self) -> Any:
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError as e:
            raise ApiError(400, "BadRequest", f"the request body is not JSON: {e}") from e

    def _send(self, code: int, payload: Any, content_type: str = "application/json") -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _serve(self, method: str) -> None:
        url = urlsplit(self.path)
        q = parse_qs(url.query)
        body = self._body() if method in ("POST", "PUT", "PATCH", "DELETE") else None
        disc = _discovery(url.path, self.api.crd_installed) if method == "GET" else None
        if disc is not None:
            with self.api._lock:
                self.api.requests.append(Request("get", "", "", None, url.path))
            self._send(200, disc)
            return
        m = _PATH_RE.match(url.path)
        kind = None
        if m:
            group = m.group("group") or ""
            version = m.group("version") or "v1"
            kind = next((k for k in KINDS if k.group == group and k.version == version
                         and k.plural == m.group("plural")), None)
        if kind is not None and kind.custom and not self.api.crd_installed:
            kind = None
        if m is None or kind is None or (m.group("sub") and m.group("sub") not in kind.subresources):
            self._send(404, b"404 page not found\n", "text/plain; charset=utf-8")
            return
        ns, name, sub = m.group("ns"), m.group("name"), m.group("sub")
        watch = method == "GET" and _flag(q, "watch")
        verb = {"GET": "watch" if watch else ("get" if name else "list"), "POST": "create",
                "PUT": "update", "PATCH": "patch",
                "DELETE": "delete" if name else "deletecollection"}[method]
        resource = f"{kind.plural}/{sub}" if sub else kind.plural
        auth = self.headers.get("Authorization") or ""
        token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else None
        try:
            with self.api._lock:
                user = (self.api.grants.get(token or "") or (None,))[0]
                self.api.requests.append(Request(verb, kind.group, resource, ns, name,
                                                 copy.deepcopy(body), user))
                self.api._authorize(token, verb, kind.group, resource, ns)
                if verb in ("create", "update") and ns is not None:
                    self.api._admit_owners(token, kind, ns, body)
                fault = self.api._take_fault(verb, resource)
            if fault is not None:
                reasons = {403: "Forbidden", 409: "Conflict", 429: "TooManyRequests",
                           500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout"}
                msg = (f'{resource} is forbidden: User "system:serviceaccount:test:actsearch" cannot '
                       f'{verb} resource "{kind.plural}" in API group "{kind.group}" in the '
                       f'namespace "{ns}"') if fault == 403 else f"injected fault {fault}"
                raise ApiError(fault, reasons.get(fault, "InternalError"), msg,
                               {"name": name, "group": kind.group, "kind": kind.plural})
            if watch:
                self._stream(kind, ns, q)
                return
            code, out = self._dispatch(method, kind, ns, name, sub, q, body)
        except ApiError as e:
            self._send(e.code, e.body())
            return
        if isinstance(out, str):
            self._send(code, out.encode(), "text/plain")
        else:
            self._send(code, out)

    def _dispatch(self, method: str, kind: Kind, ns: str | None, name: str | None, sub: str | None,
                  q: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        api = self.api
        strictness = (q.get("fieldValidation") or ["Warn"])[0]
        with api._lock:
            if method == "GET" and name is None:
                items = api._list(kind, ns, (q.get("labelSelector") or [None])[0],
                                  (q.get("fieldSelector") or [None])[0])
                return 200, {"kind": f"{kind.kind}List", "apiVersion": kind.api_version,
                             "metadata": {"resourceVersion": str(api._rv)}, "items": items}
            if not kind.namespaced:
                if ns is not None:
                    raise ApiError(404, "NotFound", f"{kind.plural} are not namespaced")
                ns = CLUSTER
            if ns is None:
                raise ApiError(405, "MethodNotAllowed", "the server does not allow this method "
                               "on the requested resource without a namespace")
            if method == "POST" and name is None:
                if not isinstance(body, dict):
                    raise ApiError(400, "BadRequest", "the request body must be an object")
                return 201, api._create(kind, ns, body, strictness)
            if name is None:
                raise ApiError(405, "MethodNotAllowed", f"{method} on a collection is not supported")
            if method == "GET":
                if sub == "log":
                    api._existing(kind, ns, name)
                    return 200, api.logs.get((ns, name), "")
                return 200, api._existing(kind, ns, name)
            if method == "DELETE":
                policy = (q.get("propagationPolicy") or [None])[0] or \
                    (body or {}).get("propagationPolicy") or "Background"
                return 200, api._delete(kind, ns, name, policy)
            if method == "PUT":
                if not isinstance(body, dict):
                    raise ApiError(400, "BadRequest", "the request body must be an object")
                return 200, api._update(kind, ns, name, sub, lambda old: body, strictness)
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            if ctype == "application/json-patch+json":
                if not isinstance(body, list):
                    raise ApiError(400, "BadRequest", "a JSON patch is a list of operations")
                return 200, api._update(kind, ns, name, sub, lambda old: json_patch(old, body),
                                        strictness)
            if ctype == "application/merge-patch+json" or (
                    ctype == "application/strategic-merge-patch+json" and not kind.custom):
                if not isinstance(body, dict):
                    raise ApiError(400, "BadRequest", "a merge patch is an object")
                return 200, api._update(kind, ns, name, sub, lambda old: merge_patch(old, body),
                                        strictness)
            raise ApiError(415, "UnsupportedMediaType",
                           f"the body of the request was in an unknown format - accepted media "
                           f"types include: application/json-patch+json, "
                           f"application/merge-patch+json (got {ctype!r})")

    def _stream(self, kind: Kind, ns: str | None, q: dict[str, list[str]]) -> None:
        timeout = float((q.get("timeoutSeconds") or ["1800"])[0])
        events = self.api._watch(kind, ns, (q.get("labelSelector") or [None])[0],
                                 (q.get("fieldSelector") or [None])[0],
                                 (q.get("resourceVersion") or [None])[0], timeout)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for ev in events:
                data = json.dumps(ev).encode() + b"\n"
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True
