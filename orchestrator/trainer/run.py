"""One child, or one pack of children, from spec to finished MLflow runs: the importable entry
point behind ``actsearch-train``.

Order matters for "nothing half-written": the spec is validated (pydantic), the runtime resolved
and the data loaded before any run is created or touched, so a bad input exits 2 with no run
state changed. Once the run is open every ending is recorded: FINISHED, or FAILED with
``actsearch.failure`` (``nan`` with ``actsearch.failure_step`` for a diverged loss, ``error``
otherwise). A killed process leaves its run RUNNING, and the next attempt with the same run id
resumes from the run's last checkpoint; so does one stopped by SIGTERM, which stores a checkpoint
first (``trainer.termination``). A pack (``PackSpec``) does all of this once per member,
each in its own run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

from orchestrator.contract import FailureKind, PackSpec, Tag, TrialSpec, failure_text
from orchestrator.space.activation import Builtin, activation_math
from orchestrator.space.naming import has_beta, structure_params
from orchestrator.space.plot import plot_functions
from orchestrator.trainer import data as data_mod
from orchestrator.trainer import loop
from orchestrator.trainer.data import default_cache_dir  # also the one-shot child's
from orchestrator.trainer.errors import (
    Infrastructure,
    Interrupted,
    NonFiniteLoss,
    OutOfMemory,
    is_out_of_memory,
)
from orchestrator.trainer.tracking import RunTracker

log = logging.getLogger(__name__)

PLOT_ARTIFACT = "activation.png"
CONFIG_ARTIFACT = "config.json"
WEIGHTS_DIR = "weights"


def code_version() -> str:
    """Package version + a hash of the contract, space and trainer sources (+ ACTSEARCH_GIT_SHA if set).

    The source hash identifies the code inside an image that carries no git metadata.
    """
    try:
        version = metadata.version("actsearch")
    except metadata.PackageNotFoundError:
        version = "unknown"
    h = hashlib.sha256()
    root = Path(__file__).resolve().parents[1]
    h.update(b"contract.py" + (root / "contract.py").read_bytes())
    for sub in ("space", "trainer"):
        for f in sorted((root / sub).glob("*.py")):
            h.update(f.name.encode() + f.read_bytes())
    git = os.environ.get("ACTSEARCH_GIT_SHA")
    return f"{version}+src.{h.hexdigest()[:12]}" + (f".git.{git[:12]}" if git else "")


def params_of(spec: TrialSpec) -> dict[str, Any]:
    """MLflow params: the expression in both forms, every child setting under ``child.`` (the
    names the search's parent run uses), the function's structure (``unit1.binary`` ..., for
    parallel coordinates and group-by) and the code version."""
    structure = {} if isinstance(spec.activation, Builtin) else structure_params(spec.activation)
    return {
        "expression": spec.expression,
        "expression_math": activation_math(spec.activation),
        **{f"child.{k}": v for k, v in spec.child.model_dump(mode="json").items()},
        **structure,
        "code_version": code_version(),
    }


def tags_of(spec: TrialSpec) -> dict[str, str]:
    """The run's identity tags; the fingerprint is the controller's, when the spec carries one."""
    tags = {
        Tag.FINGERPRINT: spec.function_fingerprint(),
        Tag.CONFIG_HASH: spec.child.config_hash(),
        Tag.EXPRESSION: spec.expression,
    }
    if spec.search:
        tags[Tag.SEARCH] = spec.search
    if spec.trial:
        tags[Tag.TRIAL] = spec.trial
    return tags


def run(spec: TrialSpec, *, tracking_uri: str | None = None, run_id: str | None = None,
        cache_dir: Path | None = None) -> tuple[str, loop.Outcome]:
    """Train ``spec``'s child, log it to MLflow, return (run id, outcome).

    Raises BadInput, NonFiniteLoss or Infrastructure (errors.py; exit codes in ``contract.ExitCode``).
    """
    member = spec.model_copy(update={"run_id": run_id or spec.run_id})
    ((used, result),) = run_pack(PackSpec(pack=[member]), tracking_uri=tracking_uri, cache_dir=cache_dir)
    if isinstance(result, NonFiniteLoss):
        raise result
    return used, result


def run_pack(spec: PackSpec, *, tracking_uri: str | None = None, cache_dir: Path | None = None,
             ) -> list[tuple[str, loop.MemberResult]]:
    """Train a pack's members side by side, each logged to its own MLflow run.

    Every member's run ends on its own: FINISHED, or FAILED with ``actsearch.failure=nan`` for a
    member that diverged while the others trained on. Raises BadInput before any run is touched,
    Infrastructure leaving the unfinished runs RUNNING (a retry resumes them), and any other error
    after marking the unfinished runs FAILED.
    """
    cfg = spec.child
    rt = loop.resolve(cfg)
    data = data_mod.load(cfg, cache_dir or default_cache_dir())
    trackers = [RunTracker.open(tracking_uri, m.run_id, m.experiment, run_name=m.trial or m.expression[:100])
                for m in spec.pack]
    open_ = set(range(len(trackers)))
    try:
        resumes = [_prepare(m, t, data, rt, len(spec.pack)) for m, t in zip(spec.pack, trackers, strict=True)]
        results = loop.train_pack([m.child for m in spec.pack], [m.activation for m in spec.pack], data,
                                  list(trackers), resumes)
        for i, (member, tracker, result) in enumerate(zip(spec.pack, trackers, results, strict=True)):
            if isinstance(result, NonFiniteLoss):
                log.error("trial %s (%s) failed permanently: %s", member.trial or tracker.run_id,
                          member.expression, result)
                tracker.set_tags({Tag.FAILURE: failure_text(FailureKind.DIVERGED),
                                  Tag.FAILURE_STEP: result.step})
                tracker.finish("FAILED")
            else:
                close_record(member, tracker, result)
            open_.discard(i)
        return [(t.run_id, r) for t, r in zip(trackers, results, strict=True)]
    except (Infrastructure, Interrupted):
        raise  # leave the runs RUNNING: the retry attaches to them and resumes
    except Exception as e:
        oom = is_out_of_memory(e)
        for i in sorted(open_):
            kind = FailureKind.OOM if oom else FailureKind.ERROR
            trackers[i].set_tags({Tag.FAILURE: failure_text(kind),
                                  Tag.ERROR: f"{type(e).__name__}: {e}"[:5000]})
            trackers[i].finish("FAILED")
        if oom:  # exit 5: the Job's podFailurePolicy does not retry it
            raise OutOfMemory(f"out of device memory: {str(e).splitlines()[0][:300]}") from e
        raise


def _prepare(spec: TrialSpec, tracker: RunTracker, data: data_mod.Data, rt: loop.Runtime,
             pack_size: int) -> dict[str, Any] | None:
    """Params, tags and the resolved config of one member's run; its checkpoint, if any."""
    runtime = {"device": rt.device.type, "precision": "bf16" if rt.bf16 else "fp32",
               "compile": rt.mode}
    return open_record(spec, tracker, data.sha256, runtime, pack_size)


def open_record(spec: TrialSpec, tracker: RunTracker, data_sha256: str | None,
                runtime: dict[str, str], pack_size: int) -> dict[str, Any] | None:
    """What a child writes to its run before training (params and tags in one request, its
    ``config.json``), and its checkpoint, if any. The control-plane benchmark's simulated
    children call this too, so they cost the tracking server what a real child does."""
    cfg = spec.child
    tags = tags_of(spec)
    if data_sha256:
        tags[Tag.DATA_SHA256] = data_sha256
    tags[Tag.PACK_SIZE] = str(pack_size)
    tracker.start(params_of(spec), tags)
    resume = tracker.load_checkpoint()  # periodic (checkpoint_every), or stored on SIGTERM
    with tempfile.TemporaryDirectory() as tmp:
        resolved = {
            **spec.model_dump(mode="json"), "config_hash": cfg.config_hash(),
            "fingerprint": tags[Tag.FINGERPRINT], **runtime, "code_version": code_version(),
            "pack_size": pack_size,
        }
        path = Path(tmp) / CONFIG_ARTIFACT
        path.write_text(json.dumps(resolved, indent=2))
        tracker.log_file(path)
    if resume is not None:
        tracker.set_tags({Tag.RESUMED_FROM_STEP: resume["step"]})
    return resume


def close_record(spec: TrialSpec, tracker: RunTracker, outcome: loop.Outcome) -> None:
    """Final metrics and tags (one request), the plot and the weights of one member; its run
    ends FINISHED. The control-plane benchmark's simulated children call this too."""
    cfg = spec.child
    final = {
        "val_accuracy": outcome.val_accuracy, "val_loss": outcome.val_loss,
        "test_accuracy": outcome.test_accuracy, "test_loss": outcome.test_loss,
        "wall_time_s": outcome.wall_time_s, "steps_per_s": outcome.steps_per_s,
    }
    if has_beta(spec.activation) and math.isfinite(outcome.beta_mean):  # only a β it reads
        final["beta_mean"] = outcome.beta_mean
    tracker.record(cfg.steps, final, {Tag.MODE: outcome.mode})
    with tempfile.TemporaryDirectory() as tmp:
        if cfg.plot:
            beta = outcome.beta_mean if math.isfinite(outcome.beta_mean) else 1.0
            png = plot_functions([spec.activation], Path(tmp) / PLOT_ARTIFACT, betas=[beta],
                                 labels=[f"{activation_math(spec.activation)} (learned)"],
                                 numerics=cfg.numerics)
            tracker.log_file(png)
            tracker.log_image(png, "activation", cfg.steps)  # shown in the run's charts view
        if cfg.save_weights:
            import torch

            weights = Path(tmp) / "model.pt"
            torch.save(outcome.weights, weights)
            tracker.log_file(weights, WEIGHTS_DIR)
    tracker.finish("FINISHED")
    log.info("run %s finished: val_accuracy %.4f, test_accuracy %.4f", tracker.run_id,
             outcome.val_accuracy, outcome.test_accuracy)
