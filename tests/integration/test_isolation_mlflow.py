"""Searches kept apart on one real MLflow server (tests/conftest.py): runs are found by the
search's uid, never by its name alone, and the evaluation cache reuses only results this
installation's controller sealed (``orchestrator.trust``), in the scope it was given."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from orchestrator.adapters.tracking import MlflowTracker
from orchestrator.contract import Tag
from orchestrator.identity import SearchIdentity
from orchestrator.trust import Trust
from tests.servers import Server

KEY = b"k" * 32
FP, CFG = "0123456789abcdef", "fedcba9876543210"


def tracker(server: Server, experiment: str, owner: SearchIdentity | None,
            trust: Trust | None = None) -> MlflowTracker:
    return MlflowTracker(server.url, experiment, owner=owner, trust=trust)


def child_logs(client: MlflowClient, run_id: str, reward: float) -> None:
    """What actsearch-train does at the end: the reward, then the run ended."""
    client.log_metric(run_id, "val_accuracy", reward)
    client.set_terminated(run_id, "FINISHED")


def trained(t: MlflowTracker, client: MlflowClient, search: str, reward: float,
            trial: str = "t00000") -> str:
    """A trial of ``search`` trained by its child and settled (sealed) by its controller."""
    parent = t.start_search(search, {"name": search})
    run_id = t.create_trial_run(search, parent, f"{search}-{trial}",
                                {Tag.FINGERPRINT: FP, Tag.CONFIG_HASH: CFG})
    child_logs(client, run_id, reward)
    t.vouch(run_id, FP, CFG, reward, None)
    return run_id


def test_two_searches_of_one_name_in_two_namespaces_share_no_run(
        mlflow_env: dict[str, str], mlflow_server: Server) -> None:
    """The finding: with the name as the key, B's ``s1-t00000`` was A's run, settled with A's
    reward. Now each has its own parent and trial runs."""
    client, exp = MlflowClient(mlflow_server.url), f"iso-{uuid.uuid4().hex[:8]}"
    a = SearchIdentity("s1", str(uuid.uuid4()), "team-a")
    b = SearchIdentity("s1", str(uuid.uuid4()), "team-b")
    ta, tb = tracker(mlflow_server, exp, a), tracker(mlflow_server, exp, b)
    run_a = trained(ta, client, "s1", 0.9)
    parent_b = tb.start_search("s1", {"name": "s1"})
    assert parent_b != ta.start_search("s1", {"name": "s1"})
    run_b = tb.create_trial_run("s1", parent_b, "s1-t00000", {})
    assert run_b != run_a
    assert client.get_run(run_b).info.status == "RUNNING"  # B's child has yet to train it
    assert set(tb.trial_runs("s1")) == {"s1-t00000"} and tb.trial_runs("s1")["s1-t00000"].run_id == run_b
    assert tb.ended_runs("s1", {"s1-t00000": None}) == {}  # A's finished run is not B's
    tags = client.get_run(run_b).data.tags
    assert (tags[Tag.SEARCH_UID], tags[Tag.NAMESPACE], tags[Tag.SEARCH]) == (b.uid, "team-b", "s1")
    # a restart of B finds B's own runs again, by its uid
    again = tracker(mlflow_server, exp, b)
    assert again.start_search("s1", {}) == parent_b
    assert again.create_trial_run("s1", parent_b, "s1-t00000", {}) == run_b


def test_two_users_of_one_server_running_the_same_name_locally_share_no_run(
        mlflow_env: dict[str, str], mlflow_server: Server) -> None:
    client, exp = MlflowClient(mlflow_server.url), f"iso-{uuid.uuid4().hex[:8]}"
    alice, bob = SearchIdentity.generate("quickstart"), SearchIdentity.generate("quickstart")
    run_a = trained(tracker(mlflow_server, exp, alice), client, "quickstart", 0.8)
    tb = tracker(mlflow_server, exp, bob)
    parent = tb.start_search("quickstart", {})
    assert tb.create_trial_run("quickstart", parent, "quickstart-t00000", {}) != run_a
    assert client.get_run(parent).data.tags[Tag.SEARCH_UID] == bob.uid


@pytest.mark.parametrize(("scope", "reused"), [("namespace", False), ("installation", True)])
def test_the_cache_reuses_sealed_results_in_its_scope_only(
        mlflow_env: dict[str, str], mlflow_server: Server, scope: str, reused: bool) -> None:
    client, exp = MlflowClient(mlflow_server.url), f"iso-{uuid.uuid4().hex[:8]}"
    a = SearchIdentity("s1", str(uuid.uuid4()), "team-a")
    run_a = trained(tracker(mlflow_server, exp, a, Trust(KEY, "team-a")), client, "s1", 0.9)
    same_ns = tracker(mlflow_server, exp, SearchIdentity("s2", str(uuid.uuid4()), "team-a"),
                      Trust(KEY, "team-a", "namespace"))
    hit = same_ns.cached_result(FP, CFG)
    assert hit is not None and hit.run_id == run_a and hit.reward == pytest.approx(0.9)
    other = tracker(mlflow_server, exp, SearchIdentity("s3", str(uuid.uuid4()), "team-b"),
                    Trust(KEY, "team-b", scope))  # type: ignore[arg-type]
    got = other.cached_result(FP, CFG)
    assert (got is not None and got.run_id == run_a) is reused
    stranger = tracker(mlflow_server, exp, SearchIdentity("s4", str(uuid.uuid4()), "team-a"),
                       Trust(b"another installation", "team-a", scope))  # type: ignore[arg-type]
    assert stranger.cached_result(FP, CFG) is None  # another key: not this installation's


def test_results_the_controller_did_not_seal_are_never_reused(
        mlflow_env: dict[str, str], mlflow_server: Server) -> None:
    """A child (or anyone reaching MLflow) can write any tag and metric on a run: an unsealed
    result, a seal copied from another run, and a reward changed after sealing are all
    ignored; without a key the cache reuses nothing."""
    client, exp = MlflowClient(mlflow_server.url), f"iso-{uuid.uuid4().hex[:8]}"
    owner = SearchIdentity("s1", str(uuid.uuid4()), "team-a")
    trust = Trust(KEY, "team-a")
    t = tracker(mlflow_server, exp, owner, trust)
    parent = t.start_search("s1", {})
    reader = tracker(mlflow_server, exp, SearchIdentity("s2", str(uuid.uuid4()), "team-a"), trust)

    forged = t.create_trial_run("s1", parent, "s1-t00001",
                                {Tag.FINGERPRINT: FP, Tag.CONFIG_HASH: CFG})
    client.set_tag(forged, Tag.TRUST, "v1:" + "0" * 64)  # what a child could write
    child_logs(client, forged, 0.99)
    assert reader.cached_result(FP, CFG) is None

    honest = trained(t, client, "s1", 0.5, "t00002")
    assert reader.cached_result(FP, CFG).run_id == honest  # type: ignore[union-attr]
    client.set_tag(forged, Tag.TRUST, client.get_run(honest).data.tags[Tag.TRUST])  # copied seal
    assert reader.cached_result(FP, CFG).run_id == honest  # type: ignore[union-attr]

    client.log_metric(honest, "val_accuracy", 0.99)  # the child rewrites its reward afterwards
    assert reader.cached_result(FP, CFG) is None
    assert tracker(mlflow_server, exp, owner, None).cached_result(FP, CFG) is None


def test_a_local_search_keeps_its_uid_across_resumes_and_another_folder_gets_another(
        mlflow_env: dict[str, str], mlflow_server: Server, tmp_path: Path) -> None:
    """On one machine the uid is generated when a search starts and kept in its checkpoint:
    ``run --resume`` finds its own parent run again; the same name run from another folder (or
    by another user of the server) is another search."""
    from orchestrator.embedded import build_controller
    from orchestrator.spec import SearchSpec

    spec = SearchSpec.model_validate({
        "name": "local-iso", "tracking": {"experiment": f"iso-{uuid.uuid4().hex[:8]}"},
        "child": {"model": "mlp", "dataset": "digits", "steps": 5}})
    first = build_controller(spec, tmp_path / "alice")
    first.start(resume=False)
    first.checkpoint()
    again = build_controller(spec, tmp_path / "alice", resume=True)
    again.start(resume=True)
    assert again.identity == first.identity and again.parent_run_id == first.parent_run_id
    other = build_controller(spec, tmp_path / "bob")
    other.start(resume=False)
    assert first.identity is not None and other.identity is not None
    assert other.identity.uid != first.identity.uid
    assert other.parent_run_id != first.parent_run_id
    assert (tmp_path / "alice" / "trust.key").read_bytes() != (tmp_path / "bob" / "trust.key").read_bytes()
