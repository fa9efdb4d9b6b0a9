"""Polling against a real MLflow server on 127.0.0.1 (the session fixture in tests/conftest.py):
a poll (``MlflowTracker.ended_runs``) reads the runs in flight and nothing else, so what it costs
the server (requests made, runs read back, as the adapter counts them) does not grow with the
trials a search already settled. Counts, not times: they hold on any machine."""

from __future__ import annotations

import uuid

import pytest

from orchestrator.adapters import tracking
from orchestrator.adapters.tracking import MlflowTracker
from orchestrator.contract import Tag
from tests.servers import Server


def _tracker(mlflow_server: Server) -> tuple[MlflowTracker, str, str]:
    tracker = MlflowTracker(mlflow_server.url, f"polling-{uuid.uuid4().hex[:8]}")
    search = "polled"
    return tracker, search, tracker.start_search(search, {"name": search})


def _finish(tracker: MlflowTracker, run_id: str, accuracy: float) -> None:
    tracker.client.log_metric(run_id, tracking.REWARD_METRIC, accuracy)
    tracker.client.set_terminated(run_id, "FINISHED")


def _cost(tracker: MlflowTracker, search: str, runs: dict[str, str | None]
          ) -> tuple[int, int, list[str]]:
    requests, read = tracker.requests, tracker.runs_read
    found = tracker.ended_runs(search, runs)
    return tracker.requests - requests, tracker.runs_read - read, sorted(found)


def test_a_polls_cost_follows_the_runs_in_flight_not_the_settled_ones(
        mlflow_server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    tracker, search, parent = _tracker(mlflow_server)
    in_flight = {f"polled-t{i:05d}": tracker.create_trial_run(search, parent, f"polled-t{i:05d}", {})
                 for i in range(4)}
    before = _cost(tracker, search, dict(in_flight))
    assert before == (1, 0, [])  # one request; runs still RUNNING are not even sent back

    for i in range(4, 104):  # a hundred trials settle meanwhile
        run_id = tracker.create_trial_run(search, parent, f"polled-t{i:05d}", {})
        _finish(tracker, run_id, 0.5)
    assert _cost(tracker, search, dict(in_flight)) == before

    _finish(tracker, in_flight["polled-t00001"], 0.9)
    tracker.mark_failed(in_flight["polled-t00002"], "crashed: OOMKilled")
    requests, read, ended = _cost(tracker, search, dict(in_flight))
    assert (requests, read, ended) == (1, 2, ["polled-t00001", "polled-t00002"])
    runs = tracker.ended_runs(search, dict(in_flight))
    assert runs["polled-t00001"].reward == 0.9 and runs["polled-t00001"].failure is None
    assert runs["polled-t00002"].failure == "crashed: OOMKilled"
    assert runs["polled-t00001"].run_id == in_flight["polled-t00001"]


def test_a_poll_pages_its_run_ids_and_skips_runs_that_do_not_exist(
        mlflow_server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    monkeypatch.setattr(tracking, "POLL_PAGE", 3)
    tracker, search, parent = _tracker(mlflow_server)
    runs: dict[str, str | None] = {}
    for i in range(5):
        runs[f"polled-t{i:05d}"] = run_id = tracker.create_trial_run(
            search, parent, f"polled-t{i:05d}", {})
        _finish(tracker, run_id, 0.1 * i)
    tracker.client.delete_run(runs["polled-t00004"])  # deleted: as good as gone
    runs["polled-t00005"] = uuid.uuid4().hex  # a run id the server never had
    requests, read, ended = _cost(tracker, search, runs)
    assert requests == 2  # six run ids, three a page
    assert read == 4 and ended == [f"polled-t{i:05d}" for i in range(4)]


def test_a_trial_without_a_run_id_is_found_by_its_tag(
        mlflow_server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    tracker, search, parent = _tracker(mlflow_server)
    run_id = tracker.create_trial_run(search, parent, "polled-t00000", {Tag.FINGERPRINT: "f" * 16})
    assert tracker.ended_runs(search, {"polled-t00000": None}) == {}
    _finish(tracker, run_id, 0.75)
    found = tracker.ended_runs(search, {"polled-t00000": None})
    assert found["polled-t00000"].run_id == run_id and found["polled-t00000"].reward == 0.75
