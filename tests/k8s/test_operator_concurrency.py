"""How many searches an operator drives, and how many operators drive a search: against the fake
API server of tests/k8s (real HTTP; no real API server can run here), with the children and the
Job controller simulated as in tests/k8s/harness.py and an in-memory tracker.

- One operator drives any number of searches: each search's loop is a coroutine whose blocking
  ticks share a small pool of threads, so 50 searches on an operator given 2 tick threads all
  progress to Succeeded (a thread per search used to cap an operator at min(32, CPUs + 4)).
- Two operators on the same namespace: every search is driven by exactly one (its Lease), seen
  in who wrote its status and created its Jobs; when one stops, the other takes its searches over
  and finishes them, each trial trained once.
- The Lease's own rules (expiry by the observer's clock, a 409 for the slower of two takers)
  over real HTTP, with a clock the test moves.
"""

from __future__ import annotations

import sys
import types
from collections import defaultdict
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from orchestrator.adapters.kube import Cluster
from orchestrator.cluster.lease import SearchLease, lease_name
from orchestrator.cluster.rbac import RULES
from tests.k8s.conftest import CONTROLLER_USER, NAMESPACE, client_for
from tests.k8s.fake_apiserver import FakeApiServer
from tests.k8s.harness import (
    FAST,
    Children,
    LockedTracker,
    defaults,
    operator_running,
    search_object,
    status_of,
    wait_for,
)

OTHER_TOKEN = "controller-b-token"
OTHER_USER = f"system:serviceaccount:{NAMESPACE}:actsearch-controller-b"


def succeeded(apiserver: FakeApiServer, names: list[str]) -> bool:
    return all(status_of(apiserver, n).get("phase") == "Succeeded" for n in names)


def trained_runs(tracker: LockedTracker) -> dict[str, list[str]]:
    """Trial ids of the trained runs, per search (the trial id starts with the search's name)."""
    out: dict[str, list[str]] = defaultdict(list)
    with tracker.lock:
        runs = list(tracker.runs.values())
    for r in runs:
        if r.tags.get("actsearch.source") == "trained":
            out[r.trial_id.rsplit("-t", 1)[0]].append(r.trial_id)
    return out


def skip_the_plot(monkeypatch: pytest.MonkeyPatch) -> None:
    """A finished search plots its best functions (matplotlib, seconds of CPU each on a loaded
    2-core machine; tested with the report itself): 50 plots would measure matplotlib, not the
    operator. The leaderboards are still written."""
    stub = types.ModuleType("orchestrator.space.plot")

    def plot_functions(exprs: Any, path: Path) -> Path:
        path.write_bytes(b"")
        return path

    stub.plot_functions = plot_functions  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "orchestrator.space.plot", stub)


@pytest.mark.controller_traffic
def test_one_operator_drives_fifty_searches_at_once_to_succeeded(
        apiserver: FakeApiServer, api_client: Any, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Two tick threads for 50 searches: with a thread held per search, 48 would never start."""
    skip_the_plot(monkeypatch)
    tracker = LockedTracker()
    names = [f"many-{i:02d}" for i in range(50)]
    for i, name in enumerate(names):  # children of distinct configurations: no cache hits
        apiserver.put_object("activationsearches", NAMESPACE, search_object(
            name, budget={"trials": 1}, generation=1, parallelism=1,
            child={"model": "mlp", "dataset": "digits", "steps": 10 + i}))
    children = Children(apiserver, tracker, delay=0.05)
    with children.running(), operator_running(
            api_client, defaults(tracker, str(tmp_path), poll_interval=1.0), tick_workers=2):
        wait_for(lambda: succeeded(apiserver, names), 420, "all 50 searches to succeed")
        wait_for(lambda: len(leaderboards(tracker)) == 50, 10, "their leaderboards")
    for name in names:
        final = status_of(apiserver, name)
        assert final["trialsDone"] == 1 and final["trialsFailed"] == 0, (name, final)
    per_search = trained_runs(tracker)
    assert sorted(per_search) == names
    assert all(len(ids) == 1 for ids in per_search.values())
    assert len(apiserver.items("jobs", NAMESPACE)) == 50


def leaderboards(tracker: LockedTracker) -> list[str]:
    with tracker.lock:
        return [run for run, name in tracker.texts if name == "leaderboard.md"]


def drivers(apiserver: FakeApiServer, requests: list[Any]) -> dict[str, set[str]]:
    """Per search, the users that wrote its status or created one of its Jobs."""
    out: dict[str, set[str]] = defaultdict(set)
    for r in requests:
        if r.verb == "patch" and r.resource == "activationsearches/status":
            out[r.name].add(r.user)
        elif r.verb == "create" and r.resource == "jobs":
            out[r.body["metadata"]["labels"]["actsearch.io/search"]].add(r.user)
    return out


def held_by(apiserver: FakeApiServer, names: list[str], identity: str) -> list[str]:
    """The searches whose Lease ``identity`` holds now."""
    out = []
    for name in names:
        lease = apiserver.get("leases", NAMESPACE, lease_name(name))
        if lease and lease.get("spec", {}).get("holderIdentity") == identity:
            out.append(name)
    return out


@pytest.mark.controller_traffic
def test_two_operators_drive_each_search_once_and_one_takes_over_when_the_other_stops(
        apiserver: FakeApiServer, api_client: Any, tmp_path: Path) -> None:
    apiserver.grants[OTHER_TOKEN] = (OTHER_USER, RULES)
    tracker = LockedTracker()
    names = [f"shared-{i}" for i in range(6)]
    for name in names:
        apiserver.put_object("activationsearches", NAMESPACE, search_object(
            name, budget={"trials": 6}, generation=2, parallelism=2))
    children = Children(apiserver, tracker, delay=0.4)
    settings = defaults(tracker, str(tmp_path), poll_interval=0.1)
    operator_a = operator_running(api_client, settings, identity="operator-a", lease_seconds=10)
    with children.running(), ExitStack() as stack:
        stack.enter_context(operator_a)
        # operator-b starts only once operator-a holds a Lease: on a loaded machine "ready" comes
        # before the first daemon ran, and operator-b could otherwise take every search itself
        wait_for(lambda: held_by(apiserver, names, "operator-a"), 60, "operator-a to hold a Lease")
        stack.enter_context(operator_running(api_client, settings, token=OTHER_TOKEN,
                                             identity="operator-b", lease_seconds=10))
        wait_for(lambda: all(status_of(apiserver, n).get("trialsDone", 0) >= 2
                             for n in names), 120, "every search to make progress")
        operator_a.__exit__(None, None, None)  # stops operator-a alone (it releases its Leases)
        with apiserver._lock:
            while_both = list(apiserver.requests)
        wait_for(lambda: succeeded(apiserver, names), 90, "operator-b to finish every search")
        with apiserver._lock:
            everything = list(apiserver.requests)
    both = drivers(apiserver, while_both)
    assert all(len(both[n]) == 1 for n in names), dict(both)  # one driver per search
    held_by_a = [n for n in names if both[n] == {CONTROLLER_USER}]
    assert held_by_a, "operator-a drove none of the searches: nothing was taken over"
    after = drivers(apiserver, everything[len(while_both):])
    for name in held_by_a:  # taken over by operator-b once operator-a stopped
        assert after[name] == {OTHER_USER}, (name, after[name])
    per_search = trained_runs(tracker)
    for name in names:
        assert status_of(apiserver, name)["trialsDone"] == 6
        assert len(per_search[name]) == len(set(per_search[name])) == 6  # no trial trained twice
    jobs = [j["metadata"]["name"] for j in apiserver.items("jobs", NAMESPACE)]
    assert len(jobs) == len(set(jobs)) == 36  # one Job per trial
    created = [r.body["metadata"]["name"] for r in everything
               if r.verb == "create" and r.resource == "jobs"]
    assert sorted(set(created)) == sorted(jobs)
    for name in names:
        lease = apiserver.get("leases", NAMESPACE, lease_name(name))
        assert lease is not None
        assert lease["metadata"]["ownerReferences"][0]["name"] == name


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_lease_is_taken_over_only_after_its_holder_stopped_renewing_it(
        apiserver: FakeApiServer) -> None:
    search = apiserver.put_object("activationsearches", NAMESPACE, search_object("leased"))
    uid = search["metadata"]["uid"]
    with client_for(apiserver.url, "admin") as api:
        cluster = Cluster(api, FAST)
        clock_a, clock_b = Clock(), Clock()
        a = SearchLease(cluster, NAMESPACE, "leased", "a", uid, duration=30, clock=clock_a)
        b = SearchLease(cluster, NAMESPACE, "leased", "b", uid, duration=30, clock=clock_b)
        assert a.held() and not b.held()
        clock_a.now = clock_b.now = 20.0  # a renews (a third of its duration passed)
        assert a.held() and not b.held()
        clock_b.now = 45.0  # b saw it change at 20 s: 25 s without renewal is not expiry
        assert not b.held()
        clock_b.now = 51.0  # 31 s since b last saw it renewed: expired
        assert b.held()
        assert apiserver.get("leases", NAMESPACE, "actsearch-leased")["spec"]["holderIdentity"] == "b"
        clock_a.now = 31.0  # a looks again (its renewal is due) and finds it taken
        assert not a.held()
        lease = apiserver.get("leases", NAMESPACE, "actsearch-leased")["spec"]
        assert lease["holderIdentity"] == "b" and lease["leaseTransitions"] == 1
        b.release()  # a clean stop: a peer may take it at once
        assert apiserver.get("leases", NAMESPACE, "actsearch-leased")["spec"].get(
            "holderIdentity") is None
        assert a.held()


def test_of_two_operators_taking_a_released_lease_one_gets_it(
        apiserver: FakeApiServer, monkeypatch: pytest.MonkeyPatch) -> None:
    search = apiserver.put_object("activationsearches", NAMESPACE, search_object("raced"))
    with client_for(apiserver.url, "admin") as api:
        cluster = Cluster(api, FAST)
        a, b, c = (SearchLease(cluster, NAMESPACE, "raced", who, search["metadata"]["uid"],
                               duration=30, clock=Clock()) for who in "abc")
        assert a.held()
        a.release()
        stale = cluster.read_lease(NAMESPACE, lease_name("raced"))
        assert b.held()  # b takes it...
        # ...while c works from the version read before b's write: its replace gets a 409
        monkeypatch.setattr(cluster, "read_lease", lambda ns, name: stale)
        assert not c.held()
        monkeypatch.undo()
        assert apiserver.get("leases", NAMESPACE, "actsearch-raced")["spec"]["holderIdentity"] == "b"
        apiserver.delete_object("activationsearches", NAMESPACE, "raced")
        assert apiserver.get("leases", NAMESPACE, "actsearch-raced") is None  # owned: collected
