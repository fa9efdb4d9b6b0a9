"""The child's MLflow adapter: the only trainer module that imports mlflow.

Talks through an explicit ``MlflowClient`` (no fluent, process-global active run), so the run id
is always the one the controller pre-created or the one this child created. Artifacts go to the
run's artifact store: through the tracking server when it proxies artifacts, or straight to S3.
Every client failure is translated at this edge: a run that does not exist is bad input (exit 2),
anything else (server down, timeouts, S3 errors) is infrastructure (exit 4).

Requests are few, because the tracking server serves every child of every search: the attach
reads the run once (its tags say whether a checkpoint exists and which trial index to log, its
artifact URI where files go), params and tags go in one ``log_batch`` (``start``), final metrics
and tags in another (``record``), and the status changes without ``update_run``'s and
``set_terminated``'s read-backs (docs/benchmarks.md, "Control plane").
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import torch

from orchestrator.contract import Tag
from orchestrator.trainer.errors import BadInput, Infrastructure

log = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"
CHECKPOINT_FILE = "last.pt"
FAILURE_TAGS = frozenset({Tag.FAILURE, Tag.FAILURE_STEP, Tag.ERROR})
T = TypeVar("T")


@contextmanager
def _translated(what: str) -> Iterator[None]:
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as e:
        if e.error_code == "RESOURCE_DOES_NOT_EXIST":
            raise BadInput(f"MLflow: {what}: {e.message}") from e
        raise Infrastructure(f"MLflow: {what} failed: {e.message}") from e
    except (OSError, ConnectionError) as e:  # requests' errors are OSErrors
        raise Infrastructure(f"MLflow: {what} failed: {e}") from e


class RunTracker:
    """One MLflow run, as the training loop and the entry point need it (implements loop.Hooks)."""

    def __init__(self, client: Any, run_id: str, tags: dict[str, str] | None = None,
                 artifact_uri: str | None = None) -> None:
        self.client = client
        self.run_id = run_id
        self.tags = dict(tags or {})  # the run's tags when attached (none on a created run)
        self.artifact_uri = artifact_uri  # from the run as read: files go there directly
        self._repo: Any = None

    @classmethod
    def open(cls, tracking_uri: str | None, run_id: str | None, experiment: str,
             run_name: str | None = None) -> RunTracker:
        """Attach to ``run_id`` (pre-created by the controller) or create a run in ``experiment``."""
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=tracking_uri)
        if run_id:
            with _translated(f"attaching to run {run_id}"):
                run = client.get_run(run_id)
                _set_status(client, run_id, "RUNNING", run.info.end_time)
                for stale in FAILURE_TAGS & set(run.data.tags):  # from an earlier, retried attempt
                    client.delete_tag(run_id, stale)
            log.info("attached to run %s", run_id)
            return cls(client, run_id, run.data.tags, run.info.artifact_uri)
        with _translated(f"creating a run in experiment {experiment!r}"):
            exp = client.get_experiment_by_name(experiment)
            exp_id = exp.experiment_id if exp is not None else client.create_experiment(experiment)
            run = client.create_run(exp_id, run_name=run_name)
        log.info("created run %s in experiment %s", run.info.run_id, experiment)
        return cls(client, run.info.run_id, artifact_uri=run.info.artifact_uri)

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        with _translated(f"{what} (run {self.run_id})"):
            return fn()

    def _batch(self, what: str, step: int = 0, metrics: dict[str, float] | None = None,
               params: dict[str, Any] | None = None, tags: dict[str, Any] | None = None) -> None:
        """Metrics (at ``step``), params and tags in one ``log_batch`` request."""
        import time

        from mlflow.entities import Metric, Param, RunTag

        now = int(time.time() * 1000)
        # MLflow stores NaN and ±inf; keep them, they are the evidence of a diverged child
        ms = [Metric(k, float(v), now, step) for k, v in (metrics or {}).items()]
        ps = [Param(k, str(v)) for k, v in (params or {}).items()]
        ts = [RunTag(k, str(v)) for k, v in (tags or {}).items()]
        self._call(what, lambda: self.client.log_batch(self.run_id, metrics=ms, params=ps, tags=ts))

    def start(self, params: dict[str, Any], tags: dict[str, Any]) -> None:
        """The run's params and tags, and the ``trial_index`` metric of a run the controller
        created (from its ``actsearch.trial_index`` tag, so charts can plot against it), in one
        request."""
        index = self.tags.get(Tag.TRIAL_INDEX, "")
        metrics = {"trial_index": float(index)} if index.isdigit() else {}
        self._batch("logging params and tags", 0, metrics, params, tags)

    def log_params(self, params: dict[str, Any]) -> None:
        self._batch("logging params", params=params)

    def set_tags(self, tags: dict[str, Any]) -> None:
        self._batch("setting tags", tags=tags)

    def on_metrics(self, step: int, metrics: dict[str, float]) -> None:
        self._batch("logging metrics", step, metrics)

    def record(self, step: int, metrics: dict[str, float], tags: dict[str, Any]) -> None:
        """Metrics at ``step`` and tags in one request (a finished child's final record)."""
        self._batch("logging final metrics", step, metrics, tags=tags)

    def on_checkpoint(self, step: int, state: dict[str, Any]) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / CHECKPOINT_FILE
            torch.save(state, path)
            self.log_file(path, CHECKPOINT_DIR)
        self.set_tags({Tag.CHECKPOINT_STEP: step})
        self.tags[Tag.CHECKPOINT_STEP] = str(step)
        log.info("checkpoint at step %d stored", step)

    def load_checkpoint(self) -> dict[str, Any] | None:
        """The run's last checkpoint, or None when it has none (a first attempt). Only a run
        tagged ``actsearch.checkpoint_step`` (set once a checkpoint is stored) is asked for its
        artifacts: a first attempt costs no request here. A checkpoint whose tag was never
        written (the child killed in between) is not used: the retry trains from the start."""
        if Tag.CHECKPOINT_STEP not in self.tags:
            return None
        wanted = f"{CHECKPOINT_DIR}/{CHECKPOINT_FILE}"
        listed = self._call("listing checkpoints", lambda: self.client.list_artifacts(self.run_id, CHECKPOINT_DIR))
        if not any(f.path == wanted for f in listed):
            return None
        with tempfile.TemporaryDirectory() as tmp:
            local = self._call("downloading the checkpoint",
                               lambda: self.client.download_artifacts(self.run_id, wanted, tmp))
            # weights_only: a checkpoint holds tensors and plain containers, never code
            return torch.load(local, map_location="cpu", weights_only=True)

    def log_file(self, path: Path, artifact_dir: str | None = None) -> None:
        """Upload a file to the run's artifact store, whose location the attach read: MLflow's
        ``log_artifact`` would read the run again to learn it."""
        if not self.artifact_uri:
            self._call(f"uploading {path.name}",
                       lambda: self.client.log_artifact(self.run_id, str(path), artifact_dir))
            return
        if self._repo is None:
            from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

            self._repo = get_artifact_repository(self.artifact_uri,
                                                 tracking_uri=self.client.tracking_uri)
        self._call(f"uploading {path.name}", lambda: self._repo.log_artifact(str(path), artifact_dir))

    def log_image(self, path: Path, key: str, step: int) -> None:
        """A PNG as an MLflow image under ``key``: the run's charts view shows it."""
        from PIL import Image

        with Image.open(path) as im:
            image = im.convert("RGB")
        self._call(f"logging image {key}",
                   lambda: self.client.log_image(self.run_id, image, key=key, step=step))

    def finish(self, status: str) -> None:
        import time

        self._call(f"ending the run as {status}",
                   lambda: _set_status(self.client, self.run_id, status, int(time.time() * 1000)))


def _set_status(client: Any, run_id: str, status: str, end_time: int | None) -> None:
    """A run's status in one request: ``update_run`` and ``set_terminated`` each read the run
    back first (for its end time, or to print its URL)."""
    from mlflow.entities import RunStatus

    store = getattr(getattr(client, "_tracking_client", None), "store", None)
    if store is None or not hasattr(store, "update_run_info"):
        if status == "RUNNING":
            client.update_run(run_id, status=status)
        else:
            client.set_terminated(run_id, status=status, end_time=end_time)
        return
    store.update_run_info(run_id, run_status=RunStatus.from_string(status), end_time=end_time,
                          run_name=None)
