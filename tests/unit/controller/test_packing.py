"""Packing (``SearchSpec.packing``): several children trained side by side by one process. The
controller groups queued trials into packs, launches each pack once under a pack id, reads each
member's result from its own run, relaunches only the undone members of a lost pack, bounds the
processes (not the children) by ``parallelism`` and counts a pack's GPU-hours once."""

from __future__ import annotations

from pathlib import Path

from orchestrator.adapters.storage import dump_state, load_state
from orchestrator.backends.base import Launch
from orchestrator.loop.checkpoint import CHECKPOINT_KEY, encode
from orchestrator.loop.trials import DONE, LAUNCHED, QUEUED, Progress, Trial

from .test_controller import make_controller


def chunks(items: list[Trial], size: int) -> list[list[str]]:
    ids = [t.trial_id for t in items]
    return [ids[i:i + size] for i in range(0, len(ids), size)]


def queued_for_training(ctl) -> list[Trial]:
    return sorted((t for t in ctl.trials if t.state in (QUEUED, LAUNCHED)), key=lambda t: t.index)


def test_queued_trials_go_in_packs_of_packing_in_index_order_with_a_partial_last_one(
        tmp_path: Path) -> None:
    ctl, tracker, backend = make_controller(tmp_path, packing=4, parallelism=3, generation=7,
                                            budget={"trials": 40})
    ctl.start(resume=False)
    ctl.tick()
    trained = queued_for_training(ctl)
    assert 4 < len(trained) < 8, "the test needs one full pack and one partial pack"
    assert [list(launch.members) for launch in backend.launches] == chunks(trained, 4)
    for launch in backend.launches:
        first = ctl.trials[int(launch.members[0].rsplit("-t", 1)[1])]
        assert launch.trial_id == ctl.pack_id(first.index) == f"s1-p{first.index:05d}"
        assert launch.is_pack and launch.run_id is None
        assert launch.env == {"MLFLOW_TRACKING_URI": "fake://"}
        members = launch.trial_spec["pack"]
        assert [m["trial"] for m in members] == list(launch.members)
        for m in members:
            trial = next(t for t in ctl.trials if t.trial_id == m["trial"])
            assert trial.state == LAUNCHED and trial.launch_id == launch.trial_id
            assert m["run_id"] == trial.run_id and tracker.runs[trial.run_id].trial_id == m["trial"]
            assert m["expression"] == trial.candidate.expression
            assert m["child"] == ctl.spec.child.model_dump(mode="json")
    assert ctl.progress().packs == 2 and ctl.progress().running == len(trained)


def test_pack_specs_are_what_the_trainer_accepts(tmp_path: Path) -> None:
    from orchestrator.contract import PackSpec

    ctl, _, backend = make_controller(tmp_path, packing=5, generation=10)
    ctl.start(resume=False)
    ctl.tick()
    assert backend.launches
    for launch in backend.launches:
        spec = PackSpec.model_validate(launch.trial_spec)
        assert [m.trial for m in spec.pack] == list(launch.members)


def test_packing_1_launches_each_child_alone_as_before(tmp_path: Path) -> None:
    ctl, _, backend = make_controller(tmp_path, budget={"trials": 4})
    ctl.run()
    assert backend.launches
    for launch in backend.launches:
        trial = next(t for t in ctl.trials if t.trial_id == launch.trial_id)
        assert not launch.is_pack and launch.members == ()
        assert launch.run_id == trial.run_id
        assert launch.env == {"MLFLOW_RUN_ID": trial.run_id, "MLFLOW_TRACKING_URI": "fake://"}
        assert set(launch.trial_spec) == {"expression", "search", "trial", "experiment", "child",
                                          "fingerprint"}
        assert launch.trial_spec["fingerprint"] == trial.fingerprint
        assert trial.launch_id == trial.trial_id


def test_parallelism_counts_packs_not_children(tmp_path: Path) -> None:
    ctl, _, backend = make_controller(tmp_path, packing=3, parallelism=2, generation=12,
                                      budget={"trials": 18})
    seen: list[Progress] = []
    final = ctl.run(on_progress=seen.append)
    assert final.trained == 18
    assert backend.max_running == 2
    assert max(p.packs for p in seen) == 2
    assert max(p.running for p in seen) > 2


def test_the_trial_budget_caps_the_last_pack(tmp_path: Path) -> None:
    ctl, _, backend = make_controller(tmp_path, packing=4, parallelism=4, generation=10,
                                      budget={"trials": 5})
    final = ctl.run()
    assert final.trained == 5
    assert sum(len(launch.members) for launch in backend.launches) == 5
    assert sorted(len(launch.members) for launch in backend.launches) == [1, 4]


def test_a_diverged_member_fails_alone_and_its_pack_mates_succeed(tmp_path: Path) -> None:
    ctl, tracker, backend = make_controller(tmp_path, packing=4, generation=8,
                                            budget={"trials": 16})
    backend.reward = lambda expr: None if "mul" in expr else 0.9
    ctl.run()
    trained = [t for t in ctl.trials if t.source == "trained" and t.run_id is not None]
    assert len(trained) == 16
    reward = {t.trial_id: t.reward for t in trained}
    mixed = [launch for launch in backend.launches
             if {reward[m] for m in launch.members} == {None, 0.9}]
    assert mixed, "the test needs a pack with a diverged member and a successful one"
    for t in trained:
        assert t.state == DONE and t.launches == 1
        if "mul" in t.candidate.expression:
            assert t.failure == "nan" and tracker.runs[t.run_id].status == "FAILED"
        else:
            assert t.failure is None and t.reward == 0.9
            assert tracker.runs[t.run_id].status == "FINISHED"
    assert not [t for t in trained if (t.failure or "").startswith("crashed")]


def test_a_lost_pack_goes_again_with_its_undone_members_under_the_same_id(tmp_path: Path) -> None:
    ctl, tracker, backend = make_controller(tmp_path, packing=4, parallelism=1, generation=8)
    ctl.start(resume=False)
    ctl.tick()
    first = backend.launches[0]
    assert len(first.members) == 4
    members = [next(t for t in ctl.trials if t.trial_id == m) for m in first.members]
    diverged, rest = members[1], [members[0], *members[2:]]
    assert diverged.run_id is not None
    tracker.mark_failed(diverged.run_id, "nan")  # one member's run ended on its own...
    backend.running.pop(first.trial_id)  # ...then the pod was lost with the others'
    ctl.tick()
    again = backend.launches[1]
    assert again.trial_id == first.trial_id
    assert list(again.members) == [t.trial_id for t in rest]
    assert [m["run_id"] for m in again.trial_spec["pack"]] == [t.run_id for t in rest]
    assert diverged.state == DONE and diverged.failure == "nan" and diverged.launches == 1
    assert all(t.state == LAUNCHED and t.launches == 2 for t in rest)
    ctl.run()
    assert all(t.state == DONE and t.failure is None for t in rest)


def test_a_pack_lost_too_often_fails_its_members_as_crashed(tmp_path: Path) -> None:
    ctl, _, backend = make_controller(tmp_path, packing=3, budget={"trials": 6})
    backend.vanish = lambda expr: True
    ctl.run()
    trained = [t for t in ctl.trials if t.source == "trained" and t.state == DONE]
    assert len(trained) == 6
    for t in trained:
        assert t.launches == ctl.max_launches
        assert backend.launched.count(t.launch_id) == ctl.max_launches
        assert t.failure.startswith("crashed")


def test_gpu_hours_count_a_pack_once(tmp_path: Path) -> None:
    now = [0.0]
    ctl, _, backend = make_controller(tmp_path, packing=4, parallelism=2, generation=8,
                                      budget={"trials": 8})
    ctl.clock = lambda: now[0]
    ctl.start(resume=False)
    ctl.tick()
    assert len(backend.launches) == 2 and ctl.progress().running > 4
    now[0] = 3600.0
    assert ctl.gpu_hours() == 2.0  # two GPUs for an hour, not one per child
    first = [t for t in ctl.trials if t.launch_id == backend.launches[0].trial_id]
    first[0].state, first[0].finished = DONE, 1800.0  # a member settled early: its pack
    assert ctl.gpu_hours() == 2.0  # holds the device until the last member is done
    for t in first:
        t.state, t.finished = DONE, 1800.0
    assert ctl.gpu_hours() == 1.5


def test_the_gpu_hours_budget_buys_more_children_packed(tmp_path: Path) -> None:
    def trained(packing: int) -> int:
        now = [0.0]
        ctl, _, _ = make_controller(tmp_path / str(packing), packing=packing, parallelism=1,
                                    generation=8, budget={"trials": 64, "gpu_hours": 2.0})
        ctl.clock = lambda: now[0]
        ctl.sleep = lambda s: now.__setitem__(0, now[0] + 600.0)  # a tick is 10 minutes
        return ctl.run().trained

    assert trained(4) > 2 * trained(1)


def test_resume_re_attaches_running_packs_by_their_id(tmp_path: Path) -> None:
    part, tracker, backend = make_controller(tmp_path, packing=3, parallelism=2, generation=9)
    part.start(resume=False)
    part.tick()
    in_flight = {t.trial_id: t.launch_id for t in part.trials if t.state == LAUNCHED}
    assert len(set(in_flight.values())) == 2

    again, _, _ = make_controller(tmp_path, tracker=tracker, packing=3, parallelism=2,
                                  generation=9)
    again.backend = backend  # the processes outlived the controller
    again.start(resume=True)
    assert {t.trial_id: t.launch_id for t in again.trials if t.state == LAUNCHED} == in_flight
    final = again.run(resume=True)
    assert final.trained == 12
    assert len(backend.launched) == len(set(backend.launched))  # nothing launched twice


def test_resume_relaunches_lost_packs_and_never_trains_a_finished_trial_again(
        tmp_path: Path) -> None:
    part, tracker, _backend = make_controller(tmp_path, packing=3, parallelism=2, generation=9)
    part.start(resume=False)
    for _ in range(4):
        part.tick()
    in_flight = {t.trial_id: t.launch_id for t in part.trials if t.state == LAUNCHED}
    done_before = {t.trial_id for t in part.trials if t.state == DONE and t.source == "trained"}
    assert in_flight and done_before

    again, _, backend2 = make_controller(tmp_path, tracker=tracker, packing=3, parallelism=2,
                                         generation=9)
    final = again.run(resume=True)  # a fresh backend: the old processes died with the host
    assert final.trained == 12
    relaunched = {m: launch.trial_id for launch in backend2.launches for m in launch.members}
    assert not set(relaunched) & done_before
    assert {m: relaunched[m] for m in in_flight} == in_flight  # same members, same pack ids
    assert all(t.state == DONE or (t.state == QUEUED and t.run_id is None) for t in again.trials)
    assert sorted(tracker.trial_runs("s1")) == sorted(t.trial_id for t in again.trials if t.run_id)


def test_a_ledger_from_before_packing_loads_and_its_trials_re_attach_by_trial_id(
        tmp_path: Path) -> None:
    part, tracker, backend = make_controller(tmp_path, budget={"trials": 6})
    part.start(resume=False)
    part.tick()
    in_flight = [t.trial_id for t in part.trials if t.state == LAUNCHED]
    assert in_flight
    # a version-2 checkpoint (every trial in it), as written before packing had launch ids
    state = load_state(encode(part.spec, part.strategy.state_dict(), part.trials,
                              part.generations_logged))
    for t in state["trials"]:
        del t["launch_id"]
    part.store.put(CHECKPOINT_KEY, dump_state(state))

    again, _, _ = make_controller(tmp_path, tracker=tracker, budget={"trials": 6})
    again.backend = backend
    again.start(resume=True)
    assert all(t.launch_id is None for t in again.trials)
    assert [t.launch for t in again.trials if t.state == LAUNCHED] == in_flight
    assert again.run(resume=True).trained == 6
    assert len(backend.launched) == len(set(backend.launched))
    old = {k: v for k, v in again.trials[0].as_dict().items() if k != "launch_id"}
    assert Trial.from_dict(old).launch_id is None


def test_a_launch_without_members_is_not_a_pack() -> None:
    assert not Launch("s-t00000", "r", {"expression": "x"}).is_pack
    assert Launch("s-p00000", None, {"pack": []}, members=("s-t00000",)).is_pack


def test_progress_shows_running_children_and_the_packs_carrying_them(tmp_path: Path) -> None:
    from orchestrator.cli.run import _progress_table
    from orchestrator.cluster.incluster import progress_message

    ctl, _, _ = make_controller(tmp_path, packing=4, parallelism=3, generation=7,
                                budget={"trials": 40})
    ctl.start(resume=False)
    ctl.tick()
    p = ctl.progress()
    assert p.packs == 2 and p.running > 4
    assert f"{p.running} running in 2 pack Jobs" in progress_message(ctl)
    cells = [c for col in _progress_table(p, 0.0, "s1").columns for c in col._cells]
    assert f"{p.running} (in 2 packs) / 0" in cells


def test_packs_are_durable_before_their_process_starts(tmp_path: Path) -> None:
    """A controller killed between forming packs and starting them starts the same packs after
    a restart: a pack id always names the same members (its Job may exist already)."""

    class Killed(Exception):
        pass

    part, tracker, backend = make_controller(tmp_path, packing=3, parallelism=2, generation=9)

    def killed(launch: Launch) -> None:
        raise Killed

    backend.launch = killed  # type: ignore[method-assign]
    part.start(resume=False)
    try:
        part.tick()
    except Killed:
        pass
    formed = {t.trial_id: t.launch_id for t in part.trials if t.launch_id is not None}
    assert len(set(formed.values())) == 2

    again, _, backend2 = make_controller(tmp_path, tracker=tracker, packing=3, parallelism=2,
                                         generation=9)
    again.start(resume=True)
    again.tick()
    started = {m: launch.trial_id for launch in backend2.launches for m in launch.members}
    assert started == formed
