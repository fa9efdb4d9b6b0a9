"""Early stopping in the real loop: real MLflow and S3 servers on 127.0.0.1 (session fixtures),
the local backend and real children (``actsearch-train`` processes on digits).

The strategy is scripted (the test chooses what is proposed, nothing else is faked): first a
good function, then a deliberately bad one, x⁴, whose gradient vanishes where the network's
pre-activations start, so it stays near chance (about 0.1) while the good one is above 0.9 at
every evaluation step. The median rule with ``min_trials: 1`` must then stop the bad child at
its first evaluation the controller reads, on any machine. The controller is made to die right
after it checkpointed the stop and stopped the process, before it marked the run (the window a
restart must cover); a resumed controller finishes the stop, trains nothing again, and ends the
search.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from orchestrator.contract import Tag
from orchestrator.embedded import build_controller
from orchestrator.search.base import Candidate, Result
from orchestrator.space import encode, parse
from orchestrator.spec import parse_spec
from tests.integration.test_search_loop import checkpoint, runs_of, spec_data
from tests.servers import Server

GOOD, BAD = "max(relu(x), id(x))", "mul(square(x), square(x))"
STEPS, EVERY = 2000, 100
CHILD = {"model": "mlp", "dataset": "digits", "steps": STEPS, "batch_size": 32, "lr": 0.05,
         "crop_padding": 0, "flip": False, "device": "cpu", "log_every": 100,
         "eval_every": EVERY}


class Scripted:
    """Proposes the given expressions in order, once each; keeps what it observed."""

    name = "scripted"

    def __init__(self, expressions: Sequence[str]) -> None:
        self.expressions = list(expressions)
        self.position = 0
        self.observed: list[Result] = []

    def propose(self, n: int) -> list[Candidate]:
        chosen = self.expressions[self.position:self.position + n]
        self.position += len(chosen)
        return [Candidate(encode(parse(e)), e, 0.0, 0) for e in chosen]

    def observe(self, results: Sequence[Result]) -> None:
        self.observed += results

    def state_dict(self) -> dict[str, Any]:
        return {"position": self.position}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.position = int(state["position"])


class ControllerDied(Exception):
    pass


def test_a_bad_child_is_stopped_early_and_a_restart_finishes_the_stop(
    mlflow_env: dict[str, str], mlflow_server: Server, s3_server: Server, s3_bucket: str,
    s3_client: Any, tmp_path: Path,
) -> None:
    experiment = f"es-{uuid.uuid4().hex[:8]}"
    data = spec_data("es", experiment, s3_server, s3_bucket, child=CHILD, parallelism=1,
                     generation=1, budget={"trials": 2, "max_samples": 2},
                     early_stopping={"rule": "median", "min_trials": 1})
    spec = parse_spec(data)
    first = build_controller(spec, tmp_path, poll_interval=0.2)
    first.strategy = Scripted([GOOD, BAD])

    cancel = first.backend.cancel

    def die(launch: str) -> None:  # the child is stopped, then the controller dies
        cancel(launch)
        raise ControllerDied(launch)

    first.backend.cancel = die  # type: ignore[method-assign]
    with pytest.raises(ControllerDied):
        first.run()
    first.backend.close()  # this process outlives the "dead" controller: reap its children
    # what the dead controller left: the stop is durable, the run not yet marked
    saved = {t["candidate"]["expression"]: t for t in
             checkpoint(s3_client, s3_bucket, experiment, "es")["trials"]}
    assert saved[BAD]["state"] == "done" and saved[BAD]["stop_pending"]
    stopped_at = saved[BAD]["stopped_at"]
    assert stopped_at is not None and stopped_at % EVERY == 0 and stopped_at < STEPS
    assert saved[GOOD]["stopped_at"] is None and saved[GOOD]["reward"] > 0.9

    resumed = build_controller(spec, tmp_path, resume=True, poll_interval=0.2)
    strategy = resumed.strategy = Scripted([GOOD, BAD])
    final = resumed.run(resume=True)
    assert final.finished and final.trained == 2 and final.stopped_early == 1
    assert final.best is not None and final.best.candidate.expression == GOOD

    client = MlflowClient(mlflow_server.url)
    runs = {r.data.tags.get("actsearch.expression"): r for r in runs_of(client, experiment, "es")
            if r.data.tags.get("actsearch.role") == "trial"}
    bad, good = runs[BAD], runs[GOOD]
    # its process ended before its last step, its run is marked and ended, not finished
    assert bad.data.tags[Tag.STOPPED_EARLY] == str(stopped_at)
    assert bad.info.status == "KILLED"
    logged = [m.step for m in client.get_metric_history(bad.info.run_id, "train_loss")]
    assert max(logged) < STEPS
    assert resumed.backend.state(resumed.trials[1].launch).phase != "running"
    assert Tag.TRUST not in bad.data.tags  # never sealed for the evaluation cache
    assert good.info.status == "FINISHED" and Tag.STOPPED_EARLY not in good.data.tags
    # its reward is its last intermediate validation accuracy, as the strategy saw it
    history = {m.step: m.value for m in client.get_metric_history(bad.info.run_id,
                                                                  "val_accuracy")}
    trial = next(t for t in resumed.trials if t.candidate.expression == BAD)
    assert trial.reward == history[stopped_at] < 0.5 and trial.launches == 1
    assert trial.curve == [history[s] for s in range(EVERY, stopped_at + 1, EVERY)]
    assert not strategy.observed  # the first controller observed it; nothing settled twice
    assert [e.expression for e in resumed.leaderboard()] == [GOOD]
