"""The search loop end to end against a real MLflow server and a real S3-compatible server on
127.0.0.1 (session fixtures in conftest.py), with real children (``actsearch-train`` processes
on digits): runs, tags and checkpoints land where they should; a SIGKILLed controller resumes;
functions are never trained twice, across searches too; outages are retried."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from mlflow.tracking import MlflowClient

from orchestrator.adapters.retry import Backoff
from orchestrator.adapters.storage import S3Store
from orchestrator.adapters.tracking import MlflowTracker
from orchestrator.embedded import build_controller
from orchestrator.loop.checkpoint import read
from orchestrator.loop.report import publish
from orchestrator.space import parse
from orchestrator.space.fingerprint import fingerprint
from orchestrator.spec import parse_spec
from tests.servers import Server

CHILD = {"model": "mlp", "dataset": "digits", "steps": 15, "batch_size": 32, "lr": 0.05,
         "crop_padding": 0, "flip": False, "device": "cpu", "log_every": 5}


def spec_data(name: str, experiment: str, s3: Server, bucket: str, **over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": name,
        "space": {"units": 1, "unary": ["id", "relu", "tanh", "sin", "sigmoid"],
                  "binary": ["add", "max", "mul", "sigmul"]},
        "strategy": {"name": "ppo", "options": {"batch_size": 4}},
        "budget": {"trials": 4, "max_samples": 40},
        "parallelism": 2,
        "generation": 4,
        "child": CHILD,
        "tracking": {"experiment": experiment},
        "storage": {"uri": f"s3://{bucket}/checkpoints/{experiment}/{name}",
                    "endpoint_url": s3.url},
    }
    data.update(over)
    return data


def runs_of(client: MlflowClient, experiment: str, search: str) -> list[Any]:
    exp = client.get_experiment_by_name(experiment)
    return client.search_runs([exp.experiment_id],
                              f"tags.`actsearch.search` = '{search}'", max_results=1000)


def checkpoint(s3_client: Any, bucket: str, experiment: str, name: str) -> dict[str, Any]:
    """The search's checkpoint as plain data, read as a resuming controller reads it (the
    checkpoint and the blocks of done trials it names, ``orchestrator.loop.checkpoint``)."""
    saved = read(S3Store(bucket, f"checkpoints/{experiment}/{name}", client=s3_client), name)
    if saved is None:
        return {"trials": []}
    return {"trials": [t.as_dict() for t in saved.trials], "strategy": saved.strategy}


def test_a_small_search_runs_end_to_end(
    mlflow_env: dict[str, str], mlflow_server: Server, s3_server: Server, s3_bucket: str,
    s3_client: Any, tmp_path: Path,
) -> None:
    experiment = f"e2e-{uuid.uuid4().hex[:8]}"
    spec = parse_spec(spec_data("e2e", experiment, s3_server, s3_bucket))
    ctl = build_controller(spec, tmp_path, poll_interval=0.3)
    final = ctl.run()
    assert final.finished and final.trained == 4

    client = MlflowClient(mlflow_server.url)
    runs = runs_of(client, experiment, "e2e")
    parents = [r for r in runs if r.data.tags.get("actsearch.role") == "search"]
    children = [r for r in runs if r.data.tags.get("actsearch.role") == "trial"]
    assert len(parents) == 1
    parent = parents[0]
    assert parent.data.params["strategy.name"] == "ppo"
    assert parent.data.metrics["gen_mean_reward"] > 0.2  # digits: far above chance
    trained = [r for r in children if r.data.tags.get("actsearch.source") == "trained"]
    assert len(trained) == 4
    for r in trained:
        tags = r.data.tags
        assert r.info.status == "FINISHED"
        assert tags["mlflow.parentRunId"] == parent.info.run_id
        assert tags["actsearch.trial"].startswith("e2e-t")
        assert tags["actsearch.config_hash"] == spec.child.config_hash()
        assert tags["actsearch.fingerprint"] == fingerprint(parse(tags["actsearch.expression"]),
                                                            spec.child.numerics)
        assert 0.0 <= r.data.metrics["val_accuracy"] <= 1.0
        assert r.data.params["expression"] == tags["actsearch.expression"]

    state = checkpoint(s3_client, s3_bucket, experiment, "e2e")
    ledger = {t["trial_id"]: t for t in state["trials"]}
    for r in trained:
        assert ledger[r.data.tags["actsearch.trial"]]["reward"] == r.data.metrics["val_accuracy"]
        assert ledger[r.data.tags["actsearch.trial"]]["fingerprint"] == r.data.tags["actsearch.fingerprint"]
    assert state["strategy"]  # the policy, optimizer, baseline and RNG travel with the ledger

    # the researcher's view: names, the parent's per-trial series, the winner in the description
    for r in children:
        index = int(r.data.tags["actsearch.trial_index"])
        assert r.info.run_name.startswith(f"t{index} · ")
        assert r.data.metrics["trial_index"] == index
    assert parent.data.params["search.seed"] == "0" and "seed" not in parent.data.params
    history = client.get_metric_history(parent.info.run_id, "best_val_accuracy")
    assert [m.step for m in history] == sorted(int(r.data.tags["actsearch.trial_index"])
                                               for r in children)
    assert [m.value for m in history] == sorted(m.value for m in history)  # best so far
    rows, _ = publish(ctl, 10, tmp_path / "report")
    done = client.get_run(parent.info.run_id)
    best = max(trained, key=lambda r: r.data.metrics["val_accuracy"])
    tags = done.data.tags
    assert float(tags["actsearch.best_val_accuracy"]) == round(best.data.metrics["val_accuracy"], 4)
    assert rows[0].reward == best.data.metrics["val_accuracy"]
    assert tags["actsearch.best_expression"] == rows[0].expression
    assert rows[0].test_accuracy == client.get_run(rows[0].run_id).data.metrics["test_accuracy"]
    assert tags["actsearch.best_math"] in done.info.run_name
    assert tags["actsearch.best_math"] in tags["mlflow.note.content"]
    assert "| rank | expression |" in tags["mlflow.note.content"]
    assert any(a.path == "images" for a in client.list_artifacts(parent.info.run_id))


def test_a_sigkilled_controller_resumes_with_every_trial_exactly_once(
    mlflow_env: dict[str, str], mlflow_server: Server, s3_server: Server, s3_bucket: str,
    s3_client: Any, tmp_path: Path,
) -> None:
    experiment = f"kill-{uuid.uuid4().hex[:8]}"
    data = spec_data("killed", experiment, s3_server, s3_bucket,
                     budget={"trials": 6, "max_samples": 60})
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(data))
    argv = [sys.executable, "-m", "orchestrator.cli", "run", str(spec_file), "--quiet",
            "--workdir", str(tmp_path / "work")]
    env = {**os.environ, **mlflow_env}
    log_path = tmp_path / "first.log"
    with open(log_path, "wb") as log_file:
        first = subprocess.Popen(argv, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 240
    while True:  # kill once some trials are done and others are in flight
        assert first.poll() is None, log_path.read_text()
        assert time.monotonic() < deadline, "the controller made no progress"
        state = checkpoint(s3_client, s3_bucket, experiment, "killed")
        phases = [t["state"] for t in state["trials"]]
        if phases.count("done") >= 2 and "launched" in phases:
            break
        time.sleep(0.3)
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    before = checkpoint(s3_client, s3_bucket, experiment, "killed")
    done_before = {t["trial_id"] for t in before["trials"] if t["state"] == "done"}

    second = subprocess.run([*argv, "--resume"], env=env, capture_output=True, text=True,
                            timeout=300)
    assert second.returncode == 0, second.stdout + second.stderr

    after = checkpoint(s3_client, s3_bucket, experiment, "killed")
    ids = [t["trial_id"] for t in after["trials"]]
    assert ids == [f"killed-t{i:05d}" for i in range(len(ids))]  # each trial exactly once
    trained = [t for t in after["trials"] if t["source"] == "trained" and t["state"] == "done"]
    assert len(trained) == 6
    for t in after["trials"]:
        if t["trial_id"] in done_before:  # finished before the kill: never launched again
            old = next(o for o in before["trials"] if o["trial_id"] == t["trial_id"])
            assert t["launches"] == old["launches"] and t["reward"] == old["reward"]
    client = MlflowClient(mlflow_server.url)
    trial_runs = [r for r in runs_of(client, experiment, "killed")
                  if r.data.tags.get("actsearch.role") == "trial"]
    names = [r.data.tags["actsearch.trial"] for r in trial_runs]
    assert sorted(names) == sorted(set(names))  # one MLflow run per trial, none duplicated
    assert all(r.info.status in ("FINISHED", "FAILED") for r in trial_runs)
    # the strategy's bookkeeping matches what an uninterrupted run would have: every settled
    # trial observed once, one PPO update per 4 results
    resumed = build_controller(parse_spec(data), tmp_path / "work", resume=True)
    resumed.start(resume=True)
    settled = sum(t.state == "done" for t in resumed.trials)
    assert len(resumed.strategy.updates) == settled // 4


def test_a_function_is_never_trained_twice_across_searches(
    mlflow_env: dict[str, str], mlflow_server: Server, s3_server: Server, s3_bucket: str,
    tmp_path: Path,
) -> None:
    """Four sequences, two functions (x and max(x, 0)): the first search trains two children,
    the second trains none and reports cache hits on its parent run."""
    experiment = f"cache-{uuid.uuid4().hex[:8]}"
    space = {"units": 1, "unary": ["id", "relu"], "binary": ["max"]}
    first = build_controller(parse_spec(spec_data(
        "first", experiment, s3_server, s3_bucket, space=space, strategy={"name": "exhaustive"},
        budget={"trials": 4})), tmp_path, poll_interval=0.3)
    p1 = first.run()
    assert p1.trained == 2 and p1.duplicates == 2
    second = build_controller(parse_spec(spec_data(
        "second", experiment, s3_server, s3_bucket, space=space, strategy={"name": "exhaustive"},
        budget={"trials": 4})), tmp_path, poll_interval=0.3)
    p2 = second.run()
    assert p2.trained == 0 and p2.cache_hits == 2 and p2.duplicates == 2
    rewards1 = {t.fingerprint: t.reward for t in first.trials}
    assert all(t.reward == rewards1[t.fingerprint] for t in second.trials)
    client = MlflowClient(mlflow_server.url)
    parent = next(r for r in runs_of(client, experiment, "second")
                  if r.data.tags.get("actsearch.role") == "search")
    assert parent.data.metrics["cache_hits"] == 2
    assert parent.data.metrics["trained"] == 0
    # the leaderboard of a search that trained nothing still shows each function's test accuracy
    rows, _ = publish(second, 10, tmp_path / "report")
    trained_test = {r.data.tags["actsearch.fingerprint"]: r.data.metrics["test_accuracy"]
                    for r in runs_of(client, experiment, "first")
                    if r.data.tags.get("actsearch.role") != "search" and "test_accuracy" in r.data.metrics}
    assert len(rows) == 2 and {e.fingerprint: e.test_accuracy for e in rows} == trained_test


def test_with_paper_numerics_a_function_is_never_trained_twice_across_searches(
    mlflow_env: dict[str, str], mlflow_server: Server, s3_server: Server, s3_bucket: str,
    tmp_path: Path,
) -> None:
    """``numerics: paper``: the fingerprint the children record on their runs is the key the next
    search looks up. Of the three functions here (x, max(x, sinh x), sinh x) the last two have a
    paper fingerprint apart from their safe one, so a controller keying its cache with the
    default numerics would train them again."""
    experiment = f"paper-{uuid.uuid4().hex[:8]}"
    space = {"units": 1, "unary": ["id", "sinh"], "binary": ["max"]}
    child = {**CHILD, "numerics": "paper"}

    def search(name: str) -> Any:
        return build_controller(parse_spec(spec_data(
            name, experiment, s3_server, s3_bucket, space=space, child=child,
            strategy={"name": "exhaustive"}, budget={"trials": 4})), tmp_path, poll_interval=0.3)

    first = search("first")
    p1 = first.run()
    assert p1.trained == 3 and p1.duplicates == 1
    second = search("second")
    p2 = second.run()
    assert p2.trained == 0 and p2.cache_hits == 3 and p2.duplicates == 1
    rewards1 = {t.fingerprint: (t.reward, t.failure) for t in first.trials}
    assert all((t.reward, t.failure) == rewards1[t.fingerprint] for t in second.trials)
    client = MlflowClient(mlflow_server.url)
    for r in runs_of(client, experiment, "first"):
        if r.data.tags.get("actsearch.source") == "trained":
            expr = parse(r.data.tags["actsearch.expression"])
            assert r.data.tags["actsearch.fingerprint"] == fingerprint(expr, "paper")


def _pause(server: Server, seconds: float) -> threading.Thread:
    """SIGSTOP the server's process group now and SIGCONT it after ``seconds``: an outage."""
    os.killpg(server.process.pid, signal.SIGSTOP)
    t = threading.Timer(seconds, lambda: os.killpg(server.process.pid, signal.SIGCONT))
    t.start()
    return t


def test_mlflow_unreachable_for_a_while_is_retried_and_nothing_is_lost(
    mlflow_env: dict[str, str], mlflow_server: Server, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "1")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    tracker = MlflowTracker(mlflow_server.url, f"outage-{uuid.uuid4().hex[:8]}",
                            backoff=Backoff(initial=0.5, factor=2.0, attempts=10))
    parent = tracker.start_search("outage", {"name": "outage"})
    caplog.set_level(logging.WARNING, logger="orchestrator.adapters.retry")
    timer = _pause(mlflow_server, 3.0)
    try:
        run_id = tracker.create_trial_run("outage", parent, "outage-t00000",
                                          {"actsearch.fingerprint": "f" * 16})
    finally:
        timer.join()
    assert any("MLflow create run for outage-t00000" in r.message and "retry 1/" in r.message
               for r in caplog.records)
    runs = tracker.trial_runs("outage")
    assert list(runs) == ["outage-t00000"] and runs["outage-t00000"].run_id == run_id


def test_s3_unreachable_for_a_while_is_retried_and_the_checkpoint_lands(
    s3_server: Server, s3_bucket: str, s3_client: Any, caplog: pytest.LogCaptureFixture,
) -> None:
    from tests.servers import S3_CREDENTIALS, OutageProxy

    proxy = OutageProxy(s3_server.url)
    with pytest.MonkeyPatch.context() as mp:
        for k, v in S3_CREDENTIALS.items():
            mp.setenv(k, v)
        store = S3Store(s3_bucket, "outage", endpoint_url=proxy.url,
                        backoff=Backoff(initial=0.5, factor=2.0, attempts=10))
    caplog.set_level(logging.WARNING, logger="orchestrator.adapters.retry")
    proxy.down_for(3.0)
    try:
        store.put("controller.pt", b"state")
    finally:
        proxy.timer.join()
        proxy.close()
    assert any("S3 put s3://actsearch-test/outage/controller.pt failed" in r.message
               and "EndpointConnectionError" in r.message for r in caplog.records)
    landed = s3_client.get_object(Bucket=s3_bucket, Key="outage/controller.pt")["Body"].read()
    assert landed == b"state"


def test_a_packed_search_trains_its_children_side_by_side_each_in_its_own_run(
    mlflow_env: dict[str, str], mlflow_server: Server, s3_server: Server, s3_bucket: str,
    s3_client: Any, tmp_path: Path,
) -> None:
    """``packing: 3``: each generation goes out in packs of up to 3, through the real trainer in
    local processes; every member reports to its own pre-created run."""
    experiment = f"pack-{uuid.uuid4().hex[:8]}"
    spec = parse_spec(spec_data("packed", experiment, s3_server, s3_bucket, packing=3, parallelism=1))
    final = build_controller(spec, tmp_path, poll_interval=0.3).run()
    assert final.finished and final.trained == 4

    client = MlflowClient(mlflow_server.url)
    trained = [r for r in runs_of(client, experiment, "packed")
               if r.data.tags.get("actsearch.source") == "trained"]
    assert len(trained) == 4
    assert all(r.info.status == "FINISHED" and 0 <= r.data.metrics["val_accuracy"] <= 1 for r in trained)
    state = checkpoint(s3_client, s3_bucket, experiment, "packed")
    launches = {t["trial_id"]: t["launch_id"] for t in state["trials"] if t["source"] == "trained"}
    assert all(re.fullmatch(r"packed-p\d{5}", lid) for lid in launches.values()), launches
    assert max(list(launches.values()).count(lid) for lid in launches.values()) > 1, launches
    for r in trained:  # the ledger's reward is the member's own accuracy
        tid = r.data.tags["actsearch.trial"]
        ledger = next(t for t in state["trials"] if t["trial_id"] == tid)
        assert ledger["reward"] == r.data.metrics["val_accuracy"]
        assert r.data.tags["actsearch.pack_size"] == str(list(launches.values()).count(launches[tid]))
