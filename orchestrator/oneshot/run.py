"""One one-shot child from spec to finished MLflow runs: the search run, then the evaluation child.

The search run carries the supernet's progress (``train_loss``, ``arch_loss``, ``active_ops`` and
``alpha.<slot>.<op>``, the expected weight of every op of every slot, over time), the heatmap
``oneshot_heatmap.png``, ``architecture.json`` (α, the ops kept, the order ops were dropped) and
the result as tag ``actsearch.result_expression``. With ``evaluate``, the discretised function is
then trained from scratch by the ordinary child path (``trainer.run.run``) in a new run tagged
``actsearch.oneshot_of`` (and, when the search names a search and trial, found by
``actsearch-ctl top`` like any trial). Failures end the search run as ``trainer.run`` does.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.contract import FailureKind, Tag, TrialSpec, failure_text
from orchestrator.oneshot.config import OneShotSpec
from orchestrator.oneshot.heatmap import plot_heatmap
from orchestrator.oneshot.search import SearchOutcome, search
from orchestrator.space import to_math
from orchestrator.trainer import data as data_mod
from orchestrator.trainer import loop
from orchestrator.trainer import run as child_run
from orchestrator.trainer.errors import Infrastructure, NonFiniteLoss
from orchestrator.trainer.tracking import RunTracker

log = logging.getLogger(__name__)

HEATMAP_ARTIFACT = "oneshot_heatmap.png"
ARCHITECTURE_ARTIFACT = "architecture.json"
RESULT_TAG = Tag.RESULT_EXPRESSION
EVALUATION_TAG = Tag.ONESHOT_OF


@dataclass(frozen=True)
class OneShotResult:
    run_id: str
    search: SearchOutcome
    evaluation_run_id: str | None = None
    evaluation: loop.Outcome | None = None

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "run_id": self.run_id, "expression": self.search.expression,
            "expression_math": to_math(self.search.expr),
            "supernet_val_accuracy": self.search.supernet_val_accuracy,
            "search_wall_time_s": self.search.wall_time_s,
        }
        if self.evaluation is not None:
            out.update({"evaluation_run_id": self.evaluation_run_id,
                        "val_accuracy": self.evaluation.val_accuracy,
                        "test_accuracy": self.evaluation.test_accuracy,
                        "evaluation_wall_time_s": self.evaluation.wall_time_s})
        return out


def params_of(spec: OneShotSpec) -> dict[str, Any]:
    return {
        **{f"oneshot.{k}": (",".join(v) if isinstance(v, tuple) else v)
           for k, v in spec.oneshot.model_dump(mode="python").items()},
        **spec.child.model_dump(mode="json"),
        "code_version": child_run.code_version(),
    }


def run(spec: OneShotSpec, *, tracking_uri: str | None = None, run_id: str | None = None,
        cache_dir: Path | None = None) -> OneShotResult:
    """Search, log, and (with ``evaluate``) train the result as a normal child.

    Raises BadInput, NonFiniteLoss or Infrastructure like ``trainer.run.run``.
    """
    cfg = spec.child
    loop.resolve(cfg)
    data = data_mod.load(cfg, cache_dir or child_run.default_cache_dir())
    name = f"{spec.trial or 'oneshot'}-{spec.oneshot.variant}"
    tracker = RunTracker.open(tracking_uri, run_id, spec.experiment, run_name=name)
    try:
        outcome = _search_logged(spec, tracker, data)
        evaluation = _evaluation_run(spec, tracker, outcome, tracking_uri) if spec.oneshot.evaluate else None
        tracker.finish("FINISHED")
    except NonFiniteLoss as e:
        log.error("one-shot search %s failed permanently: %s", tracker.run_id, e)
        tracker.set_tags({Tag.FAILURE: failure_text(FailureKind.DIVERGED), Tag.FAILURE_STEP: e.step})
        tracker.finish("FAILED")
        raise
    except Infrastructure:
        raise
    except Exception as e:
        tracker.set_tags({Tag.FAILURE: failure_text(FailureKind.ERROR),
                          Tag.ERROR: f"{type(e).__name__}: {e}"[:5000]})
        tracker.finish("FAILED")
        raise
    if evaluation is None:
        return OneShotResult(tracker.run_id, outcome)
    trial = TrialSpec(expression=outcome.expression, search=spec.search,
                      trial=f"{spec.trial}-eval" if spec.trial else None,
                      experiment=spec.experiment, child=cfg)
    eval_id, eval_outcome = child_run.run(trial, tracking_uri=tracking_uri, run_id=evaluation.run_id,
                                          cache_dir=cache_dir)
    return OneShotResult(tracker.run_id, outcome, eval_id, eval_outcome)


def _search_logged(spec: OneShotSpec, tracker: RunTracker, data: data_mod.Data) -> SearchOutcome:
    tracker.log_params(params_of(spec))
    tags = {Tag.ROLE: "oneshot", Tag.ONESHOT_VARIANT: spec.oneshot.variant}
    if spec.search:
        tags[Tag.SEARCH] = spec.search
    if spec.trial:
        tags[Tag.TRIAL] = spec.trial
    tracker.set_tags(tags)
    outcome = search(spec.child, spec.oneshot, data, tracker)
    total = outcome.warmstart_steps + outcome.search_steps
    tracker.on_metrics(total, {"supernet_val_accuracy": outcome.supernet_val_accuracy,
                               "search_wall_time_s": outcome.wall_time_s})
    tracker.set_tags({RESULT_TAG: outcome.expression, Tag.RESULT_MATH: to_math(outcome.expr)})
    with tempfile.TemporaryDirectory() as tmp:
        png = plot_heatmap(outcome.arch.slots, outcome.probabilities, outcome.chosen,
                           Path(tmp) / HEATMAP_ARTIFACT,
                           title=f"{spec.oneshot.variant}: {to_math(outcome.expr)}")
        tracker.log_file(png)
        arch = Path(tmp) / ARCHITECTURE_ARTIFACT
        arch.write_text(json.dumps({
            "expression": outcome.expression,
            "chosen": outcome.chosen,
            "weights": outcome.probabilities,
            "alpha": {k: v.detach().tolist() for k, v in outcome.arch.alpha.items()},
            "ops": {s.name: list(s.ops) for s in outcome.arch.slots},
            "dropped": [{"step": d.step, "slot": d.slot, "op": d.op} for d in outcome.drops],
        }, indent=1))
        tracker.log_file(arch)
    return outcome


def _evaluation_run(spec: OneShotSpec, tracker: RunTracker, outcome: SearchOutcome,
                    tracking_uri: str | None) -> RunTracker:
    """The evaluation child's run, created (and cross-tagged) before the search run ends."""
    name = f"{spec.trial}-eval" if spec.trial else f"{outcome.expression}"[:100]
    evaluation = RunTracker.open(tracking_uri, None, spec.experiment, run_name=name)
    tags = {EVALUATION_TAG: tracker.run_id}
    if spec.search:
        tags[Tag.ROLE] = "trial"  # an ordinary trial of its search: `actsearch-ctl top` lists it
    evaluation.set_tags(tags)
    tracker.set_tags({Tag.EVALUATION_RUN: evaluation.run_id})
    return evaluation
