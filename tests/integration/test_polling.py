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
from orchestrator.trust import Trust
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


def _trial(tracker: MlflowTracker, search: str, parent: str, i: int, fingerprint: str,
           new: bool = False) -> str:
    return tracker.create_trial_run(search, parent, f"{search}-t{i:05d}", {
        Tag.FINGERPRINT: fingerprint, Tag.CONFIG_HASH: "c" * 16}, new=new)


def _settled(tracker: MlflowTracker, run_id: str, fingerprint: str, accuracy: float) -> None:
    """A child's result, sealed by its controller as it settles (the cache reuses only those)."""
    _finish(tracker, run_id, accuracy)
    tracker.vouch(run_id, fingerprint, "c" * 16, accuracy, None)


def test_the_evaluation_cache_reads_other_searches_once_then_only_what_ended_since(
        mlflow_server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tracking, "CACHE_OVERLAP_MS", 0)  # no margin for lagging clocks here
    tracker, search, parent = _tracker(mlflow_server)
    tracker.trust = Trust(b"k" * 32)
    other = tracker.start_search("other", {"name": "other"})
    for i in range(20):  # another search's results: reusable
        _settled(tracker, _trial(tracker, "other", other, i, f"{i:016x}"), f"{i:016x}", 0.5 + i / 100)
    _finish(tracker, _trial(tracker, search, parent, 0, "0" * 16), 0.1)  # this search's own
    wanted = {f"{i:016x}" for i in (0, 3, 25)}

    requests, read = tracker.requests, tracker.runs_read
    hits = tracker.cached_results(wanted, "c" * 16, search)
    assert tracker.requests - requests == 1 and tracker.runs_read - read == 20  # one page
    assert sorted(hits) == [f"{i:016x}" for i in (0, 3)]
    assert hits[f"{3:016x}"].reward == pytest.approx(0.53)  # the other search's, not ours

    _settled(tracker, _trial(tracker, "other", other, 25, f"{25:016x}"), f"{25:016x}", 0.9)
    requests, read = tracker.requests, tracker.runs_read
    hits = tracker.cached_results(wanted, "c" * 16, search)
    assert tracker.requests - requests == 1
    assert tracker.runs_read - read == 1  # what ended since the last question, not all again
    assert sorted(hits) == sorted(wanted) and hits[f"{25:016x}"].reward == 0.9


def test_a_new_trials_run_is_created_without_a_lookup_and_an_old_ones_is_found(
        mlflow_server: Server, mlflow_requests: list[str]) -> None:
    """Counted where MLflow's client sends each HTTP request (``rest_utils.http_request``)."""
    tracker, search, parent = _tracker(mlflow_server)
    sent = mlflow_requests
    sent.clear()  # counted from here: what the setup above sent is not the subject
    run_id = _trial(tracker, search, parent, 0, "f" * 16, new=True)
    assert [e.rsplit("/", 1)[-1] for e in sent] == ["create"]  # no search by tag first
    sent.clear()
    assert _trial(tracker, search, parent, 0, "f" * 16) == run_id  # find-or-create finds it
    assert [e.rsplit("/", 1)[-1] for e in sent] == ["search"]
    sent.clear()
    tracker.record_outcome(run_id, 0.5, None)
    assert [e.rsplit("/", 1)[-1] for e in sent] == ["log-batch", "update"]  # no read-back
    assert tracker.client.get_run(run_id).info.status == "FINISHED"


def test_runs_settled_without_training_cost_three_requests_each_and_hold_their_outcome(
        mlflow_server: Server, mlflow_requests: list[str]) -> None:
    """Create, one ``log_batch`` (``trial_index``, and the reward or the failure), end: what a
    screened, cached or duplicate trial costs the server (counted where MLflow's client sends
    each HTTP request)."""
    tracker, search, parent = _tracker(mlflow_server)
    sent = mlflow_requests
    sent.clear()  # counted from here: what the setup above sent is not the subject
    settled = [(f"{search}-t{i:05d}", {Tag.TRIAL_INDEX: str(i), Tag.FINGERPRINT: f"{i:016x}"},
                True, None if i % 2 else 0.25 * i, "screened: flat" if i % 2 else None)
               for i in range(4)]
    ids = tracker.create_settled_runs(search, parent, settled)
    assert sorted(e.rsplit("/", 1)[-1] for e in sent) == sorted(
        ["create", "log-batch", "update"] * 4)
    for i, run_id in enumerate(ids):
        run = tracker.client.get_run(run_id)
        assert run.data.tags[Tag.TRIAL] == f"{search}-t{i:05d}"
        assert run.data.metrics["trial_index"] == i
        if i % 2:
            assert run.info.status == "FAILED" and run.data.tags[Tag.FAILURE] == "screened: flat"
        else:
            assert run.info.status == "FINISHED" and run.data.metrics[tracking.REWARD_METRIC] == 0.25 * i
    assert set(tracker.ended_runs(search, {t[0]: i for t, i in zip(settled, ids, strict=True)})) == {
        t[0] for t in settled}


def test_a_poll_reads_the_same_runs_through_the_rest_endpoint_as_through_the_client(
        mlflow_server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """``adapters.mlflow_rest`` reads the JSON answer itself: the same trials, statuses, rewards,
    failures, NaN metrics and tags as MLflow's client makes of it."""
    monkeypatch.setenv("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    tracker, search, parent = _tracker(mlflow_server)
    runs: dict[str, str | None] = {}
    for i in range(4):
        runs[f"polled-t{i:05d}"] = run_id = _trial(tracker, search, parent, i, f"{i:016x}")
        tracker.client.log_metric(run_id, "val_loss", [0.5, float("nan"), float("inf"), -1.0][i])
    _finish(tracker, str(runs["polled-t00000"]), 0.75)
    tracker.mark_failed(str(runs["polled-t00001"]), "crashed: OOMKilled")
    _finish(tracker, str(runs["polled-t00002"]), float("nan"))
    by_json = tracker.ended_runs(search, runs)
    monkeypatch.setattr(tracking, "rest_store", lambda client: None)  # through the client
    by_client = tracker.ended_runs(search, runs)
    assert sorted(by_json) == ["polled-t00000", "polled-t00001", "polled-t00002"]
    for trial, run in by_client.items():
        mine = by_json[trial]
        assert (mine.run_id, mine.status, mine.failure, mine.tags, mine.fingerprint) == (
            run.run_id, run.status, run.failure, run.tags, run.fingerprint)
        assert str(mine.metrics) == str(run.metrics) and str(mine.reward) == str(run.reward)
