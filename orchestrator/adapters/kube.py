"""The Kubernetes API adapter: client configuration, ActivationSearch objects, the Jobs of a
search, pod logs, and the translation of API errors into the project's errors. It is the only
module that imports the official ``kubernetes`` client; ``backends/kubernetes.py`` builds Job
manifests as plain dicts and sends them through ``Cluster``. kopf, which watches searches for
the operator, keeps its own connection (``orchestrator/cluster/operator.py``).

Clients are built by the entry points (``load_api_client``, then ``Cluster``) and passed in;
nothing here touches the network at import time.

Errors are split as everywhere in the project, in one place (``translate``): what retrying
cannot fix is a ``KubeError`` (a ``ConfigError``), typed where callers decide on it, and what
may pass is ``TemporaryUnavailable``, retried with backoff before it is raised:

======================================  =========================================
the API server's answer                 raised
======================================  =========================================
404 with a ``Status`` body              ``NotFound`` (the object does not exist)
404 without one                         ``CrdMissing`` (the server lacks the resource)
409, reason ``AlreadyExists``           ``AlreadyExists`` (a ``Conflict``)
409, any other reason                   ``Conflict`` (e.g. a stale resourceVersion)
401, 403, 422, any other 4xx            ``KubeError``
429, 500, 502, 503, 504, no connection  ``TemporaryUnavailable``
======================================  =========================================
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from orchestrator.adapters.retry import Backoff, retry
from orchestrator.errors import ActsearchError, ConfigError, TemporaryUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")
DEFAULT_BACKOFF = Backoff()

GROUP = "actsearch.io"
VERSION = "v1alpha1"
KIND = "ActivationSearch"
PLURAL = "activationsearches"
API_VERSION = f"{GROUP}/{VERSION}"
CONTROLLER_SELECTOR = "app.kubernetes.io/name=actsearch,app.kubernetes.io/component=controller"
"""Labels of the controller's pods (the chart's Deployment), for ``actsearch-ctl logs``."""
CANCEL_ANNOTATION = f"{GROUP}/cancel-requested"
"""Set on a search by ``actsearch-ctl cancel`` (its value: when): the operator deletes its
running Jobs, keeps its checkpoint and reports phase Cancelled."""

SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
CRD_MISSING = (
    "the ActivationSearch CRD is not installed in this cluster (the API server does not serve "
    f"{PLURAL}.{GROUP}/{VERSION}); install it with `helm install actsearch ./helm/actsearch` "
    "(or `kubectl apply -k manifests/`), then try again"
)


class KubeError(ConfigError):
    """A final answer of the API server: retrying the same request cannot change it. ``status``
    and ``reason`` are the HTTP status and the ``Status`` body's reason, when there was one."""

    def __init__(self, message: str, status: int | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class NotFound(KubeError):
    """The object does not exist (a 404 the API server explained with a ``Status`` body)."""


class SearchNotFound(NotFound):
    """No ActivationSearch of that name in that namespace."""


class CrdMissing(KubeError):
    """The API server does not serve ActivationSearch objects (a 404 without a ``Status``)."""


class Conflict(KubeError):
    """A 409: the write conflicts with the object's current state (a stale resourceVersion)."""


class AlreadyExists(Conflict):
    """A 409 answering a create: an object of that name is already there."""


def load_api_client(kubeconfig: str | None = None, context: str | None = None) -> Any:
    """An ``ApiClient`` from the in-cluster service account, else from the kubeconfig
    (``$KUBECONFIG`` or ``~/.kube/config``, current context unless one is named)."""
    from kubernetes import client, config

    if kubeconfig is None and context is None:
        try:
            config.load_incluster_config()
            return client.ApiClient()
        except config.ConfigException:
            pass
    cfg = client.Configuration()
    try:
        config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=cfg)
    except (config.ConfigException, OSError, TypeError) as e:
        raise ConfigError(
            "no Kubernetes configuration found: not running in a cluster, and the kubeconfig "
            f"could not be loaded ({e}); point KUBECONFIG at one or pass --kubeconfig"
        ) from e
    return client.ApiClient(cfg)


def current_namespace(kubeconfig: str | None = None, context: str | None = None) -> str:
    """The namespace of the in-cluster service account or of the kubeconfig's context."""
    from kubernetes import config

    if kubeconfig is None and context is None:
        try:
            with open(SERVICE_ACCOUNT_NAMESPACE) as f:
                return f.read().strip()
        except OSError:
            pass
    try:
        _, active = config.list_kube_config_contexts(config_file=kubeconfig)
        if context is not None:
            contexts, _ = config.list_kube_config_contexts(config_file=kubeconfig)
            active = next((c for c in contexts if c["name"] == context), active)
        return str((active or {}).get("context", {}).get("namespace") or "default")
    except (config.ConfigException, OSError, TypeError):
        return "default"


def is_transient(e: BaseException) -> bool:
    """5xx, 429 and connection trouble may pass; every other answer is final."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    if isinstance(e, ApiException):
        return e.status in (429, 500, 502, 503, 504)
    return isinstance(e, (HTTPError, ConnectionError, TimeoutError))


def _status_body(e: Any) -> dict[str, Any] | None:
    """The ``Status`` object an API error carries, if it carries one."""
    try:
        body = json.loads(e.body)
    except (TypeError, ValueError, AttributeError):
        return None
    return body if isinstance(body, dict) and body.get("kind") == "Status" else None


def api_message(e: Any) -> str:
    """The ``message`` of a Status body, else the HTTP reason."""
    return str((_status_body(e) or {}).get("message") or e.reason)


def translate(e: BaseException, what: str) -> ActsearchError:
    """An API error as the project's error (the table in the module's docstring), its message
    a sentence saying what failed, why and what to do about it."""
    from kubernetes.client.exceptions import ApiException

    if not isinstance(e, ApiException):
        return TemporaryUnavailable(f"{what}: the Kubernetes API server could not be reached "
                                    f"({type(e).__name__}: {str(e)[:300]})")
    status, body, message = e.status, _status_body(e), api_message(e)
    reason = str((body or {}).get("reason") or "")
    if status == 404 and body is None:
        return CrdMissing(CRD_MISSING, status, reason)
    if status == 404:
        return NotFound(f"{what}: not found (404): {message}", status, reason)
    if status == 409:
        kind = AlreadyExists if reason == "AlreadyExists" else Conflict
        return kind(f"{what} failed (409): {message}", status, reason)
    if status == 403:
        return KubeError(
            f"{what} was forbidden (403): the account in use lacks that RBAC permission; for the "
            f"controller, check the Role the chart installs. The API server said: {message}",
            status, reason)
    if status == 422:
        return KubeError(f"{what} was rejected as invalid (422): {message}", status, reason)
    if status == 401:
        return KubeError(f"{what} was not authenticated (401): the credentials of the "
                         f"kubeconfig were refused; log in again. {message}", status, reason)
    if is_transient(e):
        return TemporaryUnavailable(f"{what} failed ({status}): {message}")
    return KubeError(f"{what} failed ({status}): {message}", status, reason)


class Cluster:
    """ActivationSearch objects, Jobs and pod logs through one ``ApiClient``; transient errors
    are retried with ``backoff`` (``Backoff(attempts=1)`` for a command line that should fail
    fast), every other error is translated (``translate``)."""

    def __init__(self, api_client: Any, backoff: Backoff = DEFAULT_BACKOFF) -> None:
        from kubernetes import client

        self.api_client = api_client
        self.custom = client.CustomObjectsApi(api_client)
        self.core = client.CoreV1Api(api_client)
        self.batch = client.BatchV1Api(api_client)
        self.extensions = client.ApiextensionsV1Api(api_client)
        self.coordination = client.CoordinationV1Api(api_client)
        self.backoff = backoff

    def with_backoff(self, backoff: Backoff) -> Cluster:
        """The same connection, retried with another backoff (a search's Jobs outlive a
        command line's patience)."""
        return Cluster(self.api_client, backoff)

    @property
    def host(self) -> str:
        return str(self.api_client.configuration.host)

    def _call(self, fn: Callable[[], T], what: str) -> T:
        from kubernetes.client.exceptions import ApiException

        try:
            return retry(fn, what, is_transient, self.backoff)
        except TemporaryUnavailable as e:
            cause = e.__cause__
            if isinstance(cause, ApiException):
                raise TemporaryUnavailable(f"{e} (API server {self.host})") from cause
            raise TemporaryUnavailable(
                f"{what}: the Kubernetes API server at {self.host} could not be reached "
                f"({type(cause).__name__}); check the cluster and the kubeconfig's context"
            ) from cause
        except ApiException as e:
            raise translate(e, what) from e

    # -- searches -----------------------------------------------------------------------------

    def create_search(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create an ActivationSearch; ``AlreadyExists`` when one of that name is there."""
        name = body["metadata"]["name"]
        return self._call(
            lambda: self.custom.create_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, body),
            f"creating ActivationSearch {namespace}/{name}",
        )

    def replace_search(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        """Replace a search's object (its spec; the status subresource is untouched). The
        body's ``metadata.resourceVersion`` makes a concurrent edit a ``Conflict``, not a lost
        write."""
        name = body["metadata"]["name"]
        return self._call(
            lambda: self.custom.replace_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name, body),
            f"updating ActivationSearch {namespace}/{name}",
        )

    def get_search(self, namespace: str, name: str) -> dict[str, Any]:
        try:
            return self._call(
                lambda: self.custom.get_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, name),
                f"reading ActivationSearch {namespace}/{name}",
            )
        except NotFound as e:
            raise SearchNotFound(
                f"there is no ActivationSearch {name!r} in namespace {namespace!r}; "
                "`actsearch-ctl list` shows the searches there", e.status, e.reason) from e

    def list_searches(self, namespace: str | None) -> list[dict[str, Any]]:
        if namespace is None:
            found = self._call(
                lambda: self.custom.list_cluster_custom_object(GROUP, VERSION, PLURAL),
                "listing ActivationSearches in all namespaces",
            )
        else:
            found = self._call(
                lambda: self.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL),
                f"listing ActivationSearches in namespace {namespace}",
            )
        return list(found.get("items") or [])

    def delete_search(self, namespace: str, name: str) -> None:
        try:
            self._call(
                lambda: self.custom.delete_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, name, propagation_policy="Background"),
                f"deleting ActivationSearch {namespace}/{name}",
            )
        except NotFound as e:
            raise SearchNotFound(
                f"there is no ActivationSearch {name!r} in namespace {namespace!r}",
                e.status, e.reason) from e

    def annotate_search(self, namespace: str, name: str, annotations: dict[str, str | None]
                        ) -> dict[str, Any]:
        """Merge ``annotations`` into the search's metadata (None removes one); the spec, and so
        ``metadata.generation``, is untouched."""
        try:
            return self._call(
                lambda: self.custom.patch_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, name,
                    {"metadata": {"annotations": annotations}}),
                f"annotating ActivationSearch {namespace}/{name}",
            )
        except NotFound as e:
            raise SearchNotFound(
                f"there is no ActivationSearch {name!r} in namespace {namespace!r}; "
                "`actsearch-ctl list` shows the searches there", e.status, e.reason) from e

    def patch_search_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        """Merge ``status`` into the status subresource (the main object is untouched)."""
        self._call(
            lambda: self.custom.patch_namespaced_custom_object_status(
                GROUP, VERSION, namespace, PLURAL, name, {"status": status}),
            f"writing the status of ActivationSearch {namespace}/{name}",
        )

    # -- the CRD (cluster-scoped: a cluster administrator's rights) ----------------------------

    def read_crd(self, name: str) -> dict[str, Any] | None:
        """A CustomResourceDefinition as plain data, or None when there is none."""
        try:
            response = self._call(
                lambda: self.extensions.read_custom_resource_definition(
                    name, _preload_content=False),
                f"reading CustomResourceDefinition {name}")
        except NotFound:
            return None
        return dict(json.loads(response.data))

    def create_crd(self, body: dict[str, Any]) -> dict[str, Any]:
        name = body["metadata"]["name"]
        response = self._call(
            lambda: self.extensions.create_custom_resource_definition(
                body, _preload_content=False),
            f"creating CustomResourceDefinition {name}")
        return dict(json.loads(response.data))

    def replace_crd(self, body: dict[str, Any]) -> dict[str, Any]:
        """Replace a CRD; ``metadata.resourceVersion`` in ``body`` guards a concurrent edit."""
        name = body["metadata"]["name"]
        response = self._call(
            lambda: self.extensions.replace_custom_resource_definition(
                name, body, _preload_content=False),
            f"replacing CustomResourceDefinition {name}")
        return dict(json.loads(response.data))

    # -- leases: one driver per search (orchestrator/cluster/lease.py) ----------------------------

    def read_lease(self, namespace: str, name: str) -> dict[str, Any]:
        """A ``coordination.k8s.io/v1`` Lease as plain data; ``NotFound`` when there is none."""
        response = self._call(
            lambda: self.coordination.read_namespaced_lease(name, namespace,
                                                            _preload_content=False),
            f"read Lease {namespace}/{name}")
        return dict(json.loads(response.data))

    def create_lease(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create a Lease; ``AlreadyExists`` when one of that name is there."""
        name = body["metadata"]["name"]
        response = self._call(
            lambda: self.coordination.create_namespaced_lease(namespace, body,
                                                              _preload_content=False),
            f"create Lease {namespace}/{name}")
        return dict(json.loads(response.data))

    def replace_lease(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        """Replace a Lease; the ``metadata.resourceVersion`` in ``body`` makes a concurrent
        write a ``Conflict`` (two operators cannot both take it)."""
        name = body["metadata"]["name"]
        response = self._call(
            lambda: self.coordination.replace_namespaced_lease(name, namespace, body,
                                                               _preload_content=False),
            f"replace Lease {namespace}/{name}")
        return dict(json.loads(response.data))

    # -- jobs -----------------------------------------------------------------------------------

    def create_job(self, namespace: str, body: dict[str, Any]) -> None:
        """Create a ``batch/v1`` Job from its manifest; ``AlreadyExists`` (a ``Conflict``) when
        one of that name is there."""
        name = body["metadata"]["name"]
        self._call(lambda: self.batch.create_namespaced_job(namespace, body),
                   f"create Job {namespace}/{name}")

    def job(self, namespace: str, name: str) -> dict[str, Any]:
        """A Job with its status, as plain data; ``NotFound`` when there is none."""
        job = self._call(lambda: self.batch.read_namespaced_job_status(name, namespace),
                         f"read Job {namespace}/{name}")
        return dict(self.api_client.sanitize_for_serialization(job))

    def job_names(self, namespace: str, label_selector: str) -> list[str]:
        """The names of the Jobs matching ``label_selector``, sorted."""
        jobs = self._call(
            lambda: self.batch.list_namespaced_job(namespace, label_selector=label_selector),
            f"list Jobs ({label_selector}) in namespace {namespace}",
        )
        return sorted(j.metadata.name for j in jobs.items)

    def delete_job(self, namespace: str, name: str) -> None:
        """Delete a Job and, in the background, its pods; ``NotFound`` when it is gone."""
        self._call(
            lambda: self.batch.delete_namespaced_job(name, namespace,
                                                     propagation_policy="Background"),
            f"delete Job {namespace}/{name}",
        )

    def job_pods(self, namespace: str, job: str) -> list[dict[str, Any]]:
        """The pods of a Job (by the ``batch.kubernetes.io/job-name`` label the Job controller
        sets), as plain data."""
        found = self._call(
            lambda: self.core.list_namespaced_pod(
                namespace, label_selector=f"batch.kubernetes.io/job-name={job}"),
            f"list the pods of Job {namespace}/{job}",
        )
        return [dict(self.api_client.sanitize_for_serialization(p)) for p in found.items]

    def events_about(self, namespace: str, kind: str, name: str) -> list[dict[str, Any]]:
        """The core Events about one object (``FailedCreate`` on a Job, say), oldest first, as
        plain data."""
        found = self._call(
            lambda: self.core.list_namespaced_event(
                namespace, field_selector=f"involvedObject.kind={kind},involvedObject.name={name}"),
            f"list the Events of {kind} {namespace}/{name}",
        )
        events = [dict(self.api_client.sanitize_for_serialization(e)) for e in found.items]
        return sorted(events, key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))

    # -- pods -----------------------------------------------------------------------------------

    def pods(self, namespace: str, label_selector: str) -> list[Any]:
        found = self._call(
            lambda: self.core.list_namespaced_pod(namespace, label_selector=label_selector),
            f"listing pods ({label_selector}) in namespace {namespace}",
        )
        return sorted(found.items, key=lambda p: (p.metadata.creation_timestamp is None,
                                                  p.metadata.creation_timestamp, p.metadata.name))

    def pod_log(self, namespace: str, pod: str, tail: int | None = None) -> str:
        # The raw response, decoded here: the client (v36) turns a text body into the repr of
        # its bytes ("b'...'") when it deserializes it as `str`.
        kwargs: dict[str, Any] = {"tail_lines": tail} if tail else {}
        response = self._call(
            lambda: self.core.read_namespaced_pod_log(pod, namespace, _preload_content=False,
                                                      **kwargs),
            f"reading the log of pod {namespace}/{pod}",
        )
        return bytes(response.data).decode("utf-8", errors="replace")

    def follow_pod_log(self, namespace: str, pod: str, tail: int | None = None
                       ) -> Iterator[str]:
        """A pod's log line by line as it is written (``kubectl logs -f``), until the pod's
        container ends or the connection closes."""
        kwargs: dict[str, Any] = {"tail_lines": tail} if tail else {}
        response = self._call(
            lambda: self.core.read_namespaced_pod_log(pod, namespace, follow=True,
                                                      _preload_content=False, **kwargs),
            f"following the log of pod {namespace}/{pod}",
        )
        pending = b""
        try:
            for chunk in response.stream(4096):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    yield line.decode("utf-8", errors="replace") + "\n"
            if pending:
                yield pending.decode("utf-8", errors="replace")
        finally:
            response.release_conn()
