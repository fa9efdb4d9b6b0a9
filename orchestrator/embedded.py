"""The embedded default: everything a search needs on one machine, wired from the spec.

Unless the spec names them, MLflow is one SQLite file for every search and benchmark run under
the same ``backend.local.workdir`` (``<workdir>/mlflow.db``, artifacts in ``<workdir>/mlartifacts``),
so they see each other (a benchmark's ``top: {search: quickstart}``, one ``actsearch-ctl ui`` for
all); checkpoints and children's files go to ``<workdir>/<search name>/``. A search started before
the store was shared kept its own ``<workdir>/<name>/mlflow.db``: while that file exists it is
the search's store, so an old search resumes (and ``top`` reads it) where it was.

A search's identity (``orchestrator.identity``) is its name and a uid generated when it starts
and kept in its checkpoint, so two searches of one name (two users of one tracking server, a
folder deleted and run again) never share MLflow runs. Results are sealed for the evaluation
cache with this folder's key (``<workdir>/trust.key``, created once; ``orchestrator.trust``):
the searches run from here reuse each other's results, and nobody else's.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.adapters.storage import Store, open_store
from orchestrator.adapters.tracking import MlflowTracker
from orchestrator.backends.local import LocalBackend
from orchestrator.contract import TrainConfig
from orchestrator.errors import ConfigError
from orchestrator.identity import SearchIdentity
from orchestrator.loop.assembly import assemble_controller
from orchestrator.loop.checkpoint import CHECKPOINT_KEY, stored_owner
from orchestrator.loop.controller import Controller
from orchestrator.spec import SearchSpec, check_backend
from orchestrator.trust import Trust, local_key

if TYPE_CHECKING:
    from orchestrator.benchmark.spec import BenchmarkSpec


@dataclass(frozen=True)
class Layout:
    workdir: Path
    tracking_uri: str
    artifact_location: str | None
    storage_uri: str


STORE_FILE = "mlflow.db"
ARTIFACTS_DIR = "mlartifacts"


def default_store(base: Path, name: str) -> Path:
    """The folder holding the embedded MLflow store: the shared one at ``base``, or the
    search's own (``base/name``) where one was made before the store was shared."""
    own = base / name
    return own if (own / STORE_FILE).exists() else base


def layout(spec: SearchSpec | BenchmarkSpec, workdir: str | Path | None = None) -> Layout:
    """Where a search (or a benchmark) run on this machine keeps its things."""
    base = Path(workdir or spec.backend.local.workdir).resolve()
    root = base / spec.name
    uri = spec.tracking.uri or os.environ.get("MLFLOW_TRACKING_URI")
    artifacts = None
    if uri is None:
        store = default_store(base, spec.name)
        uri = f"sqlite:///{store / STORE_FILE}"
        artifacts = (store / ARTIFACTS_DIR).as_uri()
    return Layout(root, uri, artifacts, spec.storage.uri or str(root / "checkpoints"))


def open_checkpoints(lay: Layout, endpoint_url: str | None, key: str, resume: bool,
                     subject: str) -> Store:
    """The checkpoint store; refuses to start over an existing checkpoint unless resuming."""
    lay.workdir.mkdir(parents=True, exist_ok=True)
    store: Store = open_store(lay.storage_uri, endpoint_url)
    if not resume and store.get(key) is not None:
        raise ConfigError(
            f"{subject} already has a checkpoint at {store.describe(key)}; "
            "pass --resume to continue it, or rename it"
        )
    return store


def local_backend(lay: Layout, gpus: list[int] | None, parallelism: int) -> LocalBackend:
    """Children as local processes; on CPU the cores are shared out between them."""
    return LocalBackend(lay.workdir, gpus=gpus,
                        cpu_threads=max(1, (os.cpu_count() or 1) // parallelism))


def prefetch_data(cfgs: Iterable[TrainConfig]) -> None:
    """Fetch, once and before any child starts, the data that local children would each fetch
    (``trainer.data.prefetch``); a data set that cannot be had stops the command with one line."""
    from orchestrator.trainer.data import prefetch
    from orchestrator.trainer.errors import Infrastructure

    for cfg in {(c.dataset, c.data_source): c for c in cfgs}.values():
        try:
            prefetch(cfg)
        except Infrastructure as e:
            raise ConfigError(str(e)) from e


def build_controller(
    spec: SearchSpec, workdir: str | Path | None = None, resume: bool = False,
    poll_interval: float = 1.0,
) -> Controller:
    """A controller with the local backend; refuses to overwrite a search unless resuming."""
    check_backend(spec.backend.kind, "local", f"search {spec.name!r}")
    prefetch_data([spec.child])
    lay = layout(spec, workdir)
    store = open_checkpoints(lay, spec.storage.endpoint_url, CHECKPOINT_KEY, resume,
                             f"search {spec.name!r}")
    me = stored_owner(store)[1] or SearchIdentity.generate(spec.name)
    trust = Trust(local_key(lay.workdir.parent))
    tracker = MlflowTracker(lay.tracking_uri, spec.tracking.experiment, lay.artifact_location,
                            owner=me, trust=trust)
    backend = local_backend(lay, spec.backend.local.gpus, spec.parallelism)
    return assemble_controller(spec, tracker=tracker, store=store, backend=backend,
                               tracking_uri=lay.tracking_uri, poll_interval=poll_interval,
                               identity=me)
