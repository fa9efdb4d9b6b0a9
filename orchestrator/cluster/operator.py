"""The operator: every ActivationSearch object in the watched namespaces gets a search loop.

kopf watches the objects; a ``@kopf.daemon`` per object runs ``SearchRunner`` in a thread for as
long as the object exists. The runner builds the controller (``incluster.build_controller``),
always resumes from the search's checkpoint (a restarted operator re-attaches to the Jobs it
launched, by name, instead of launching them again), then ticks and sleeps, writing a summary to
the object's status subresource whenever it changes. On deletion kopf sets ``stopped``; the runner
ends between two ticks and kopf removes its finalizer; the Jobs go with the object through their
ownerReferences.

Edits (``orchestrator.loop.amend``): a new ``metadata.generation`` that changes only live fields
(budget, parallelism, packing, Job scheduling) rebuilds the controller from its checkpoint with
the edited spec; any other edit is answered with a ``SpecChangeRejected`` Event and the search
runs on. The daemon's filter (``needs_a_loop``) stops the loop of a search that ended at its
current generation; an edit, or ``actsearch-ctl retry`` (which clears ``observedGeneration``),
brings it back.

Cancel: ``actsearch-ctl cancel`` sets the ``actsearch.io/cancel-requested`` annotation; between
two ticks the loop deletes the search's running Jobs, writes its checkpoint (a retry resumes
from it and launches the cancelled children again) and reports phase Cancelled.

Status: besides the summaries (``incluster.search_status``), every write carries the standard
conditions Ready, Succeeded and Failed (``orchestrator.cluster.conditions``), derived from the phase, so
``kubectl wait --for=condition=Succeeded`` works.

Failures are split the project's way: a bad spec, a refused permission or an invalid object
(``ConfigError``) ends the search with phase Failed and the reason as its message; an outage
(``TemporaryUnavailable``, after the per-call retries) is written to the message, waited out
with backoff, and the controller is rebuilt from its checkpoint.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from orchestrator.adapters.kube import CANCEL_ANNOTATION, GROUP, PLURAL, VERSION, Cluster
from orchestrator.cluster.conditions import (
    CANCELLED,
    ENDED,
    FAILED,
    PENDING,
    RUNNING,
    SUCCEEDED,
    UNAVAILABLE,
    conditions,
)
from orchestrator.cluster.incluster import (
    ClusterDefaults,
    build_controller,
    progress_message,
    search_ref,
    search_status,
    spec_of,
)
from orchestrator.errors import ConfigError, TemporaryUnavailable
from orchestrator.loop.amend import Change, amend, describe, rejection
from orchestrator.loop.controller import Controller

log = logging.getLogger(__name__)

FINALIZER = f"{GROUP}/controller"
LEADERBOARD_ROWS = 10
MAX_OUTAGE_WAIT = 300.0


class Stopped(Protocol):
    """kopf's ``stopped`` flag of a sync daemon, or a ``threading.Event``."""

    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> Any: ...


@dataclass
class SearchRunner:
    """Runs one search to its end (or until ``stopped``), keeping its status current."""

    obj: Mapping[str, Any]  # kopf's live body: metadata.generation follows the object
    cluster: Cluster
    defaults: ClusterDefaults
    stopped: Stopped
    logger: logging.Logger | logging.LoggerAdapter[Any] = log
    event: Callable[[str, str, str], None] = lambda type_, reason, message: None
    """Posts a Kubernetes Event on the search (type, reason, message): `kubectl describe`."""
    _written: dict[str, Any] | None = None
    _note: str = ""  # appended to the status message while an edit stands rejected

    @property
    def namespace(self) -> str:
        return str(self.obj["metadata"]["namespace"])

    @property
    def name(self) -> str:
        return str(self.obj["metadata"]["name"])

    def _generation(self) -> int | None:
        g = (self.obj.get("metadata") or {}).get("generation")
        return int(g) if g is not None else None

    def cancel_requested(self) -> bool:
        annotations = (self.obj.get("metadata") or {}).get("annotations") or {}
        return CANCEL_ANNOTATION in annotations

    def write(self, status: dict[str, Any], reason: str | None = None) -> None:
        """Patch the status subresource, only with what changed since the last write; the
        conditions follow the phase (``reason``: why it failed, or ``Unavailable``)."""
        merged = {**(self._written or {}), **status}
        if merged.get("phase"):
            status = {**status, "conditions": conditions(
                merged.get("conditions"), merged["phase"], str(merged.get("message") or ""),
                merged.get("observedGeneration"), reason)}
        changed = {k: v for k, v in status.items()
                   if self._written is None or self._written.get(k) != v}
        if not changed:
            return
        self.cluster.patch_search_status(self.namespace, self.name, changed)
        self._written = {**(self._written or {}), **status}

    def run(self) -> None:
        """Run the search from its checkpoint until it ends or ``stopped`` is set. An edit of
        live fields (``orchestrator.loop.amend``) rebuilds the controller with the edited spec, while
        it runs or after it ended; an edit of any other field is reported and not applied."""
        self._written = dict(self.obj.get("status") or {})
        while not self.stopped.is_set():
            status, generation = self._written or {}, self._generation()
            ended = status.get("phase") in ENDED
            if ended and status.get("observedGeneration") == generation:
                self.logger.debug("search %s ended at generation %s; nothing to do",
                                  search_ref(self.obj), generation)
                return
            if self.cancel_requested() and status.get("phase") in (None, PENDING, FAILED):
                self._cancelled(generation, "Cancelled while its loop was not running: no Job "
                                "was deleted.")
                return
            if not self._run_generation(generation, status.get("phase") == SUCCEEDED):
                return

    def _run_generation(self, generation: int | None, succeeded: bool) -> bool:
        """Run the spec of ``generation``; True when a newer edit asks for a rebuild."""
        try:
            spec = spec_of(self.obj, self.defaults.spec_defaults)
        except ConfigError as e:
            if succeeded:  # a finished search keeps its results; the bad edit is reported
                self._invalid_edit(generation, e)
                return False
            self.logger.error("%s; nothing was created", e)
            self.event("Warning", "InvalidSpec", f"{e}; nothing was created.")
            self.write({"phase": FAILED, "message": f"{e}; nothing was created.",
                        "observedGeneration": generation}, reason="InvalidSpec")
            return False
        outages = 0
        while not self.stopped.is_set():
            try:
                ctl, amendment = build_controller(self.obj, spec, self.defaults, self.cluster)
                if amendment.rejected:
                    self._rejected_edit(generation, amendment.rejected)
                    if succeeded:
                        return False
                elif amendment.applied:
                    self.logger.info("search %s: edit of generation %s applied: %s",
                                     search_ref(self.obj), generation,
                                     describe(amendment.applied))
                    self.event("Normal", "SpecUpdated", f"Applied the edit of generation "
                               f"{generation}: {describe(amendment.applied)}.")
                phase = (self._written or {}).get("phase")
                self.write({"phase": RUNNING if phase == RUNNING else PENDING,
                            "message": "Starting: resuming from the last checkpoint if there "
                            "is one.", "observedGeneration": generation})
                ctl.start(resume=True)
                self.logger.info("search %s started (parent run %s, %d trials in its ledger)",
                                 search_ref(self.obj), ctl.parent_run_id, len(ctl.trials))
                self.event("Normal", "Resumed" if ctl.trials else "Started",
                           f"Search loop running: MLflow run {ctl.parent_run_id}, "
                           f"{len(ctl.trials)} trials in the ledger.")
                return self._loop(ctl, generation)
            except ConfigError as e:
                if self.stopped.is_set():  # deleted under our feet: nothing left to report to
                    return False
                self.logger.error("search %s failed: %s", search_ref(self.obj), e)
                message = (f"{e}. The search stopped; fix the cause, then `actsearch-ctl retry` "
                           "it (it resumes from its checkpoint), or delete and resubmit it.")
                self.event("Warning", "Failed", message)
                self.write({"phase": FAILED, "message": message,
                            "observedGeneration": generation}, reason="SearchFailed")
                return False
            except TemporaryUnavailable as e:
                delay = min(self.defaults.backoff.initial * 2 ** outages, MAX_OUTAGE_WAIT)
                outages += 1
                self.logger.warning("search %s: %s; resuming from the checkpoint in %.0f s",
                                    search_ref(self.obj), e, delay)
                self.event("Warning", "Unavailable", f"{e}. Resuming from the last checkpoint "
                           f"in {delay:.0f} s.")
                try:
                    self.write({"message": f"{e}. Resuming from the last checkpoint in "
                                f"{delay:.0f} s."}, reason=UNAVAILABLE)
                except (ConfigError, TemporaryUnavailable) as again:
                    self.logger.warning("search %s: status not written either: %s",
                                        search_ref(self.obj), again)
                self.stopped.wait(delay)
        self.logger.info("search %s stopped (deleted, or the controller is shutting down)",
                         search_ref(self.obj))
        return False

    def _loop(self, ctl: Controller, generation: int | None) -> bool:
        """Tick until the search ends or ``stopped`` is set (False), or until an edit of live
        fields needs the controller rebuilt with it (True)."""
        while not self.stopped.is_set():
            if self.cancel_requested():
                self._cancel(ctl, generation)
                return False
            finished = ctl.tick()
            if finished:
                self._finish(ctl, generation)
                return False
            now = self._generation()
            if now != generation:
                if self._edited(ctl, now):
                    ctl.checkpoint()  # the rebuilt controller resumes from exactly here
                    return True
                generation = now  # observed: reported, and the search runs on as it was
            self.write(search_status(ctl, RUNNING, progress_message(ctl) + self._note,
                                     generation))
            self.stopped.wait(self.defaults.poll_interval)
        self.logger.info("search %s stopped between two ticks (deleted, or the controller is "
                         "shutting down); its checkpoint is current", search_ref(self.obj))
        return False

    def _edited(self, ctl: Controller, generation: int | None) -> bool:
        """Whether the edit of ``generation`` changes what runs (only live fields): if it
        touches anything else, or is invalid, it is reported and ignored."""
        try:
            new = spec_of(self.obj, self.defaults.spec_defaults)
        except ConfigError as e:
            self._invalid_edit(generation, e)
            return False
        amendment = amend(ctl.spec, new)
        if amendment.rejected:
            self._rejected_edit(generation, amendment.rejected)
            return False
        self._note = ""
        return bool(amendment.applied)

    def _invalid_edit(self, generation: int | None, error: ConfigError) -> None:
        self._not_applied(generation, f"the edit of generation {generation} was not applied: "
                          f"{error}", "InvalidSpec", "the spec is invalid")

    def _rejected_edit(self, generation: int | None, rejected: tuple[Change, ...]) -> None:
        self._not_applied(generation, rejection(
            f"the edit of generation {generation} was not applied", rejected),
            "SpecChangeRejected", describe(rejected))

    def _not_applied(self, generation: int | None, why: str, reason: str, short: str) -> None:
        """Report an edit that is not applied: a Warning Event with the whole reason, a note
        on the status message, and ``observedGeneration`` (the edit was seen and answered)."""
        self.logger.warning("search %s: %s", search_ref(self.obj), why)
        self.event("Warning", reason, why)
        message = str((self._written or {}).get("message", ""))
        if self._note:
            message = message.removesuffix(self._note)
        self._note = (f" The edit of generation {generation} was not applied ({short}); "
                      "`kubectl describe` shows why.")
        self.write({"message": message + self._note, "observedGeneration": generation})

    def _cancel(self, ctl: Controller, generation: int | None) -> None:
        """Stop a running search: delete its running Jobs, keep its checkpoint (with those
        children still launched: a retry finds their Jobs gone and launches them again)."""
        launches = ctl.launches_in_flight()
        for launch in launches:
            ctl.backend.cancel(launch)
        ctl.checkpoint()
        jobs = f"{len(launches)} running Job{'s' if len(launches) != 1 else ''} deleted"
        self._cancelled(generation, f"Cancelled: {progress_message(ctl, finished=True)} {jobs}.",
                        ctl)

    def _cancelled(self, generation: int | None, message: str,
                   ctl: Controller | None = None) -> None:
        message += (" Its checkpoint and MLflow runs stay: `actsearch-ctl retry` resumes it, "
                    "`actsearch-ctl cancel --delete` deletes it.")
        self.logger.info("search %s cancelled: %s", search_ref(self.obj), message)
        self.event("Normal", "Cancelled", message)
        status = (search_status(ctl, CANCELLED, message, generation) if ctl is not None else
                  {"phase": CANCELLED, "message": message, "observedGeneration": generation})
        self.write(status)

    def _finish(self, ctl: Controller, generation: int | None) -> None:
        from orchestrator.loop.report import publish

        if ctl.stopped is not None:  # the failure brake (loop.brake): Failed, with its reason
            message = (f"Stopped: {ctl.stopped.message}. {progress_message(ctl, finished=True)} "
                       "Fix the cause, then `actsearch-ctl retry` it (it resumes from its "
                       "checkpoint), or raise the budget's limit.")
            self.event("Warning", ctl.stopped.reason, message)
            self.write(search_status(ctl, FAILED, message, generation), reason=ctl.stopped.reason)
            return
        with tempfile.TemporaryDirectory(prefix="actsearch-report-") as tmp:
            rows, _ = publish(ctl, LEADERBOARD_ROWS, Path(tmp))
        message = f"Finished: {progress_message(ctl, finished=True)}"
        if rows:
            message += " Leaderboard and plot are on the search's MLflow run."
        message += self._note
        self.logger.info("search %s succeeded: %s", search_ref(self.obj), message)
        self.event("Normal", "Succeeded", message)
        self.write(search_status(ctl, SUCCEEDED, message, generation))


# -- kopf ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OperatorConfig:
    api_client: Any  # kubernetes.client.ApiClient, built by the entry point
    defaults: ClusterDefaults
    namespaces: tuple[str, ...] = ()
    clusterwide: bool = False
    liveness_port: int | None = None


def make_registry(config: OperatorConfig) -> Any:
    """kopf handlers bound to ``config`` (a registry of their own: nothing global)."""
    import kopf

    registry = kopf.OperatorRegistry()
    cluster = Cluster(config.api_client, config.defaults.backoff)

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.scanning.disabled = True  # no CRD/namespace watching: no cluster-wide RBAC
        settings.persistence.finalizer = FINALIZER
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP)
        settings.posting.level = logging.INFO  # state changes become Events on the search
        settings.background.instant_exit_timeout = 5.0  # a deleted search's loop ends between
        # two ticks: wait for it, then drop the finalizer at once (not after cancellation_timeout)
        settings.watching.server_timeout = 300
        settings.networking.request_timeout = 60

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return connection_info(config.api_client)

    @kopf.daemon(GROUP, VERSION, PLURAL, registry=registry, initial_delay=0,
                 cancellation_timeout=60, backoff=30, when=needs_a_loop)
    def search(body: Any, stopped: Any, logger: Any, **_: Any) -> None:
        def event(type_: str, reason: str, message: str) -> None:
            kopf.event(body, type=type_, reason=reason, message=message[:1000])

        SearchRunner(body, cluster, config.defaults, stopped, logger, event).run()
        # Wait for kopf to stop this daemon (the search ended: ``needs_a_loop`` turned false,
        # or it was deleted) rather than return: kopf never respawns a daemon that returned
        # on its own, and an edit or a retry must be able to bring the loop back.
        while not stopped.is_set():
            stopped.wait(60)

    return registry


def needs_a_loop(status: Mapping[str, Any], meta: Mapping[str, Any], **_: Any) -> bool:
    """kopf's filter of the search daemon: every search has a loop unless it ended at its
    current generation, so finished searches hold no thread, and an edit (a new generation) or
    `actsearch-ctl retry` (which clears ``observedGeneration``) brings the loop back."""
    return not (status.get("phase") in ENDED
                and status.get("observedGeneration") == meta.get("generation"))


def connection_info(api_client: Any) -> Any:
    """kopf's credentials, from the same ``ApiClient`` configuration the rest uses."""
    import kopf

    cfg = api_client.configuration
    auth = cfg.get_api_key_with_prefix("authorization") or cfg.get_api_key_with_prefix("BearerToken")
    scheme, _, token = (auth or "").partition(" ")
    return kopf.ConnectionInfo(
        server=cfg.host, ca_path=cfg.ssl_ca_cert, insecure=not cfg.verify_ssl,
        scheme=scheme or None, token=token or None,
        certificate_path=cfg.cert_file, private_key_path=cfg.key_file,
        username=cfg.username or None, password=cfg.password or None,
    )


def run(config: OperatorConfig, stop_flag: threading.Event | None = None,
        ready_flag: threading.Event | None = None) -> None:
    """Run the operator until ``stop_flag`` is set (or SIGTERM/SIGINT in the main thread)."""
    import kopf

    liveness = f"http://0.0.0.0:{config.liveness_port}/healthz" if config.liveness_port else None
    asyncio.run(kopf.operator(
        registry=make_registry(config),
        standalone=True,  # one controller replica: no peering objects, no extra RBAC
        clusterwide=config.clusterwide,
        namespaces=list(config.namespaces),
        liveness_endpoint=liveness,
        stop_flag=stop_flag,
        ready_flag=ready_flag,
    ))
