"""A packed benchmark against the fakes of test_runner: cells of one model and data set share
packs of up to ``packing`` (seeds mixed, a key's last pack partial), ``parallelism`` counts
packs, a diverged member fails alone, a lost pack goes again with its undone members under its
id, and a resumed benchmark keeps its packs; ``packing`` 1 launches single children as before."""

from __future__ import annotations

import json

import pytest

from orchestrator.adapters.storage import LocalStore
from orchestrator.backends.base import Launch
from orchestrator.benchmark.runner import BenchmarkProgress, BenchmarkRunner
from orchestrator.benchmark.spec import parse_benchmark
from tests.unit.benchmark.test_runner import SPEC, Backend, Tracker, accuracy, runner


def cells_of(r: BenchmarkRunner, model: str) -> list[str]:
    return [c.cell_id for c in r.cells if c.model == model]


def packs(backend: Backend) -> list[Launch]:
    assert all(launch.is_pack for launch in backend.history)
    return backend.history


def test_cells_of_one_model_and_dataset_share_packs_seeds_mixed_the_last_one_partial(tmp_path) -> None:  # type: ignore[no-untyped-def]
    tracker = Tracker()
    backend = Backend(tracker)
    r = runner(tracker, backend, LocalStore(tmp_path), packing=4)
    seen: list[BenchmarkProgress] = []
    final = r.run(on_progress=seen.append)
    # 3 activations × 2 models × 3 seeds; SELU diverges in every pack it is in, and alone
    assert final.finished and final.done == 18 and final.failed == 6

    by_id = {c.cell_id: c for c in r.cells}
    launches = packs(backend)
    # per model: 9 cells (seed by seed) in packs of 4, 4 and 1; packs in cell order
    mlp, cnn = cells_of(r, "mlp"), cells_of(r, "tiny_cnn")
    assert [launch.members for launch in launches] == [
        tuple(mlp[:4]), tuple(cnn[:4]), tuple(mlp[4:8]), tuple(cnn[4:8]), (mlp[8],), (cnn[8],)]
    assert {by_id[m].seed for m in launches[0].members} == {0, 1}  # seeds mixed in one pack
    for launch in launches:
        first = launch.members[0]
        assert launch.trial_id == "fake-p" + first[len("fake-"):]
        assert len(launch.trial_id) == len(first) + 1
        assert launch.run_id is None and "MLFLOW_RUN_ID" not in launch.env
        assert launch.env["MLFLOW_TRACKING_URI"] == "http://mlflow"
        members = launch.trial_spec["pack"]
        assert [m["trial"] for m in members] == list(launch.members)
        configs = [{k: v for k, v in m["child"].items() if k != "seed"} for m in members]
        assert all(c == configs[0] for c in configs)  # equal but for the seed
        for m in members:
            st = r.ledger[m["trial"]]
            assert m["run_id"] == st.run_id and st.launch_id == launch.trial_id
            assert st.launches == 1
            assert m["expression"] == by_id[m["trial"]].expression
            assert m["child"]["seed"] == by_id[m["trial"]].seed

    # parallelism counts processes: 2 packs at once, up to 8 cells
    assert backend.max_running == 2
    assert max(p.packs for p in seen) == 2 and max(p.running for p in seen) == 8
    assert any(p.running != p.packs for p in seen)

    res = r.results()  # per cell, from each cell's own run
    assert res.failures[("SELU", "mlp", "digits")] == 3
    relu = sorted(accuracy("max(relu(x), relu(x))", s) for s in range(3))
    assert res.summary("ReLU", ("tiny_cnn", "digits")).median == relu[1]


def test_packing_one_launches_each_cell_alone_as_before(tmp_path) -> None:  # type: ignore[no-untyped-def]
    tracker = Tracker()
    backend = Backend(tracker)
    r = runner(tracker, backend, LocalStore(tmp_path), packing=1)
    assert r.run().done == 18
    assert len(backend.history) == 18 and backend.max_running == 2
    for launch in backend.history:
        assert not launch.is_pack and "pack" not in launch.trial_spec
        assert "run_id" not in launch.trial_spec
        assert launch.env["MLFLOW_RUN_ID"] == launch.run_id == r.ledger[launch.trial_id].run_id
    assert [launch.trial_id for launch in backend.history] == [c.cell_id for c in r.cells]
    assert parse_benchmark(SPEC).packing == 1


def test_packing_is_validated() -> None:
    from orchestrator.errors import ConfigError

    for bad in (0, 65):
        with pytest.raises(ConfigError, match="packing"):
            parse_benchmark({**SPEC, "packing": bad})


def test_a_lost_pack_goes_again_under_its_id_with_its_undone_members_only(tmp_path) -> None:  # type: ignore[no-untyped-def]
    tracker = Tracker()
    backend = Backend(tracker)
    r = runner(tracker, backend, LocalStore(tmp_path), packing=4)
    r.start(resume=False)
    r.tick()
    first = backend.history[0]
    # one member ended its run before the process vanished (say, with its host)
    done_member = first.members[1]
    run = tracker.runs[r.ledger[done_member].run_id]
    run.status, run.metrics = "FINISHED", {"test_accuracy": 0.91}
    backend.lose.add(first.trial_id)
    r.tick()
    again = backend.history[2]
    assert again.trial_id == first.trial_id
    assert again.members == tuple(m for m in first.members if m != done_member)
    assert [m["run_id"] for m in again.trial_spec["pack"]] == [
        r.ledger[m].run_id for m in again.members]  # the same runs
    while not r.tick():
        pass
    assert r.ledger[done_member].value == 0.91 and r.ledger[done_member].launches == 1
    assert all(r.ledger[m].launches == 2 for m in again.members)
    assert r.progress().done == 18 and len(tracker.runs) == 18
    assert sum(len(launch.members) for launch in backend.history) == 18 + 3


def test_a_pack_that_exits_without_ending_a_members_run_fails_that_member_alone(tmp_path) -> None:  # type: ignore[no-untyped-def]
    tracker = Tracker()
    backend = Backend(tracker)
    r = runner(tracker, backend, LocalStore(tmp_path), packing=4)
    r.start(resume=False)
    victim = r.cells[0].cell_id  # ReLU, mlp, seed 0: in the first pack
    backend.abandon.add(victim)
    final = r.run()
    assert final.done == 18 and final.failed == 6 + 1
    st = r.ledger[victim]
    assert st.failure is not None and st.failure.startswith("crashed") and st.launches == 1
    assert tracker.runs[st.run_id].status == "FAILED"
    mates = [m for m in backend.history[0].members if m != victim]
    assert all(tracker.runs[r.ledger[m].run_id].status in ("FINISHED", "FAILED") for m in mates)
    assert [r.ledger[m].failure for m in mates] == [None, "nan", None]


def test_a_resumed_packed_benchmark_keeps_its_packs_and_never_trains_a_finished_cell_again(tmp_path) -> None:  # type: ignore[no-untyped-def]
    tracker, store = Tracker(), LocalStore(tmp_path)
    first_backend = Backend(tracker)
    first = runner(tracker, first_backend, store, packing=4)
    first.start(resume=False)
    for _ in range(4):  # two packs done, two in flight: then the runner dies
        first.tick()
    done_before = {k for k, v in first.ledger.items() if v.state == "done"}
    in_flight = {k: v.launch_id for k, v in first.ledger.items() if v.state == "launched"}
    assert len(done_before) == 8 and len(in_flight) == 8 and len(set(in_flight.values())) == 2
    # one in-flight member finishes while nobody watches: its run is FINISHED, the ledger stale
    finished_unseen = sorted(in_flight)[0]
    run = tracker.runs[first.ledger[finished_unseen].run_id]
    run.status, run.metrics = "FINISHED", {"test_accuracy": 0.9}
    saved = json.loads((tmp_path / "benchmark.json").read_text())
    assert {k: v["launch_id"] for k, v in saved["cells"].items() if k in in_flight} == in_flight

    second_backend = Backend(tracker)  # a fresh backend: the packs in flight are gone
    second = runner(tracker, second_backend, store, packing=4)
    final = second.run(resume=True)
    assert final.finished and final.done == 18
    relaunched = [m for launch in packs(second_backend) for m in launch.members]
    assert len(relaunched) == len(set(relaunched))
    assert not set(relaunched) & done_before and finished_unseen not in relaunched
    assert set(relaunched) == {c.cell_id for c in second.cells} - done_before - {finished_unseen}
    # the lost packs went again under their ids, with their undone members
    lost = set(in_flight.values())
    for launch in second_backend.history[:2]:
        assert launch.trial_id in lost
        assert set(launch.members) == {k for k, v in in_flight.items()
                                       if v == launch.trial_id} - {finished_unseen}
    assert len(tracker.runs) == 18  # one run per cell, none duplicated
    assert second.ledger[finished_unseen].value == 0.9


def test_a_pack_recorded_but_never_started_starts_with_the_same_members_after_a_restart(tmp_path) -> None:  # type: ignore[no-untyped-def]
    tracker, store = Tracker(), LocalStore(tmp_path)

    class Dies(Backend):
        def launch(self, launch: Launch) -> None:
            raise RuntimeError("killed between the checkpoint and the launch")

    first = runner(tracker, Dies(tracker), store, packing=4)
    first.start(resume=False)
    with pytest.raises(RuntimeError):
        first.tick()
    saved = json.loads((tmp_path / "benchmark.json").read_text())["cells"]
    recorded = {k: v["launch_id"] for k, v in saved.items() if v["launch_id"] is not None}
    assert len(recorded) == 8 and all(v["state"] == "queued" for v in saved.values())

    backend = Backend(tracker)
    second = runner(tracker, backend, store, packing=4)
    assert second.run(resume=True).done == 18
    for launch in backend.history[:2]:
        assert set(launch.members) == {k for k, v in recorded.items() if v == launch.trial_id}


def test_a_benchmark_resumed_with_other_packing_finishes_what_it_started(tmp_path) -> None:  # type: ignore[no-untyped-def]
    tracker, store = Tracker(), LocalStore(tmp_path)
    first = runner(tracker, Backend(tracker), store, packing=1)
    first.start(resume=False)
    first.tick()  # two single cells in flight, then the runner dies
    in_flight = {k for k, v in first.ledger.items() if v.state == "launched"}
    assert len(in_flight) == 2

    backend = Backend(tracker)  # they are gone: launched again, now in packs
    second = runner(tracker, backend, store, packing=4)
    assert second.run(resume=True).done == 18
    launches = packs(backend)
    assert sorted(m for launch in launches for m in launch.members) == sorted(
        c.cell_id for c in second.cells)
    assert all(launch.trial_id.startswith("fake-p") for launch in launches)
    assert len(tracker.runs) == 18
