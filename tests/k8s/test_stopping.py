"""Early stopping with the Kubernetes backend (``orchestrator.loop.stopping`` over
``KubernetesBackend``): the Job of a child the rule stops is deleted, a pack's Job only once
every member is stopped. Against the fake API server of tests/k8s (real HTTP, the API's
semantics; no real API server runs here); the children's curves come from a stand-in for MLflow
that serves metric histories (the real one is tested in tests/integration/test_early_stopping.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrator.loop.index import TrialIndex
from orchestrator.loop.stopping import stop_early
from orchestrator.loop.trials import Trial
from orchestrator.search.base import Candidate, Result
from orchestrator.space import encode, parse
from orchestrator.spec import parse_spec
from tests.k8s.conftest import NAMESPACE
from tests.k8s.fake_apiserver import FakeApiServer
from tests.k8s.test_backend import job_of, launch_of, make_backend, make_search, pack_launch_of

SPEC = parse_spec({"name": "s1", "child": {"steps": 400, "eval_every": 100},
                   "early_stopping": {"rule": "median", "min_trials": 3}})
GOOD, BAD = {100: 0.80, 200: 0.85, 300: 0.88, 400: 0.90}, {100: 0.30}


class Curves:
    """What the controller asks MLflow for: metric histories by run, and stopped runs."""

    def __init__(self, histories: dict[str, Mapping[int, float]]) -> None:
        self.histories = histories
        self.stopped: dict[str, int] = {}

    def metric_history(self, run_id: str, key: str) -> Mapping[int, float]:
        assert key == "val_accuracy"
        return self.histories[run_id]

    def stop_run(self, run_id: str, step: int) -> None:
        self.stopped[run_id] = step


def trial(index: int, state: str, launch: str | None = None) -> Trial:
    expr = "max(id(x), relu(x))"
    return Trial(f"s1-t{index:05d}", index, Candidate(encode(parse(expr)), expr, 0.0, 0),
                 f"fp{index}", state, run_id=f"run-{index}", launch_id=launch, launches=1)


def complete(t: Trial, reward: float | None, failure: str | None) -> list[Result]:
    t.reward, t.failure, t.state = reward, failure, "done"
    return [t.result]


def test_the_job_of_a_stopped_child_is_deleted_and_a_pack_only_when_every_member_is(
        apiserver: FakeApiServer, api_client: Any) -> None:
    backend = make_backend(api_client, make_search(apiserver))
    backend.launch(launch_of("s1-t00000"))
    backend.launch(pack_launch_of("s1-p00004", first=4, size=2))
    trials = [trial(1, "done"), trial(2, "done"), trial(3, "done"),  # ended: the history
              trial(0, "launched", "s1-t00000"),
              trial(4, "launched", "s1-p00004"), trial(5, "launched", "s1-p00004")]
    curves = Curves({"run-0": BAD, "run-1": GOOD, "run-2": GOOD, "run-3": GOOD, "run-4": BAD,
                     "run-5": {100: 0.82}})
    checkpoints: list[int] = []
    index = TrialIndex.of(trials)
    results = stop_early(SPEC, index, curves, backend, complete,  # type: ignore[arg-type]
                         lambda: checkpoints.append(1))
    lone, pack = job_of(apiserver, "s1-t00000"), job_of(apiserver, "s1-p00004")
    assert [r.reward for r in results] == [0.30] and checkpoints == [1]
    assert apiserver.get("jobs", NAMESPACE, lone) is None  # deleted
    assert apiserver.get("jobs", NAMESPACE, pack) is not None  # one member is worth training
    assert curves.stopped == {"run-0": 100}
    assert (trials[3].state, trials[3].stopped_at, trials[3].stop_pending) == ("done", 100, False)
    assert trials[4].state == "launched" and trials[4].stopped_at is None

    curves.histories["run-5"] = {100: 0.82, 200: 0.31}  # now below the median too
    curves.histories["run-4"] = {100: 0.30, 200: 0.32}
    results = stop_early(SPEC, index, curves, backend, complete,  # type: ignore[arg-type]
                         lambda: checkpoints.append(2))
    assert apiserver.get("jobs", NAMESPACE, pack) is None
    assert curves.stopped == {"run-0": 100, "run-4": 200, "run-5": 200}
    assert sorted(r.reward or 0 for r in results) == [0.31, 0.32]
    assert [r.verb for r in apiserver.calls(resource="jobs")] == ["create", "create", "delete",
                                                                  "delete"]
