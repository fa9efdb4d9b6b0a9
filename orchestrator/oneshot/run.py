"""One one-shot child from spec to finished MLflow runs: the search run, then the evaluation child.

The search run carries the supernet's progress (``train_loss``, ``arch_loss``, ``active_ops`` and
``alpha.<slot>.<op>``, the expected weight of every op of every slot, over time), the heatmap
``oneshot_heatmap.png``, ``architecture.json`` (α, the ops kept, the order ops were dropped, the
candidates derived, those rejected and why, every selection retraining) and the result as tag
``actsearch.result_expression``, with ``selected_val_accuracy`` and ``baseline_val_accuracy``.
With ``evaluate``, the result is then trained from scratch by the ordinary child path
(``trainer.run.run``) in a new run tagged ``actsearch.oneshot_of`` (and, when the search names a
search and trial, found by ``actsearch-ctl top`` like any trial). Failures end the search run as ``trainer.run`` does.
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
from orchestrator.oneshot.find import Found, find
from orchestrator.oneshot.heatmap import plot_heatmap
from orchestrator.space import to_math
from orchestrator.space.activation import activation_math, parse_activation
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
    found: Found
    evaluation_run_id: str | None = None
    evaluation: loop.Outcome | None = None

    def summary(self) -> dict[str, Any]:
        first = self.found.searches[0]
        out: dict[str, Any] = {
            "run_id": self.run_id, "expression": self.found.expression,
            "expression_math": activation_math(parse_activation(self.found.expression)),
            "derived": first.expression,
            "supernet_val_accuracy": first.supernet_val_accuracy,
            "search_wall_time_s": self.found.wall_time_s,
        }
        chosen, baseline = self.found.chosen, self.found.baseline
        if chosen is not None and baseline is not None:
            out.update({"selected_val_accuracy": chosen.val_accuracy,
                        "baseline_val_accuracy": baseline.val_accuracy})
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
        outcome = _found_logged(spec, tracker, data)
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


def _found_logged(spec: OneShotSpec, tracker: RunTracker, data: data_mod.Data) -> Found:
    tracker.log_params(params_of(spec))
    tags = {Tag.ROLE: "oneshot", Tag.ONESHOT_VARIANT: spec.oneshot.variant}
    if spec.search:
        tags[Tag.SEARCH] = spec.search
    if spec.trial:
        tags[Tag.TRIAL] = spec.trial
    tracker.set_tags(tags)
    found = find(spec.child, spec.oneshot, data, tracker)
    first = found.searches[0]
    total = sum(s.warmstart_steps + s.search_steps for s in found.searches)
    metrics = {"supernet_val_accuracy": first.supernet_val_accuracy, "search_wall_time_s": found.wall_time_s}
    if found.chosen is not None and found.baseline is not None:
        metrics.update({"selected_val_accuracy": found.chosen.val_accuracy,
                        "baseline_val_accuracy": found.baseline.val_accuracy})
    tracker.on_metrics(total, metrics)
    tracker.set_tags({RESULT_TAG: found.expression,
                      Tag.RESULT_MATH: activation_math(parse_activation(found.expression))})
    with tempfile.TemporaryDirectory() as tmp:
        png = plot_heatmap(first.arch.slots, first.probabilities, first.chosen,
                           Path(tmp) / HEATMAP_ARTIFACT,
                           title=f"{spec.oneshot.variant}: {to_math(first.expr)}")
        tracker.log_file(png)
        arch = Path(tmp) / ARCHITECTURE_ARTIFACT
        arch.write_text(json.dumps({
            "expression": found.expression,
            "searches": [{
                "derived": s.expression,
                "chosen": s.chosen,
                "weights": s.probabilities,
                "alpha": {k: v.detach().tolist() for k, v in s.arch.alpha.items()},
                "ops": {sl.name: list(sl.ops) for sl in s.arch.slots},
                "dropped": [{"step": d.step, "slot": d.slot, "op": d.op} for d in s.drops],
            } for s in found.searches],
            "candidates": [{"expression": c.expression, "restart": c.restart, "rank": c.rank}
                           for c in found.candidates],
            "rejected": [{"expression": r.expression, "restart": r.restart, "rank": r.rank,
                          "reason": r.reason} for r in found.rejected[:200]],
            "retrained": [{"expression": r.expression, "val_accuracy": r.val_accuracy,
                           "val_loss": r.val_loss, "val_accuracies": list(r.val_accuracies),
                           "diverged": r.diverged} for r in found.retrained],
        }, indent=1))
        tracker.log_file(arch)
    return found


def _evaluation_run(spec: OneShotSpec, tracker: RunTracker, outcome: Found,
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
