"""What the operator tests need around the fake API server (no real API server runs here): the
operator in a thread, a stand-in for the Job controller and the children, and a thread-safe
in-memory tracker implementing the controller's Tracker protocol."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from orchestrator.adapters.retry import Backoff
from orchestrator.cluster.incluster import ClusterDefaults
from orchestrator.cluster.operator import OperatorConfig, run
from orchestrator.cluster.policy import ChildPolicy
from tests.k8s.conftest import CONTROLLER_TOKEN, NAMESPACE, client_for
from tests.k8s.fake_apiserver import FakeApiServer
from tests.unit.controller.fakes import FakeTracker, hashed_reward

FAST = Backoff(initial=0.05, factor=2.0, maximum=0.2, attempts=3)
SPACE = {"units": 1, "unary": ["id", "relu", "sin", "tanh", "neg"], "binary": ["add", "max", "mul"]}


class LockedTracker(FakeTracker):
    """FakeTracker with one lock: the operator's daemon thread and the simulated children
    share it."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.RLock()

    def __getattribute__(self, name: str) -> Any:
        attr = super().__getattribute__(name)
        if callable(attr) and not name.startswith("_") and name != "lock":
            lock = super().__getattribute__("lock")

            def locked(*a: Any, **kw: Any) -> Any:
                with lock:
                    return attr(*a, **kw)

            return locked
        return attr


def search_object(name: str = "s1", **spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "space": SPACE, "strategy": {"name": "random"}, "budget": {"trials": 4},
        "parallelism": 2, "generation": 4,
        "child": {"model": "mlp", "dataset": "digits", "steps": 10},
        "backend": {"kind": "kubernetes", "kubernetes": {"gpus": 1, "queue_name": "gpu-queue"}},
    }
    base.update(spec)
    return {"apiVersion": "actsearch.io/v1alpha1", "kind": "ActivationSearch",
            "metadata": {"name": name}, "spec": base}


def defaults(tracker: FakeTracker, store_root: str | None = None,
             make_store: Callable[[str, str | None], Any] | None = None,
             poll_interval: float = 0.05, policy: ChildPolicy | None = None) -> ClusterDefaults:
    """The operator's defaults around ``tracker`` and a local store under ``store_root``;
    ``policy``: the cluster's policy for searches (default: the strict default)."""
    from orchestrator.adapters.storage import LocalStore

    return ClusterDefaults(
        policy=policy or ChildPolicy(),
        tracking_uri="http://mlflow.test:5000", storage_uri="s3://checkpoints/searches",
        s3_endpoint="http://minio.test:9000", poll_interval=poll_interval, backoff=FAST,
        make_tracker=lambda uri, experiment, owner, trust: tracker,
        make_store=make_store or (lambda uri, endpoint: LocalStore(
            f"{store_root}/{uri.removeprefix('s3://')}")),
    )


@dataclass
class Children:
    """The Job controller and the children, simulated: a Job that is not held finishes after
    ``delay`` seconds, its child's result written to the tracker first (MLflow is the results
    bus) and then the Job's Complete condition; a pack's Job writes each member's result."""

    apiserver: FakeApiServer
    tracker: FakeTracker
    delay: float = 0.05
    hold: bool = False
    reward: Callable[[str], float] = hashed_reward
    record: Callable[[str, float], None] | None = None  # default: into ``tracker``
    finished: list[str] = field(default_factory=list)
    expressions: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _started: dict[tuple[str, str], float] = field(default_factory=dict)

    def _step(self) -> None:
        now = time.monotonic()
        for job in self.apiserver.items("jobs"):
            status = job.get("status") or {}
            name, ns = job["metadata"]["name"], job["metadata"]["namespace"]
            if any(c["type"] in ("Complete", "Failed") for c in status.get("conditions") or []):
                continue
            if not status:
                self.apiserver.set_status("jobs", ns, name, {
                    "active": 1, "startTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
                self._started[(ns, name)] = now
                continue
            if self.hold or now - self._started.get((ns, name), now) < self.delay:
                continue
            env = {e["name"]: e.get("value") for e in
                   job["spec"]["template"]["spec"]["containers"][0]["env"]}
            spec = json.loads(env["ACTSEARCH_TRIAL_SPEC"])
            members = spec["pack"] if "pack" in spec else [{**spec, "run_id": env["MLFLOW_RUN_ID"]}]
            for member in members:  # a pack's process logs each member into its own run
                reward = self.reward(member["expression"])
                if self.record is not None:
                    self.record(member["run_id"], reward)
                else:
                    self.tracker.record_outcome(member["run_id"], reward, None)
                self.expressions.append(member["expression"])
            self.apiserver.set_status("jobs", ns, name, {
                "succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]})
            self.finished.append(name)

    def _loop(self) -> None:
        while not self._stop.wait(0.02):
            self._step()

    @contextmanager
    def running(self) -> Iterator[Children]:
        t = threading.Thread(target=self._loop, name="children", daemon=True)
        t.start()
        try:
            yield self
        finally:
            self._stop.set()
            t.join(5)


@contextmanager
def operator_running(api_client: Any, cluster_defaults: ClusterDefaults,
                     namespaces: tuple[str, ...] = (NAMESPACE,), token: str = CONTROLLER_TOKEN,
                     **settings: Any) -> Iterator[None]:
    """The operator in a thread, as `actsearch-ctl operator` runs it, with the controller
    ServiceAccount's token (the fake holds it to ``orchestrator.cluster.rbac.RULES``, as the chart's
    Role would); stopped on exit. ``settings``: more ``OperatorConfig`` fields (``identity``,
    ``lease_seconds``, ``tick_workers``)."""
    stop, ready = threading.Event(), threading.Event()
    controller_client = client_for(api_client.configuration.host, token)
    config = OperatorConfig(controller_client, cluster_defaults, namespaces, **settings)
    errors: list[BaseException] = []

    def target() -> None:
        try:
            run(config, stop_flag=stop, ready_flag=ready)
        except BaseException as e:  # surfaced in the test's thread below
            errors.append(e)

    t = threading.Thread(target=target, name="operator", daemon=True)
    t.start()
    try:
        if not ready.wait(20):
            raise RuntimeError(f"the operator did not get ready within 20 s: {errors}")
        yield
    finally:
        stop.set()
        t.join(30)
        controller_client.close()
        if t.is_alive():
            raise RuntimeError("the operator did not stop within 30 s")
    if errors:
        raise errors[0]


def wait_for(check: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def status_of(apiserver: FakeApiServer, name: str = "s1") -> dict[str, Any]:
    obj = apiserver.get("activationsearches", NAMESPACE, name)
    return (obj or {}).get("status") or {}
