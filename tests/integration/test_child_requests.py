"""What a child's MLflow logging costs the tracking server, against a real server on 127.0.0.1:
the trainer's record of a run (``trainer.run.open_record`` and ``close_record``, the code a real
child runs and the control-plane benchmark's simulated children call) in as few requests as its
content allows, and that content unchanged. Requests are counted where MLflow's client sends
them; counts, not times."""

from __future__ import annotations

import uuid

import pytest
from mlflow.tracking import MlflowClient

from orchestrator.contract import Tag, TrialSpec
from orchestrator.trainer.loop import Outcome
from orchestrator.trainer.run import close_record, open_record, params_of
from orchestrator.trainer.tracking import RunTracker
from tests.servers import Server

SWISH = "sigmul(mul_beta(x), id(x))"


def _spec(experiment: str, run_id: str) -> TrialSpec:
    return TrialSpec.model_validate({
        "expression": SWISH, "search": "s-req", "trial": "s-req-t00007", "experiment": experiment,
        "run_id": run_id, "child": {"model": "mlp", "dataset": "digits", "steps": 10,
                                    "plot": False}})


def _outcome(acc: float) -> Outcome:
    return Outcome(val_accuracy=acc, val_loss=1 - acc, test_accuracy=acc, test_loss=1 - acc,
                   steps=10, start_step=0, wall_time_s=1.5, steps_per_s=20.0, beta_mean=1.25,
                   mode="eager", weights={})


def test_a_childs_run_is_written_in_five_tracking_requests_with_all_its_content(
        mlflow_server: Server, mlflow_requests: list[str]) -> None:
    client = MlflowClient(mlflow_server.url)
    experiment = f"child-requests-{uuid.uuid4().hex[:8]}"
    exp_id = client.create_experiment(experiment)
    run_id = client.create_run(exp_id, tags={Tag.TRIAL: "s-req-t00007", Tag.TRIAL_INDEX: "7"}
                               ).info.run_id  # as the controller pre-creates it
    sent = mlflow_requests
    sent.clear()  # counted from here: what the setup above sent is not the subject
    spec = _spec(experiment, run_id)
    tracker = RunTracker.open(mlflow_server.url, run_id, experiment)
    assert open_record(spec, tracker, "d" * 64, {"device": "cpu", "precision": "fp32",
                                                 "compile": "eager"}, 1) is None
    close_record(spec, tracker, _outcome(0.8))
    tracking = [e.split("/api/2.0/mlflow/", 1)[1] for e in sent if "/api/2.0/mlflow/" in e]
    # attach (read, RUNNING), params + tags + trial_index, final metrics + mode, end: no
    # checkpoint listing on a first attempt, no read-back before an upload or at the end
    assert tracking == ["runs/get", "runs/update", "runs/log-batch", "runs/log-batch",
                        "runs/update"]
    # (config.json, the one artifact without a plot, goes to the artifact store, not counted here)

    run = client.get_run(run_id)
    p, t, m = run.data.params, run.data.tags, run.data.metrics
    assert run.info.status == "FINISHED"
    assert p == {k: str(v) for k, v in params_of(spec).items()}
    assert (t[Tag.FINGERPRINT], t[Tag.CONFIG_HASH], t[Tag.EXPRESSION]) == (
        spec.function_fingerprint(), spec.child.config_hash(), SWISH)
    assert (t[Tag.SEARCH], t[Tag.TRIAL], t[Tag.PACK_SIZE], t[Tag.MODE], t[Tag.DATA_SHA256]) == (
        "s-req", "s-req-t00007", "1", "eager", "d" * 64)
    assert m == {"trial_index": 7.0, "val_accuracy": 0.8, "val_loss": pytest.approx(0.2),
                 "test_accuracy": 0.8, "test_loss": pytest.approx(0.2), "wall_time_s": 1.5,
                 "steps_per_s": 20.0, "beta_mean": 1.25}
    assert [x.step for x in client.get_metric_history(run_id, "val_accuracy")] == [10]
    assert {f.path for f in client.list_artifacts(run_id)} == {"config.json"}


def test_a_retried_childs_checkpoint_is_looked_for_only_when_its_run_says_it_has_one(
        mlflow_server: Server) -> None:
    client = MlflowClient(mlflow_server.url)
    experiment = f"child-requests-{uuid.uuid4().hex[:8]}"
    run_id = client.create_run(client.create_experiment(experiment)).info.run_id
    first = RunTracker.open(mlflow_server.url, run_id, experiment)
    assert first.load_checkpoint() is None  # no tag: nothing asked
    first.on_checkpoint(4, {"step": 4, "weights": {}})
    again = RunTracker.open(mlflow_server.url, run_id, experiment)  # the retry attaches
    state = again.load_checkpoint()
    assert state is not None and state["step"] == 4
