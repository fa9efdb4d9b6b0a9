"""The child's MLflow adapter: the only trainer module that imports mlflow.

Talks through an explicit ``MlflowClient`` (no fluent, process-global active run), so the run id
is always the one the controller pre-created or the one this child created. Artifacts go to the
run's artifact store: through the tracking server when it proxies artifacts, or straight to S3.
Every client failure is translated at this edge: a run that does not exist is bad input (exit 2),
anything else (server down, timeouts, S3 errors) is infrastructure (exit 4).
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

    def __init__(self, client: Any, run_id: str) -> None:
        self.client = client
        self.run_id = run_id

    @classmethod
    def open(cls, tracking_uri: str | None, run_id: str | None, experiment: str,
             run_name: str | None = None) -> RunTracker:
        """Attach to ``run_id`` (pre-created by the controller) or create a run in ``experiment``."""
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=tracking_uri)
        if run_id:
            with _translated(f"attaching to run {run_id}"):
                run = client.get_run(run_id)
                client.update_run(run_id, status="RUNNING")
                for stale in FAILURE_TAGS & set(run.data.tags):  # from an earlier, retried attempt
                    client.delete_tag(run_id, stale)
            log.info("attached to run %s", run_id)
            return cls(client, run_id)
        with _translated(f"creating a run in experiment {experiment!r}"):
            exp = client.get_experiment_by_name(experiment)
            exp_id = exp.experiment_id if exp is not None else client.create_experiment(experiment)
            run = client.create_run(exp_id, run_name=run_name)
        log.info("created run %s in experiment %s", run.info.run_id, experiment)
        return cls(client, run.info.run_id)

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        with _translated(f"{what} (run {self.run_id})"):
            return fn()

    def log_params(self, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, str(v)) for k, v in params.items()]
        self._call("logging params", lambda: self.client.log_batch(self.run_id, params=items))

    def set_tags(self, tags: dict[str, Any]) -> None:
        from mlflow.entities import RunTag

        items = [RunTag(k, str(v)) for k, v in tags.items()]
        self._call("setting tags", lambda: self.client.log_batch(self.run_id, tags=items))

    def on_metrics(self, step: int, metrics: dict[str, float]) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        # MLflow stores NaN and ±inf; keep them, they are the evidence of a diverged child
        items = [Metric(k, float(v), now, step) for k, v in metrics.items()]
        self._call("logging metrics", lambda: self.client.log_batch(self.run_id, metrics=items))

    def on_checkpoint(self, step: int, state: dict[str, Any]) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / CHECKPOINT_FILE
            torch.save(state, path)
            self.log_file(path, CHECKPOINT_DIR)
        self.set_tags({Tag.CHECKPOINT_STEP: step})
        log.info("checkpoint at step %d stored", step)

    def load_checkpoint(self) -> dict[str, Any] | None:
        """The run's last checkpoint, or None when it has none (a first attempt)."""
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
        self._call(f"uploading {path.name}", lambda: self.client.log_artifact(self.run_id, str(path), artifact_dir))

    def log_image(self, path: Path, key: str, step: int) -> None:
        """A PNG as an MLflow image under ``key``: the run's charts view shows it."""
        from PIL import Image

        with Image.open(path) as im:
            image = im.convert("RGB")
        self._call(f"logging image {key}",
                   lambda: self.client.log_image(self.run_id, image, key=key, step=step))

    def finish(self, status: str) -> None:
        self._call(f"ending the run as {status}", lambda: self.client.set_terminated(self.run_id, status=status))

