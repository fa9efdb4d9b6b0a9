"""MLflow as the results bus: a parent run per search, a pre-created child run per trial,
polling by run id (the runs in flight only), and the cross-search evaluation cache. Only this
module (and the trainer's own logging adapter) imports mlflow.

Tags written here (names in ``contract.Tag``; the trainer writes the same ones on runs it creates
itself):

| tag | on | value |
|---|---|---|
| ``actsearch.role`` | both | ``search`` or ``trial`` |
| ``actsearch.search`` | both | the search name |
| ``actsearch.search_uid`` | both | the search's uid (``orchestrator.identity``): runs are found by it |
| ``actsearch.namespace`` | both | the search's namespace (in a cluster) |
| ``actsearch.trial`` | trial | the deterministic trial id |
| ``actsearch.fingerprint`` | trial | the function's fingerprint |
| ``actsearch.config_hash`` | trial | hash of the child config |
| ``actsearch.expression`` | trial | canonical expression |
| ``actsearch.failure`` | trial | why it failed (``contract.FailureKind``: ``nan``, ``screened: …``, ``crashed: …``) |
| ``actsearch.trial_index`` | trial | its place in the search (also a metric, logged by the child) |
| ``actsearch.duplicate_of`` | trial | the run whose result a duplicate or cache hit reuses |
| ``actsearch.trust`` | trial | the controller's seal of its child's result (``orchestrator.trust``) |
| ``actsearch.stopped_early`` | trial | stopped early at this step (``loop.stopping``); ended KILLED |
| ``actsearch.best_expression``, ``…best_math``, ``…best_val_accuracy`` | search | the winner, at the end |
| ``mlflow.parentRunId`` | trial | the search's run id |
| ``mlflow.runName`` | both | ``t7 · σ(β·x)·x`` for a trial; the winner and its accuracy for an ended search |
| ``mlflow.note.content`` | search | the description: the winner, then the leaderboard |

A benchmark (``actsearch-ctl benchmark``) uses the same calls under ``BENCHMARK`` scope: its
parent run has ``actsearch.role`` ``benchmark`` and ``actsearch.benchmark`` its name, each cell's
run ``actsearch.role`` ``cell`` and ``actsearch.cell`` its cell id, so searches and benchmarks of
the same name never see each other's runs.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from orchestrator.adapters.mlflow_rest import create_run, rest_store, search_page
from orchestrator.adapters.retry import Backoff, retry
from orchestrator.contract import REWARD, FailureKind, Tag, failure_text, reusable_result
from orchestrator.echo import clip
from orchestrator.errors import ConfigError, ServiceRefused, TemporaryUnavailable
from orchestrator.identity import SearchIdentity
from orchestrator.redact import redact, redact_data
from orchestrator.space.naming import shorten
from orchestrator.trust import Trust

log = logging.getLogger(__name__)

REWARD_METRIC = REWARD
POLL_PAGE = 200  # run ids per search_runs of a poll: a filter of ~8 KB
SERIES_BATCH = 1000  # metrics per log_batch: MLflow's limit
CREATE_WORKERS = 8  # runs created side by side (``create_trial_runs``)
CACHE_OVERLAP_MS = 60_000
"""How far back before its last refresh the evaluation cache asks again for runs that ended
(``cached_results``): a run ends at its writer's clock, which may lag the controller's."""
_ENDED = "attributes.status != 'RUNNING' and attributes.status != 'SCHEDULED'"


@dataclass(frozen=True)
class Scope:
    """Which tags name a parent run and its children: a search and its trials, or a benchmark
    and its cells."""

    role: str
    name_tag: str
    child_role: str
    child_tag: str


SEARCH = Scope("search", Tag.SEARCH, "trial", Tag.TRIAL)
BENCHMARK = Scope("benchmark", Tag.BENCHMARK, "cell", Tag.CELL)


@dataclass(frozen=True)
class TrialRun:
    """What MLflow knows of one trial."""

    trial_id: str
    run_id: str
    status: str  # MLflow run status: RUNNING, SCHEDULED, FINISHED, FAILED, KILLED
    reward: float | None
    failure: str | None
    fingerprint: str | None = None
    expression: str | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)  # latest value of each metric
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.status in ("FINISHED", "FAILED", "KILLED")


def _transient(e: BaseException) -> bool:
    """Connection trouble and 5xx answers are worth retrying; 4xx answers are not."""
    import requests
    from mlflow.exceptions import MlflowException

    if isinstance(e, (requests.ConnectionError, requests.Timeout, ConnectionError, TimeoutError)):
        return True
    if isinstance(e, MlflowException):
        msg = str(e)
        return any(s in msg for s in ("failed with exception", "Max retries exceeded",
                                      "error code 5", "status code 5", "TEMPORARILY_UNAVAILABLE"))
    return False


PLATFORM_PROBES = ("dbruntime", "IPython", "pyspark")
"""Modules MLflow's client imports before every request to learn whether it runs on Databricks
(its request-header providers). Python does not remember a failed import: each one scans
``sys.path`` again, about 1 ms of CPU per request, most of what a controller spends."""


def remember_absent_probes() -> None:
    """Mark the ``PLATFORM_PROBES`` that are not installed as absent (``sys.modules[name] =
    None``, Python's own negative entry), so MLflow's probes fail at once instead of searching
    ``sys.path`` on every request. Installed ones are left alone: nothing else changes."""
    for name in PLATFORM_PROBES:
        if name not in sys.modules and importlib.util.find_spec(name) is None:
            sys.modules[name] = None  # type: ignore[assignment]  # the documented negative entry


def _q(value: str) -> str:
    return "'" + value.replace("'", "\\'") + "'"


class MlflowTracker:
    """The controller's view of MLflow. Every call retries transient errors with backoff."""

    def __init__(
        self,
        tracking_uri: str,
        experiment: str,
        artifact_location: str | None = None,
        backoff: Backoff = Backoff(),
        scope: Scope = SEARCH,
        connect_timeout: float | None = None,
        owner: SearchIdentity | None = None,
        trust: Trust | None = None,
    ) -> None:
        """Connects at once: an MLflow server that does not answer within ``connect_timeout``
        seconds (default: ``$ACTSEARCH_TRACKING_TIMEOUT``, else 60) is TemporaryUnavailable, a
        URI MLflow cannot use or a server that is not MLflow is a ConfigError (``check_server``).

        ``owner``: the search this tracker serves; its parent and trial runs are tagged with its
        uid and found by it (without one, by name: benchmarks, reading old searches).
        ``trust``: how it seals its children's results and which sealed ones the evaluation
        cache reuses (without one the cache is off)."""
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient

        remember_absent_probes()
        self.scope = scope
        self.owner = owner
        self.trust = trust
        self.tracking_uri = tracking_uri
        self.artifact_location = artifact_location
        try:
            self.client = MlflowClient(tracking_uri=tracking_uri)
        except (MlflowException, ValueError) as e:
            raise ConfigError(redact(
                f"tracking URI {clip(tracking_uri)!r} cannot be used: "
                f"{clip(str(e).splitlines()[0] if str(e) else type(e).__name__, 200)}")) from e
        self.backoff = backoff
        # what this tracker cost the server: calls made (each attempt of a retried one), and
        # runs read back by searches (the benchmark and the tests of polling read these)
        self.requests = 0
        self.runs_read = 0
        self._lock = threading.Lock()  # the counters, from create_trial_runs' threads
        self._pool: ThreadPoolExecutor | None = None
        # the evaluation cache (``cached_results``): per (config hash, search), the newest
        # reusable run of each fingerprint and when it was last refreshed
        self._cache: dict[tuple[str, str], dict[str, tuple[int, TrialRun]]] = {}
        self._cache_since: dict[tuple[str, str], int] = {}
        check_server(self.client, tracking_uri, experiment,
                     tracking_timeout() if connect_timeout is None else connect_timeout)
        self.experiment_id = self._call(
            lambda: self._ensure_experiment(experiment), f"MLflow experiment {experiment!r}"
        )

    def _call(self, fn: Callable[[], Any], what: str) -> Any:
        def counted() -> Any:
            with self._lock:
                self.requests += 1
            return fn()

        return retry(counted, f"{what} at {redact(self.tracking_uri)}", _transient, self.backoff)

    def _end(self, run_id: str, status: str) -> None:
        """End a run in one request: ``MlflowClient.set_terminated`` first reads the run back to
        print its URL (unless ``$MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT``), a request per run
        for nothing; the store's ``update_run_info`` is what it then calls."""
        from mlflow.entities import RunStatus

        store = getattr(getattr(self.client, "_tracking_client", None), "store", None)
        if store is None or not hasattr(store, "update_run_info"):
            self.client.set_terminated(run_id, status)
            return
        store.update_run_info(run_id, run_status=RunStatus.from_string(status),
                              end_time=int(time.time() * 1000), run_name=None)

    def _ensure_experiment(self, name: str) -> str:
        exp = self.client.get_experiment_by_name(name)
        if exp is not None:
            return exp.experiment_id
        return self.client.create_experiment(name, artifact_location=self.artifact_location)

    def _search_page(self, filter_string: str, max_results: int, token: str | None
                     ) -> tuple[list[Any], str | None]:
        """One page of runs: through the REST endpoint read as plain JSON where the client
        talks to a server (``adapters.mlflow_rest``: a fraction of the client's CPU per run),
        else through the client."""
        store = rest_store(self.client)
        if store is not None:
            return search_page(store, self.experiment_id, filter_string, max_results, token)
        page = self.client.search_runs([self.experiment_id], filter_string,
                                       max_results=max_results, page_token=token)
        return list(page), page.token

    def _search(self, filter_string: str, max_results: int = 1000) -> list[Any]:
        runs: list[Any] = []
        token = None
        while True:
            page, token = self._call(
                partial(self._search_page, filter_string, min(max_results, 1000), token),
                "MLflow search_runs",
            )
            runs += page
            with self._lock:
                self.runs_read += len(page)
            if not token or len(runs) >= max_results:
                return runs

    # -- searches -------------------------------------------------------------------------------

    def _parent_filter(self, name: str) -> str:
        s = self.scope
        return (f"tags.`{s.name_tag}` = {_q(name)} and tags.`{Tag.ROLE}` = {_q(s.role)}"
                + _owner_filter(self.owner))

    def _owner_tags(self) -> dict[str, str]:
        return owner_tags(self.owner)

    def start_search(self, search: str, spec: dict[str, Any]) -> str:
        """The search's parent run, created once; a restarted controller gets the same run. Its
        params and ``search_spec.json`` are the spec with every URI's credentials redacted."""
        spec = redact_data(spec)
        found = self._search(self._parent_filter(search), 1)
        if found:
            return found[0].info.run_id
        run = self._call(
            lambda: self.client.create_run(
                self.experiment_id, run_name=shorten(search, 250),
                tags={Tag.ROLE: self.scope.role, self.scope.name_tag: search,
                      **self._owner_tags()},
            ),
            f"MLflow create {self.scope.role} run",
        )
        run_id = run.info.run_id
        flat = _flatten(spec)
        if "seed" in flat:  # the search's own seed, apart from each child's ``child.seed``
            flat["search.seed"] = flat.pop("seed")
        self._call(lambda: self.client.log_batch(run_id, params=list(_params(flat))), "MLflow log params")
        self._call(lambda: self.client.log_dict(run_id, spec, "search_spec.json"),
                   "MLflow log spec")
        return run_id

    def log_generation(self, parent_run_id: str, step: int, metrics: dict[str, float]) -> None:
        from mlflow.entities import Metric

        ms = [Metric(k, float(v), 0, step) for k, v in metrics.items()]
        self._call(lambda: self.client.log_batch(parent_run_id, metrics=ms), "MLflow log metrics")

    def log_metrics(self, run_id: str, step: int, metrics: dict[str, float]) -> None:
        """Metrics at one step."""
        self.log_generation(run_id, step, metrics)

    def log_points(self, run_id: str, points: Sequence[tuple[int, Mapping[str, float]]]) -> None:
        """Metrics at several steps (the parent's per-trial series: step = trial index), in as
        few requests as MLflow allows (``SERIES_BATCH`` metrics each)."""
        from mlflow.entities import Metric

        ms = [Metric(k, float(v), 0, step) for step, metrics in points for k, v in metrics.items()]
        for start in range(0, len(ms), SERIES_BATCH):
            batch = ms[start:start + SERIES_BATCH]
            self._call(partial(self.client.log_batch, run_id, metrics=batch), "MLflow log metrics")

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        """Tags on a run; ``Tag.RUN_NAME`` renames it, ``Tag.NOTE`` is its description."""
        from mlflow.entities import RunTag

        items = [RunTag(k, v[:8000]) for k, v in tags.items()]
        self._call(lambda: self.client.log_batch(run_id, tags=items), "MLflow set tags")

    def log_image(self, run_id: str, local_path: str, key: str, step: int = 0) -> None:
        """A PNG as an MLflow image under ``key``: shown in the run's charts view."""
        from PIL import Image

        with Image.open(local_path) as im:
            image = im.convert("RGB")
        self._call(lambda: self.client.log_image(run_id, image, key=key, step=step),
                   f"MLflow log image {key}")

    def log_text(self, run_id: str, text: str, path: str) -> None:
        self._call(lambda: self.client.log_text(run_id, text, path), f"MLflow log {path}")

    def log_file(self, run_id: str, local_path: str, artifact_dir: str | None = None) -> None:
        self._call(lambda: self.client.log_artifact(run_id, local_path, artifact_dir),
                   f"MLflow upload {os.path.basename(local_path)}")

    def finish_search(self, parent_run_id: str, status: str = "FINISHED") -> None:
        self._call(lambda: self._end(parent_run_id, status), "MLflow end search")

    def search_run(self, search: str) -> str | None:
        found = self._search(self._parent_filter(search), 1)
        return found[0].info.run_id if found else None

    # -- trials ---------------------------------------------------------------------------------

    def create_trial_run(
        self, search: str, parent_run_id: str, trial_id: str, tags: dict[str, str],
        new: bool = False,
    ) -> str:
        """Pre-create the child's run (idempotent by trial id): the child logs into it.

        Find-or-create is retried as a whole: a create that timed out may still land on the
        server, and the retry must then find that run instead of making a second one. ``new``:
        the caller knows no run of this trial was ever created (the controller proposed it and
        made it durable before creating anything for it), so a first attempt skips the search
        by tag, a request whose cost grows with the experiment's runs.
        """
        s = self.scope
        tags = dict(tags)
        run_name = shorten(tags.pop(Tag.RUN_NAME, trial_id), 250)  # MLflow's SQL column: 250
        all_tags = {
            Tag.PARENT_RUN: parent_run_id,
            Tag.ROLE: s.child_role,
            s.name_tag: search,
            s.child_tag: trial_id,
            **tags,
            **self._owner_tags(),
        }

        attempts = 0

        def find_or_create() -> str:
            nonlocal attempts
            attempts += 1
            existing = [] if new and attempts == 1 else self.client.search_runs(
                [self.experiment_id], _trial_filter(s, search, trial_id, self.owner), max_results=1
            )
            if existing:
                return existing[0].info.run_id
            store = rest_store(self.client)  # JSON without protobuf (``adapters.mlflow_rest``)
            if store is not None:
                return create_run(store, self.experiment_id, run_name, all_tags)
            run_id: str = self.client.create_run(
                self.experiment_id, run_name=run_name, tags=all_tags
            ).info.run_id
            return run_id

        return self._call(find_or_create, f"MLflow create run for {trial_id}")

    def _side_by_side(self, fn: Callable[[Any], str], items: Sequence[Any]) -> list[str]:
        """``fn`` of each item, up to ``CREATE_WORKERS`` at a time, results in order."""
        if len(items) < 2:
            return [fn(i) for i in items]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(CREATE_WORKERS, thread_name_prefix="mlflow-create")
        return list(self._pool.map(fn, items))

    def create_trial_runs(self, search: str, parent_run_id: str,
                          trials: Sequence[tuple[str, dict[str, str], bool]]) -> list[str]:
        """``create_trial_run`` for each (trial id, tags, new), the run ids in order: up to
        ``CREATE_WORKERS`` at a time, so a generation's runs cost a few round trips rather
        than two per trial one after another."""
        return self._side_by_side(lambda t: self.create_trial_run(search, parent_run_id, *t),
                                  trials)

    def create_settled_runs(self, search: str, parent_run_id: str,
                            settled: Sequence[tuple[str, dict[str, str], bool, float | None,
                                                    str | None]]) -> list[str]:
        """The closed runs of trials settled without training, for each (trial id, tags, new,
        reward, failure), side by side; the run ids in order. Three requests a run: create it,
        one ``log_batch`` (the ``trial_index`` metric, and the reward or the failure tag), end
        it FINISHED or FAILED."""
        def one(item: tuple[str, dict[str, str], bool, float | None, str | None]) -> str:
            trial_id, tags, new, reward, failure = item
            run_id = self.create_trial_run(search, parent_run_id, trial_id, tags, new)
            self._outcome(run_id, reward, failure, tags.get(Tag.TRIAL_INDEX))
            return run_id

        return self._side_by_side(one, settled)

    def _outcome(self, run_id: str, reward: float | None, failure: str | None,
                 index: str | None) -> None:
        from mlflow.entities import Metric, RunTag

        now = int(time.time() * 1000)
        metrics = [] if index is None else [Metric("trial_index", float(index), now, 0)]
        if failure is None:
            metrics.append(Metric(REWARD_METRIC, float(reward or 0.0), now, 0))
        tags = [] if failure is None else [RunTag(Tag.FAILURE, failure[:500])]
        self._call(lambda: self.client.log_batch(run_id, metrics=metrics, tags=tags),
                   "MLflow record outcome")
        self._call(lambda: self._end(run_id, "FINISHED" if failure is None else "FAILED"),
                   "MLflow end run")

    def _trial_runs(self, search: str, trial_id: str | None = None) -> list[Any]:
        return self._search(_trial_filter(self.scope, search, trial_id, self.owner), 100_000)

    def trial_runs(self, search: str) -> dict[str, TrialRun]:
        """Every trial of a search, by trial id (one paged query, not one per trial)."""
        runs = (_trial_run(r, self.scope.child_tag) for r in self._trial_runs(search))
        return {r.trial_id: r for r in runs}

    def ended_runs(self, search: str, runs: Mapping[str, str | None]) -> dict[str, TrialRun]:
        """Those of ``runs`` (trial id -> its run id) that ended, by trial id: what a poll asks.

        Only the runs named are read, so a poll costs what is in flight, not what the search
        ever ran. The run ids go ``POLL_PAGE`` at a time into one ``search_runs`` each
        (``attributes.run_id IN (...)``, the server dropping runs still RUNNING or SCHEDULED):
        one request per page instead of one ``get_run`` per run (docs/benchmarks.md, "Control
        plane"). A trial without a run id (never in a checkpoint written by this version) is
        looked up by its tag. A run that does not exist, or was deleted, is absent.
        """
        by_run = {run_id: trial for trial, run_id in runs.items() if run_id is not None}
        ids = sorted(by_run)
        found: dict[str, TrialRun] = {}
        for start in range(0, len(ids), POLL_PAGE):
            page = ids[start:start + POLL_PAGE]
            quoted = ", ".join(_q(i) for i in page)
            for run in self._search(f"attributes.run_id IN ({quoted}) and {_ENDED}", POLL_PAGE):
                tr = _trial_run(run, self.scope.child_tag)
                found[by_run[tr.run_id]] = replace(tr, trial_id=by_run[tr.run_id])
        for trial in (t for t, run_id in runs.items() if run_id is None):
            by_tag = self.trial_run(search, trial)
            if by_tag is not None and by_tag.done:
                found[trial] = by_tag
        return found

    def metric_history(self, run_id: str, key: str) -> dict[int, float]:
        """Every value a run logged of ``key``, by step (the last value where a step repeats)."""
        history = self._call(lambda: self.client.get_metric_history(run_id, key),
                             f"MLflow metric history {key!r}")
        return {int(m.step): float(m.value) for m in sorted(history, key=lambda m: m.timestamp)}

    def stop_run(self, run_id: str, step: int) -> None:
        """A child the controller stopped early (``orchestrator.loop.stopping``): tagged with
        the step it reached, and ended KILLED unless it ended meanwhile (its process left it
        RUNNING on SIGTERM, to be resumed; this one is not)."""
        self._call(lambda: self.client.set_tag(run_id, Tag.STOPPED_EARLY, str(step)),
                   "MLflow tag stopped early")
        status = self._call(lambda: self.client.get_run(run_id).info.status, "MLflow get run")
        if status in ("RUNNING", "SCHEDULED"):
            self._call(lambda: self._end(run_id, "KILLED"), "MLflow end stopped run")

    def trial_run(self, search: str, trial_id: str) -> TrialRun | None:
        runs = self._trial_runs(search, trial_id)
        return _trial_run(runs[0], self.scope.child_tag) if runs else None

    def mark_failed(self, run_id: str, reason: str) -> None:
        """Record why a trial failed when its child could not (a crash before logging)."""
        self._call(lambda: self.client.set_tag(run_id, Tag.FAILURE, reason[:500]),
                   "MLflow tag failure")
        self._call(lambda: self._end(run_id, "FAILED"), "MLflow fail run")

    def record_outcome(self, run_id: str, reward: float | None, failure: str | None) -> None:
        """Close a trial run the controller settled itself (a cache hit or a screened function)."""
        self._outcome(run_id, reward, failure, None)

    # -- the evaluation cache -------------------------------------------------------------------

    def _cache_filter(self, config_hash: str, search: str | None) -> str:
        """Trials of this child config in the trust's scope, less this search's own (``search``;
        by uid where the search has one): its own results are its controller's dedup table."""
        f = f"tags.`{Tag.CONFIG_HASH}` = {_q(config_hash)} and tags.`{Tag.ROLE}` = 'trial'"
        trust = self.trust
        if trust is not None and trust.scope == "namespace" and trust.namespace:
            f += f" and tags.`{Tag.NAMESPACE}` = {_q(trust.namespace)}"
        if search is not None:
            f += (f" and tags.`{Tag.SEARCH_UID}` != {_q(self.owner.uid)}" if self.owner is not None
                  else f" and tags.`{Tag.SEARCH}` != {_q(search)}")
        return f

    def _sealed_result(self, tr: TrialRun, config_hash: str) -> bool:
        """Reusable, and sealed by this installation's controller (``trust``), not just tagged."""
        trust = self.trust
        return (trust is not None and tr.fingerprint is not None
                and reusable_result(tr.status, tr.reward, tr.failure)
                and trust.accepts(tr.tags.get(Tag.TRUST), tr.tags, tr.run_id, tr.fingerprint,
                                  config_hash, tr.reward, tr.failure, Tag.NAMESPACE))

    def cached_result(self, fingerprint: str, config_hash: str) -> TrialRun | None:
        """One function's sealed result from any search in scope, read afresh (no index)."""
        f = self._cache_filter(config_hash, None) + f" and tags.`{Tag.FINGERPRINT}` = {_q(fingerprint)}"
        return next((tr for tr in map(_trial_run, self._search(f, 50))
                     if self._sealed_result(tr, config_hash)), None)

    def cached_results(self, fingerprints: Collection[str], config_hash: str, search: str
                       ) -> dict[str, TrialRun]:
        """Finished (or permanently failed) trials of the same functions and child config from
        other searches in scope whose results this installation sealed (``trust``; in
        ``namespace`` scope, of this search's namespace), by fingerprint: their results are
        reused instead of training again. None without a trust key.

        One paged ``search_runs`` per call (a generation of proposals), not one per function:
        the first call reads every reusable run of other searches with this config, later ones
        only runs that ended since the last call (less ``CACHE_OVERLAP_MS``, for writers whose
        clock lags), into an index kept here. A tag filter costs the server a scan of that tag
        whatever it matches, so one per generation instead of one per proposal. The index keeps
        what was verified when read: a reward forged later on the run is never seen.
        """
        if self.trust is None:
            return {}
        index = self._cache.setdefault((config_hash, search), {})
        since = self._cache_since.get((config_hash, search))
        now = int(time.time() * 1000)
        f = self._cache_filter(config_hash, search)
        if since is not None:
            f += f" and attributes.end_time >= {since - CACHE_OVERLAP_MS}"
        for run in self._search(f, 1_000_000):
            tr = _trial_run(run)
            known = index.get(tr.fingerprint or "")
            if (self._sealed_result(tr, config_hash) and tr.fingerprint
                    and (known is None or (run.info.start_time or 0) >= known[0])):
                index[tr.fingerprint] = (run.info.start_time or 0,
                                         replace(tr, metrics={}, tags={}))
        self._cache_since[(config_hash, search)] = now
        return {fp: index[fp][1] for fp in fingerprints if fp in index}

    def vouch(self, run_id: str, fingerprint: str, config_hash: str, reward: float | None,
              failure: str | None) -> None:
        """Seal the result of a trial this search's own child trained (``trust``), so the
        evaluation cache of this installation may reuse it; only reusable results are sealed."""
        status = "FINISHED" if failure is None else "FAILED"
        if self.trust is None or not reusable_result(status, reward, failure):
            return
        value = self.trust.seal(run_id, fingerprint, config_hash, reward, failure)
        self._call(lambda: self.client.set_tag(run_id, Tag.TRUST, value), "MLflow seal result")


def experiment_id(tracking_uri: str, experiment: str) -> str | None:
    """The id of ``experiment`` at ``tracking_uri`` (None when it does not exist yet)."""
    from mlflow.tracking import MlflowClient

    exp = MlflowClient(tracking_uri=tracking_uri).get_experiment_by_name(experiment)
    return None if exp is None else str(exp.experiment_id)


def owner_tags(owner: SearchIdentity | None) -> dict[str, str]:
    """The identity tags of a search's runs (none without an owner)."""
    if owner is None:
        return {}
    tags = {Tag.SEARCH_UID: owner.uid}
    if owner.namespace:
        tags[Tag.NAMESPACE] = owner.namespace
    return tags


def _owner_filter(owner: SearchIdentity | None) -> str:
    return "" if owner is None else f" and tags.`{Tag.SEARCH_UID}` = {_q(owner.uid)}"


def _trial_filter(scope: Scope, search: str, trial_id: str | None = None,
                  owner: SearchIdentity | None = None) -> str:
    f = f"tags.`{scope.name_tag}` = {_q(search)} and tags.`{Tag.ROLE}` = {_q(scope.child_role)}"
    f += _owner_filter(owner)
    if trial_id is not None:
        f += f" and tags.`{scope.child_tag}` = {_q(trial_id)}"
    return f


def _trial_run(run: Any, child_tag: str = Tag.TRIAL) -> TrialRun:
    tags = run.data.tags
    reward = run.data.metrics.get(REWARD_METRIC)
    failure = tags.get(Tag.FAILURE)
    if run.info.status == "FINISHED" and reward is None and failure is None:
        failure = failure_text(FailureKind.NO_REWARD, REWARD_METRIC)
    return TrialRun(
        trial_id=tags.get(child_tag, run.info.run_name or run.info.run_id),
        run_id=run.info.run_id,
        status=run.info.status,
        reward=reward,
        failure=failure if run.info.status != "FINISHED" or reward is None else None,
        fingerprint=tags.get(Tag.FINGERPRINT),
        expression=tags.get(Tag.EXPRESSION),
        metrics=dict(run.data.metrics),
        tags=dict(tags),
    )


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = json.dumps(v) if isinstance(v, (list, tuple)) else str(v)
    return out


def _params(flat: dict[str, str]) -> Iterable[Any]:
    from mlflow.entities import Param

    return [Param(k[:250], v[:6000]) for k, v in flat.items()]


# -- failing fast on a tracking server that is not there -------------------------------------------

TRACKING_TIMEOUT_ENV = "ACTSEARCH_TRACKING_TIMEOUT"
DEFAULT_TRACKING_TIMEOUT = 60.0
"""Seconds a command or controller waits for an MLflow server to first answer (each later call
has MLflow's own and this module's retries, for outages in the middle of a search)."""
_PROBE = "/api/2.0/mlflow/experiments/get-by-name"


def tracking_timeout(environ: Mapping[str, str] | None = None) -> float:
    """``$ACTSEARCH_TRACKING_TIMEOUT`` in seconds (default 60); ConfigError when not a positive
    number."""
    raw = (os.environ if environ is None else environ).get(TRACKING_TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_TRACKING_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"${TRACKING_TIMEOUT_ENV} must be a positive number of seconds; "
                          f"got {clip(raw)!r}")
    return value


def check_server(client: Any, uri: str, experiment: str, timeout: float,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
    """For an ``http(s)`` tracking URI, ask the server for ``experiment`` once, with no retries
    inside MLflow (whose defaults wait minutes per call), and again with backoff until it answers
    or ``timeout`` seconds have passed. No answer: TemporaryUnavailable naming the URI and
    ``$ACTSEARCH_TRACKING_TIMEOUT``. An answer that is not MLflow's (another web server, a
    proxy's error page) or a refusal (401, 403): ConfigError. Database URIs have nothing to
    wait for: their errors come from the first call."""
    from mlflow.utils.rest_utils import http_request

    store: Any = getattr(getattr(client, "_tracking_client", None), "store", None)
    shown = redact(uri)  # quoted in errors and warnings; ``uri`` itself may carry a password
    if not uri.startswith(("http://", "https://")) or not hasattr(store, "get_host_creds"):
        return
    deadline = clock() + timeout
    delay = 0.5
    while True:
        try:
            resp = http_request(store.get_host_creds(), _PROBE, "GET", max_retries=0,
                                timeout=max(1, min(10, math.ceil(deadline - clock()))),
                                raise_on_status=False, params={"experiment_name": experiment})
            if resp.status_code < 500:
                _check_answer(resp, shown)
                return
            last = f"HTTP {resp.status_code}"
        except ConfigError:
            raise
        except Exception as e:
            if not _transient(e):
                raise ConfigError(f"tracking URI {clip(shown)!r} cannot be used: "
                                  f"{clip(redact(str(e)), 200)}") from e
            last = clip(redact(str(e)), 200)
        if clock() + delay >= deadline:
            raise TemporaryUnavailable(
                f"MLflow tracking server {clip(shown)} did not answer within {timeout:g} s "
                f"(last: {last}); is it running and reachable from here? "
                f"${TRACKING_TIMEOUT_ENV} sets how long to wait")
        log.warning("MLflow tracking server %s not answering (%s); retry in %.1f s",
                    clip(shown), last, delay)
        sleep(delay)
        delay = min(delay * 2, 10.0)


def _check_answer(resp: Any, uri: str) -> None:
    """An MLflow server answers the probe with JSON: the experiment (200) or
    RESOURCE_DOES_NOT_EXIST (404)."""
    try:
        body = resp.json()
    except ValueError:
        body = None
    if resp.status_code == 200 and isinstance(body, dict) and "experiment" in body:
        return
    if (resp.status_code == 404 and isinstance(body, dict)
            and body.get("error_code") == "RESOURCE_DOES_NOT_EXIST"):
        return
    if resp.status_code in (401, 403):
        raise ServiceRefused(f"MLflow tracking server {clip(uri)} refused access (HTTP "
                             f"{resp.status_code}): set MLFLOW_TRACKING_USERNAME and "
                             "MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN)",
                             "TrackingRefused")
    kind = resp.headers.get("Content-Type", "no content type")
    raise ServiceRefused(f"{clip(uri)} does not answer as an MLflow tracking server (GET "
                         f"{_PROBE}: HTTP {resp.status_code}, {clip(kind, 60)}); check the "
                         "tracking URI", "NotMlflow")
