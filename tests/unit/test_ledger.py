"""The launch ledger on its own: its pure decisions (relaunch or fail, the crash failure, a run's
outcome, parallelism, GPU-hours of packs) and the ledger against a scripted backend and tracker,
with plain items whose records are all the state there is (so resuming is rebuilding them)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import pytest

from orchestrator.backends.base import ChildState, Launch
from orchestrator.contract import PACK_KEY
from orchestrator.loop.ledger import (
    DONE,
    LAUNCHED,
    QUEUED,
    Ledger,
    crash_failure,
    gpu_hours,
    is_crash,
    launch_of,
    launchable,
    next_step,
    pack_of,
    run_outcome,
    running_launches,
)

# -- pure decisions ------------------------------------------------------------------------------


@pytest.mark.parametrize("phase", ["queued", "running"])
def test_a_launch_still_queued_or_running_is_waited_for(phase: Any) -> None:
    assert next_step(phase, launches=3, max_launches=3) == "wait"


def test_a_lost_launch_goes_again_until_it_was_started_max_launches_times() -> None:
    assert next_step("missing", launches=1, max_launches=3) == "relaunch"
    assert next_step("missing", launches=2, max_launches=3) == "relaunch"
    assert next_step("missing", launches=3, max_launches=3) == "ended"


@pytest.mark.parametrize("phase", ["succeeded", "failed"])
def test_a_launch_whose_process_ended_is_settled_however_often_it_ran(phase: Any) -> None:
    assert next_step(phase, launches=1, max_launches=3) == "ended"


def test_a_crash_names_the_reason_and_the_exit_code_and_is_recognised_as_a_crash() -> None:
    oom = crash_failure(ChildState("failed", reason="OOMKilled", exit_code=137))
    assert oom == "crashed: OOMKilled (exit code 137)"
    silent = crash_failure(ChildState("succeeded", exit_code=0))
    assert silent == "crashed: child succeeded without logging a result (exit code 0)"
    assert crash_failure(ChildState("missing")) == "crashed: child missing without logging a result"
    assert is_crash(oom) and not is_crash("nan") and not is_crash(None)


def test_a_run_that_finished_with_its_metric_succeeds_and_any_other_ended_run_fails() -> None:
    assert run_outcome("FINISHED", 0.9, None) == (0.9, None)
    assert run_outcome("FINISHED", None, None) == (None, "run ended FINISHED")
    assert run_outcome("FAILED", 0.9, "nan") == (None, "nan")
    assert run_outcome("KILLED", None, None) == (None, "run ended KILLED")


def test_an_item_launched_alone_has_no_pack_and_its_launch_is_its_own_id() -> None:
    assert launch_of("s-t1", None) == "s-t1" and pack_of("s-t1", None) is None
    assert launch_of("s-t1", "s-t1") == "s-t1" and pack_of("s-t1", "s-t1") is None
    assert launch_of("s-t1", "s-p0") == "s-p0" and pack_of("s-t1", "s-p0") == "s-p0"


def test_parallelism_counts_processes_so_members_of_a_pack_count_once() -> None:
    assert running_launches(["p0", "p0", "p0", "t7"]) == 2
    groups = [["a"], ["b", "c"], ["d"]]
    assert launchable(groups, running=0, parallelism=2) == [["a"], ["b", "c"]]
    assert launchable(groups, running=1, parallelism=2) == [["a"]]
    assert launchable(groups, running=3, parallelism=2) == []


def test_gpu_hours_count_a_pack_once_from_its_first_start_to_its_last_members_end() -> None:
    hour = 3600.0
    pack = [("p0", 0.0, hour), ("p0", 0.0, 2 * hour), ("p0", 0.5 * hour, None)]
    assert gpu_hours(pack, now=3 * hour, gpus=2) == 6.0  # the last member still runs: until now
    alone = [("t1", hour, 2 * hour), ("t2", None, None)]  # t2 never started
    assert gpu_hours(alone, now=3 * hour, gpus=1) == 1.0
    assert gpu_hours(pack[:2] + alone, now=3 * hour, gpus=1) == 3.0


# -- the ledger ----------------------------------------------------------------------------------


@dataclass
class Rec:
    state: str = QUEUED
    run_id: str | None = None
    launches: int = 0
    launch_id: str | None = None
    started: float | None = None
    finished: float | None = None
    began: float | None = None


@dataclass
class Item:
    id: str
    key: str = "k"
    rec: Rec = field(default_factory=Rec)


@dataclass
class Run:
    run_id: str
    status: str = "RUNNING"
    failure: str | None = None
    value: float | None = None

    @property
    def done(self) -> bool:
        return self.status in ("FINISHED", "FAILED", "KILLED")


@dataclass
class Runs:
    """Runs by item id; ``after_first_read`` takes effect between two reads of one settle."""

    runs: dict[str, Run] = field(default_factory=dict)
    reads: int = 0
    after_first_read: dict[str, Run] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    asked: list[dict[str, str | None]] = field(default_factory=list)  # each poll's question

    def trial_runs(self, search: str) -> dict[str, Run]:
        raise AssertionError("a settle reads only the runs in flight, never every run")

    def ended_runs(self, search: str, runs: Mapping[str, str | None]) -> dict[str, Run]:
        self.reads += 1
        self.asked.append(dict(runs))
        if self.reads > 1:
            self.runs.update(self.after_first_read)
        return {k: r for k, r in self.runs.items() if k in runs and r.done}

    def mark_failed(self, run_id: str, reason: str) -> None:
        self.failed[run_id] = reason


@dataclass
class Backend:
    phases: dict[str, ChildState] = field(default_factory=dict)
    launches: list[Launch] = field(default_factory=list)
    looks: list[str] = field(default_factory=list)
    gpus_per_child: int = 1
    reports_start: bool = False

    def launch(self, launch: Launch) -> None:
        self.launches.append(launch)
        self.phases[launch.trial_id] = ChildState("running")

    def state(self, trial_id: str) -> ChildState:
        self.looks.append(trial_id)
        return self.phases.get(trial_id, ChildState("missing"))

    def cancel(self, trial_id: str) -> None:
        self.phases.pop(trial_id, None)

    def close(self) -> None:
        pass


def make_ledger(runs: Runs, backend: Backend, now: list[float] | None = None,
                max_launches: int = 3) -> Ledger[Item]:
    clock = now or [100.0]

    def trial_spec(item: Item) -> dict[str, Any]:
        item.rec.run_id = item.rec.run_id or f"run-{item.id}"
        return {"trial": item.id}

    return Ledger(name="s", noun="item", id_of=lambda i: i.id, record_of=lambda i: i.rec,
                  trial_spec=trial_spec, pack_id=lambda first: f"s-p{first.id}",
                  pack_key=lambda i: i.key, describe=lambda i: i.key, metric="value",
                  value_of=lambda run: run.value, tracker=runs, backend=backend,
                  tracking_uri="mlflow://", clock=lambda: clock[0], max_launches=max_launches)


def test_queued_items_launch_alone_without_packing_each_with_its_own_run() -> None:
    backend = Backend()
    ledger = make_ledger(Runs(), backend)
    items = [Item("a"), Item("b"), Item("c")]
    assert ledger.launch(items, parallelism=2, packing=1, checkpoint=lambda: None)
    assert [(x.trial_id, x.run_id, x.members) for x in backend.launches] == [
        ("a", "run-a", ()), ("b", "run-b", ())]
    assert backend.launches[0].env == {"MLFLOW_RUN_ID": "run-a", "MLFLOW_TRACKING_URI": "mlflow://"}
    a, b, c = (i.rec for i in items)
    assert (a.state, a.launch_id, a.launches, a.started) == (LAUNCHED, "a", 1, 100.0)
    assert b.state == LAUNCHED and c.state == QUEUED
    assert not ledger.launch(items, parallelism=2, packing=1, checkpoint=lambda: None)


def test_a_fresh_packs_ids_are_checkpointed_before_its_process_starts() -> None:
    backend = Backend()
    ledger = make_ledger(Runs(), backend)
    items = [Item("a", "m1"), Item("b", "m2"), Item("c", "m1"), Item("d", "m1")]
    seen: list[tuple[int, dict[str, str | None]]] = []
    ledger.launch(items, parallelism=5, packing=2, checkpoint=lambda: seen.append(
        (len(backend.launches), {i.id: i.rec.launch_id for i in items})))
    assert seen == [(0, {"a": "s-pa", "b": "s-pb", "c": "s-pa", "d": "s-pd"})]
    assert [(x.trial_id, x.members) for x in backend.launches] == [
        ("s-pa", ("a", "c")), ("s-pb", ("b",)), ("s-pd", ("d",))]
    first = backend.launches[0]
    assert first.run_id is None and first.env == {"MLFLOW_TRACKING_URI": "mlflow://"}
    assert first.trial_spec == {PACK_KEY: [{"trial": "a", "run_id": "run-a"},
                                           {"trial": "c", "run_id": "run-c"}]}


def test_parallelism_and_room_bound_what_launches_and_a_pack_counts_as_one_process() -> None:
    backend = Backend()
    ledger = make_ledger(Runs(), backend)
    items = [Item(x) for x in "abcdef"]
    ledger.launch(items, parallelism=1, packing=3, checkpoint=lambda: None, room=2)
    assert [x.members for x in backend.launches] == [("a", "b")]
    assert ledger.running_launches(items) == 1
    ledger.launch(items, parallelism=2, packing=3, checkpoint=lambda: None)
    assert [x.members for x in backend.launches] == [("a", "b"), ("c", "d", "e")]
    assert ledger.running_launches(items) == 2


def test_a_settled_run_gives_its_value_and_the_backend_is_not_asked() -> None:
    runs, backend = Runs(), Backend()
    ledger = make_ledger(runs, backend)
    items = [Item("a"), Item("b")]
    ledger.launch(items, parallelism=2, packing=1, checkpoint=lambda: None)
    runs.runs["a"] = Run("run-a", "FINISHED", value=0.75)
    runs.runs["b"] = Run("run-b", "FAILED", failure="nan")
    settled = ledger.settle(items)
    assert [(o.item.id, o.value, o.failure) for o in settled.outcomes] == [
        ("a", 0.75, None), ("b", None, "nan")]
    assert backend.looks == [] and not settled.requeued
    assert all(i.rec.state == LAUNCHED for i in items)  # marking done is the caller's


def test_the_backend_is_asked_once_per_pack_and_a_lost_pack_goes_again_under_its_id() -> None:
    runs, backend = Runs(), Backend()
    ledger = make_ledger(runs, backend)
    items = [Item("a"), Item("b"), Item("c")]
    ledger.launch(items, parallelism=1, packing=3, checkpoint=lambda: None)
    runs.runs["b"] = Run("run-b", "FAILED", failure="nan")  # ended on its own...
    backend.phases.clear()  # ...then the process was lost with the others
    settled = ledger.settle(items)
    assert backend.looks == ["s-pa"]
    assert [o.item.id for o in settled.outcomes] == ["b"]
    assert [i.id for i in settled.requeued] == ["a", "c"]
    assert [(i.rec.state, i.rec.launch_id) for i in items[::2]] == [(QUEUED, "s-pa")] * 2
    items[1].rec.state = DONE  # as the caller does with an outcome
    ledger.launch(items, parallelism=1, packing=3, checkpoint=lambda: None)
    again = backend.launches[-1]
    assert again.trial_id == "s-pa" and again.members == ("a", "c")
    assert items[0].rec.launches == 2 and items[1].rec.launches == 1


def test_a_launch_lost_max_launches_times_is_marked_failed_as_crashed() -> None:
    runs, backend = Runs(), Backend()
    ledger = make_ledger(runs, backend, max_launches=2)
    items = [Item("a")]
    for _ in range(2):
        ledger.launch(items, parallelism=1, packing=1, checkpoint=lambda: None)
        backend.phases.clear()
        settled = ledger.settle(items)
    assert [(o.item.id, o.value, o.failure) for o in settled.outcomes] == [
        ("a", None, "crashed: child missing without logging a result")]
    assert runs.failed == {"run-a": "crashed: child missing without logging a result"}
    assert len(backend.launches) == 2


def test_a_child_that_ends_between_the_two_reads_gives_its_result_not_a_crash() -> None:
    runs, backend = Runs(), Backend()
    ledger = make_ledger(runs, backend)
    items = [Item("a"), Item("b")]
    ledger.launch(items, parallelism=2, packing=1, checkpoint=lambda: None)
    backend.phases = {"a": ChildState("succeeded", exit_code=0),
                      "b": ChildState("failed", reason="OOMKilled", exit_code=137)}
    runs.after_first_read = {"a": Run("run-a", "FINISHED", value=0.5)}
    settled = ledger.settle(items)
    assert runs.reads == 2
    assert [(o.item.id, o.value, o.failure) for o in settled.outcomes] == [
        ("a", 0.5, None), ("b", None, "crashed: OOMKilled (exit code 137)")]
    assert runs.failed == {"run-b": "crashed: OOMKilled (exit code 137)"}


def test_nothing_launched_means_no_read_of_the_runs() -> None:
    runs = Runs()
    assert not make_ledger(runs, Backend()).settle([Item("a")]).outcomes
    assert runs.reads == 0


def test_a_ledger_rebuilt_from_its_records_re_attaches_running_packs_and_relaunches_lost_ones(
        ) -> None:
    runs, backend = Runs(), Backend()
    first = make_ledger(runs, backend)
    items = [Item(x, key) for x, key in zip("abcd", "xxyy", strict=True)]
    first.launch(items, parallelism=2, packing=2, checkpoint=lambda: None)
    saved = [(i.id, i.key, asdict(i.rec)) for i in items]  # the caller's checkpoint

    restored = [Item(x, key, Rec(**rec)) for x, key, rec in saved]  # a restart
    backend.phases.pop("s-pc")  # one pack was lost with the old process; the other still runs
    ledger = make_ledger(runs, backend)
    settled = ledger.settle(restored)
    assert [i.id for i in settled.requeued] == ["c", "d"]
    assert ledger.running_launches(restored) == 1
    ledger.launch(restored, parallelism=2, packing=2, checkpoint=lambda: None)
    assert [(x.trial_id, x.members) for x in backend.launches[2:]] == [("s-pc", ("c", "d"))]
    assert [i.rec.launches for i in restored] == [1, 1, 2, 2]


def test_gpu_hours_of_items_follow_their_records() -> None:
    now = [0.0]
    backend = Backend()
    ledger = make_ledger(Runs(), backend, now=now)
    items = [Item(x) for x in "abc"]
    ledger.launch(items, parallelism=1, packing=2, checkpoint=lambda: None)
    now[0] = 1800.0
    items[0].rec.state, items[0].rec.finished = DONE, 900.0
    assert ledger.gpu_hours(items, gpus=4) == 2.0  # one pack of two, half an hour, four GPUs


def test_an_item_lost_while_launched_alone_joins_a_fresh_pack_once_packing_is_turned_on() -> None:
    runs, backend = Runs(), Backend()
    ledger = make_ledger(runs, backend)
    items = [Item("a"), Item("b")]
    ledger.launch(items[:1], parallelism=1, packing=1, checkpoint=lambda: None)
    backend.phases.clear()
    assert [i.id for i in ledger.settle(items).requeued] == ["a"]
    ledger.launch(items, parallelism=1, packing=2, checkpoint=lambda: None)
    assert [(x.trial_id, x.members) for x in backend.launches] == [("a", ()), ("s-pa", ("a", "b"))]
    assert [i.rec.launches for i in items] == [2, 1]


# -- polling: what a settle asks MLflow about -----------------------------------------------------


def _settle_and_complete(ledger: Ledger[Item], items: list[Item]) -> list[str]:
    """One settle, the caller marking each result's item done (as the loops do)."""
    settled = ledger.settle(items)
    for o in settled.outcomes:
        o.item.rec.state = DONE
    return [o.item.id for o in settled.outcomes]


def test_a_poll_asks_only_about_the_launched_items_by_their_run_ids() -> None:
    runs, backend = Runs(), Backend()
    ledger = make_ledger(runs, backend)
    items = [Item(x) for x in "abcde"]
    ledger.launch(items, parallelism=3, packing=1, checkpoint=lambda: None)
    runs.runs["a"] = Run("run-a", "FINISHED", value=0.5)
    assert _settle_and_complete(ledger, items) == ["a"]
    ledger.launch(items, parallelism=3, packing=1, checkpoint=lambda: None)
    assert _settle_and_complete(ledger, items) == []
    # the settled item is never asked about again; queued ones (no process yet) are not either
    assert runs.asked == [{"a": "run-a", "b": "run-b", "c": "run-c"},
                          {"b": "run-b", "c": "run-c", "d": "run-d"}]


def test_a_run_that_ends_between_two_polls_is_settled_once() -> None:
    runs, backend = Runs(), Backend()
    ledger = make_ledger(runs, backend)
    items = [Item("a"), Item("b")]
    ledger.launch(items, parallelism=2, packing=1, checkpoint=lambda: None)
    assert _settle_and_complete(ledger, items) == []
    runs.runs["b"] = Run("run-b", "FINISHED", value=0.7)  # between the two polls
    seen = _settle_and_complete(ledger, items) + _settle_and_complete(ledger, items)
    assert seen == ["b"]
    assert runs.asked[-1] == {"a": "run-a"}


def test_a_launched_item_whose_run_is_not_in_mlflow_falls_back_to_the_backend() -> None:
    runs, backend = Runs(), Backend()
    ledger = make_ledger(runs, backend)
    items = [Item("a"), Item("b")]
    ledger.launch(items, parallelism=2, packing=1, checkpoint=lambda: None)
    # neither run exists in MLflow: "a" still runs (wait), "b"'s process died (crashed)
    backend.phases["b"] = ChildState("failed", reason="OOMKilled", exit_code=137)
    settled = ledger.settle(items)
    assert [(o.item.id, o.failure) for o in settled.outcomes] == [
        ("b", "crashed: OOMKilled (exit code 137)")]
    assert backend.looks == ["a", "b"]
    assert runs.failed == {"run-b": "crashed: OOMKilled (exit code 137)"}
    assert runs.asked == [{"a": "run-a", "b": "run-b"}, {"b": "run-b"}]  # b looked at twice


def test_gpu_hours_count_from_the_childs_reported_start_so_waiting_for_a_node_costs_nothing(
        ) -> None:
    """A backend that reports starts (Kubernetes: the pod's container start): a launch costs
    nothing while its Job waits, counts from the start it reported, and one that never started
    costs nothing at all; one that ended with a result before its start was seen counts from
    its launch."""
    hour, now = 3600.0, [0.0]
    runs, backend = Runs(), Backend(reports_start=True)
    ledger = make_ledger(runs, backend, now=now)
    waits, starts, never, quick = items = [Item(x) for x in ("w", "s", "n", "q")]
    ledger.launch(items, parallelism=4, packing=1, checkpoint=lambda: None)
    backend.phases = {"w": ChildState("queued"), "s": ChildState("queued"),
                      "n": ChildState("queued"), "q": ChildState("queued")}
    now[0] = hour
    ledger.settle(items)
    assert ledger.gpu_hours(items, gpus=1) == 0.0  # an hour pending: nothing spent
    backend.phases["s"] = ChildState("running", started_at=1.5 * hour)
    backend.phases["n"] = ChildState("failed", reason="pod n cannot start: ImagePullBackOff")
    runs.runs["q"] = Run("run-q", "FINISHED", value=0.5)
    now[0] = 2 * hour
    settled = ledger.settle(items)
    assert {o.item.id for o in settled.outcomes} == {"n", "q"}
    for o in settled.outcomes:
        o.item.rec.state, o.item.rec.finished = DONE, now[0]
    assert (waits.rec.began, starts.rec.began, never.rec.began) == (None, 1.5 * hour, None)
    assert quick.rec.began == 0.0  # finished unseen: from its launch, never less
    assert ledger.gpu_hours(items, gpus=2) == (0.5 + 2.0) * 2


def test_a_backend_that_reports_no_start_counts_from_the_launch() -> None:
    now = [100.0]
    backend = Backend()  # local processes: started when launched
    ledger = make_ledger(Runs(), backend, now=now)
    items = [Item("a")]
    ledger.launch(items, parallelism=1, packing=1, checkpoint=lambda: None)
    assert items[0].rec.began == 100.0
    now[0] = 100.0 + 1800.0
    assert ledger.gpu_hours(items, gpus=1) == 0.5


def test_a_trial_checkpointed_before_began_existed_counts_from_its_launch_as_it_did() -> None:
    from orchestrator.loop.trials import Trial

    old = {"trial_id": "s-t00000", "index": 0, "fingerprint": "0" * 16, "state": LAUNCHED,
           "source": "trained", "run_id": "r", "reward": None, "failure": None,
           "started": 10.0, "finished": None, "launches": 1, "launch_id": "s-t00000",
           "candidate": {"tokens": [], "expression": "id(x)", "log_prob": 0.0,
                         "policy_version": 0}}
    assert Trial.from_dict(old).began == 10.0
    pending = Trial.from_dict({**old, "began": None})  # a Job that had not started yet
    assert pending.began is None and Trial.from_dict(pending.as_dict()).began is None
