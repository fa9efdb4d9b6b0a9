"""The operator: every ActivationSearch object in the watched namespaces gets a search loop.

kopf watches the objects; an async ``@kopf.daemon`` per object drives a ``SearchRunner`` for as
long as the object exists. The runner is a generator of blocking steps (a tick, a status write)
that yields the seconds to wait before the next one; the daemon runs each step in the
operator's bounded pool of tick threads (``OperatorConfig.tick_workers``) and waits with
``asyncio``, so a sleeping search holds no thread. Why: a sync daemon holds one thread of kopf's
pool (min(32, CPUs + 4)) for the search's whole life, so an operator drove at most that many
searches and the rest never started; raising the pool would only move the bound and cost a
thread's stack per search. Now the number of searches is bounded by memory (a controller and a
coroutine each), and the pool bounds how many ticks run at once: a tick is short (a look at the
running children, a few launches), so a handful of threads serve hundreds of searches; a slow
tick (MLflow retrying) delays the others' ticks, never their existence.

Only one operator drives a search (``orchestrator.cluster.lease``): a runner does nothing until
its operator holds the search's Lease, renews it between ticks, stops (without writing) when
another operator took it over, and releases it when its loop ends, so several replicas can run:
the searches spread over them, and the survivors take over the searches of one that stopped.

The runner builds the controller (``incluster.build_controller``),
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

Children that cannot start (``orchestrator.cluster.cannot_start``): each trial that failed
because Kubernetes could not start it is a ``ChildCannotStart`` Warning Event naming the trial
and the reason; when the last children all failed for the same reason, the search gets the
``ChildrenCannotStart`` condition with that reason and a sentence in its status message, until a
child starts again.

Failures are split the project's way: a bad spec, a spec outside the cluster's policy
(``orchestrator.cluster.policy``, checked before any endpoint is contacted or Job created), a
refused permission or an invalid object (``ConfigError``) ends the search with phase Failed and
the reason as its message; an outage (``TemporaryUnavailable``, after the per-call retries), a
refusal by MLflow or S3 (``ServiceRefused``: their administrator can fix it) and any exception
nobody classified are written to the message and a ``Ready`` condition with the reason, waited
out with capped exponential backoff, and the controller is rebuilt from its checkpoint: nothing
is left to kopf, which would retry the daemon every 30 s with nothing on the search.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Generator, Iterator, Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from orchestrator.adapters.kube import CANCEL_ANNOTATION, GROUP, PLURAL, VERSION, Cluster
from orchestrator.cluster.cannot_start import Streak, Systemic, kubernetes_reason
from orchestrator.cluster.conditions import (
    CANCELLED,
    ENDED,
    FAILED,
    PENDING,
    RUNNING,
    SUCCEEDED,
    UNAVAILABLE,
    conditions,
    with_children_condition,
)
from orchestrator.cluster.incluster import (
    ClusterDefaults,
    build_controller,
    check_isolation,
    progress_message,
    search_ref,
    search_status,
    spec_of,
)
from orchestrator.cluster.lease import DEFAULT_LEASE_SECONDS, SearchLease
from orchestrator.cluster.policy import PolicyViolation
from orchestrator.echo import clip
from orchestrator.errors import ConfigError, ServiceRefused, TemporaryUnavailable
from orchestrator.loop.amend import Change, amend, describe, rejection
from orchestrator.loop.controller import Controller
from orchestrator.redact import RedactingFilter, redact

log = logging.getLogger(__name__)

FINALIZER = f"{GROUP}/controller"
LEADERBOARD_ROWS = 10
MAX_OUTAGE_WAIT = 300.0
DEFAULT_TICK_WORKERS = 8
POLICY_VIOLATION = "PolicyViolation"
"""The reason (condition, Event) of a search that asks for more than the cluster's policy."""
UNEXPECTED = "UnexpectedError"

Outcome = Literal["ended", "rebuild", "lost"]
"""How a search's loop left: the search ended (or ``stopped``), an edit of live fields needs
the controller rebuilt, or another operator took its Lease over."""
Steps = Generator[float, None, Outcome]


class Stopped(Protocol):
    """kopf's ``stopped`` flag of a daemon, or a ``threading.Event`` (only ``is_set`` is used from a
    step; ``run`` also waits on it)."""

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
    lease: SearchLease | None = None
    """Held while the search is driven (None: this operator alone drives every search)."""
    _written: dict[str, Any] | None = None
    _note: str = ""  # appended to the status message while an edit stands rejected
    _settled: int = 0  # the controller's settles already watched (``Controller.settled_since``)
    _streak: Streak = field(default_factory=Streak)  # of children settled (``cannot_start``)
    _children: Systemic | None = None  # the systemic cannot-start reason, while it lasts

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
        conditions follow the phase (``reason``: why it failed, or ``Unavailable``). The message
        is redacted: a search's status is readable by whoever may list searches."""
        if isinstance(status.get("message"), str):
            status = {**status, "message": redact(status["message"])}
        merged = {**(self._written or {}), **status}
        if merged.get("phase"):
            listed = conditions(merged.get("conditions"), merged["phase"],
                                str(merged.get("message") or ""),
                                merged.get("observedGeneration"), reason)
            status = {**status, "conditions": with_children_condition(
                listed, self._children.reason if self._children else None,
                self._children_note().strip() or "The latest children started.",
                merged.get("observedGeneration"))}
        changed = {k: v for k, v in status.items()
                   if self._written is None or self._written.get(k) != v}
        if not changed:
            return
        self.cluster.patch_search_status(self.namespace, self.name, changed)
        self._written = {**(self._written or {}), **status}

    def run(self) -> None:
        """``steps`` in the calling thread, each wait a wait on ``stopped``."""
        for delay in self.steps():
            self.stopped.wait(delay)

    def steps(self) -> Iterator[float]:
        """Run the search from its checkpoint until it ends or ``stopped`` is set, yielding
        the seconds to wait between two blocking steps, for the caller to wait (``drive``).
        An edit of live fields (``orchestrator.loop.amend``) rebuilds the controller with the
        edited spec, while it runs or after it ended; an edit of any other field is reported
        and not applied. With a ``lease``, nothing is done before it is held; a lost one ends
        the loop without a write, and is then tried for again; it is released at the end."""
        try:
            while not self.stopped.is_set():
                if self.lease is not None and not self.lease.held():
                    yield self.lease.retry_interval
                    continue
                if (yield from self._drive()) != "lost":
                    return
                self.logger.warning("search %s: another operator took its Lease over; this one "
                                    "stops driving it", search_ref(self.obj))
        finally:
            if self.lease is not None:
                self.lease.release()

    def _drive(self) -> Steps:
        """Drive the search, from its current status, while the Lease is held."""
        self._written = dict(self.obj.get("status") or {})
        while not self.stopped.is_set():
            status, generation = self._written or {}, self._generation()
            ended = status.get("phase") in ENDED
            if ended and status.get("observedGeneration") == generation:
                self.logger.debug("search %s ended at generation %s; nothing to do",
                                  search_ref(self.obj), generation)
                return "ended"
            if self.cancel_requested() and status.get("phase") in (None, PENDING, FAILED):
                self._cancelled(generation, "Cancelled while its loop was not running: no Job "
                                "was deleted.")
                return "ended"
            outcome = yield from self._run_generation(generation, status.get("phase") == SUCCEEDED)
            if outcome != "rebuild":
                return outcome
        return "ended"

    def _wait(self, seconds: float) -> Generator[float, None, bool]:
        """Wait ``seconds`` in steps short enough to keep the Lease renewed; False when it was
        lost meanwhile."""
        end = time.monotonic() + seconds
        while not self.stopped.is_set():
            left = end - time.monotonic()
            if left <= 0:
                return True
            yield min(left, self.lease.duration / 3) if self.lease is not None else left
            if self.lease is not None and not self.lease.held():
                return False
        return True

    def _run_generation(self, generation: int | None, succeeded: bool) -> Steps:
        """Run the spec of ``generation`` until the search ends, a newer edit asks for a
        rebuild, or the Lease is lost."""
        try:
            spec = spec_of(self.obj, self.defaults.spec_defaults)
            self.defaults.admit(spec, f"ActivationSearch {search_ref(self.obj)}")
            check_isolation(spec, self.defaults, self.namespace)  # before anything exists
        except ConfigError as e:
            if succeeded:  # a finished search keeps its results; the bad edit is reported
                self._invalid_edit(generation, e)
                return "ended"
            reason = POLICY_VIOLATION if isinstance(e, PolicyViolation) else "InvalidSpec"
            started = bool((self._written or {}).get("parentRunId"))  # e.g. the policy tightened
            outcome = ("no child is launched any more (those running finish)" if started
                       else "nothing was created")
            self.logger.error("%s; %s", e, outcome)
            self.event("Warning", reason, f"{e}; {outcome}.")
            self.write({"phase": FAILED, "message": f"{e}; {outcome}.",
                        "observedGeneration": generation}, reason=reason)
            return "ended"
        outages = 0
        while not self.stopped.is_set():
            try:
                ctl, amendment = build_controller(self.obj, spec, self.defaults, self.cluster)
                # what runs may be the checkpoint's spec (an edit refused), under today's policy
                self.defaults.admit(ctl.spec, f"ActivationSearch {search_ref(self.obj)}")
                if amendment.rejected:
                    self._rejected_edit(generation, amendment.rejected)
                    if succeeded:
                        return "ended"
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
                outages = 0
                self._watch_from(ctl)
                self.logger.info("search %s started (parent run %s, %d trials in its ledger)",
                                 search_ref(self.obj), ctl.parent_run_id, len(ctl.trials))
                self.event("Normal", "Resumed" if ctl.trials else "Started",
                           f"Search loop running: MLflow run {ctl.parent_run_id}, "
                           f"{len(ctl.trials)} trials in the ledger.")
                return (yield from self._loop(ctl, generation))
            except ServiceRefused as e:  # MLflow or S3 answered and refused: its admin fixes it
                if self.stopped.is_set():
                    return "ended"
                if not (yield from self._wait_out(str(e), e.reason, outages)):
                    return "lost"
                outages += 1
            except ConfigError as e:
                if self.stopped.is_set():  # deleted under our feet: nothing left to report to
                    return "ended"
                reason = POLICY_VIOLATION if isinstance(e, PolicyViolation) else "SearchFailed"
                self.logger.error("search %s failed: %s", search_ref(self.obj), e)
                message = (f"{e}. The search stopped; fix the cause, then `actsearch-ctl retry` "
                           "it (it resumes from its checkpoint), or delete and resubmit it.")
                self.event("Warning", "Failed" if reason == "SearchFailed" else reason, message)
                self.write({"phase": FAILED, "message": message,
                            "observedGeneration": generation}, reason=reason)
                return "ended"
            except TemporaryUnavailable as e:
                if not (yield from self._wait_out(str(e), UNAVAILABLE, outages)):
                    return "lost"
                outages += 1
            except Exception as e:  # a bug or an unclassified answer: reported, then retried
                if self.stopped.is_set():
                    return "ended"
                self.logger.exception("search %s: unexpected error", search_ref(self.obj))
                problem = f"Unexpected {type(e).__name__}: {clip(str(e), 300)}"
                if not (yield from self._wait_out(problem, UNEXPECTED, outages)):
                    return "lost"
                outages += 1
        self.logger.info("search %s stopped (deleted, or the controller is shutting down)",
                         search_ref(self.obj))
        return "ended"

    def _wait_out(self, problem: str, reason: str, outages: int) -> Generator[float, None, bool]:
        """Report ``problem`` (an outage, a service that refuses, an unexpected error) on the
        search (its message, ``Ready`` False with ``reason``, a Warning Event) and wait before
        the next try: exponential in ``outages``, capped at MAX_OUTAGE_WAIT, so a search never
        spins and never goes silent. False when the Lease was lost meanwhile."""
        delay = min(self.defaults.backoff.initial * 2 ** outages, MAX_OUTAGE_WAIT)
        message = f"{problem}. Resuming from the last checkpoint in {delay:.0f} s."
        self.logger.warning("search %s: %s; resuming from the checkpoint in %.0f s",
                            search_ref(self.obj), problem, delay)
        self.event("Warning", reason, message)
        phase = (self._written or {}).get("phase")
        try:
            self.write({"phase": RUNNING if phase == RUNNING else PENDING, "message": message},
                       reason=reason)
        except (ConfigError, TemporaryUnavailable) as again:
            self.logger.warning("search %s: status not written either: %s",
                                search_ref(self.obj), again)
        return (yield from self._wait(delay))

    def _loop(self, ctl: Controller, generation: int | None) -> Steps:
        """Tick until the search ends or ``stopped`` is set, an edit of live fields needs the
        controller rebuilt with it, or the Lease is lost (checked before every tick: a search
        is never ticked by an operator that does not hold it)."""
        while not self.stopped.is_set():
            if self.lease is not None and not self.lease.held():
                return "lost"
            if self.cancel_requested():
                self._cancel(ctl, generation)
                return "ended"
            finished = ctl.tick()
            self._watch_children(ctl)
            if finished:
                self._finish(ctl, generation)
                return "ended"
            now = self._generation()
            if now != generation:
                if self._edited(ctl, now):
                    ctl.checkpoint()  # the rebuilt controller resumes from exactly here
                    return "rebuild"
                generation = now  # observed: reported, and the search runs on as it was
            self.write(search_status(ctl, RUNNING, progress_message(ctl) + self._children_note()
                                     + self._note, generation))
            if not (yield from self._wait(self.defaults.poll_interval)):
                return "lost"
        self.logger.info("search %s stopped between two ticks (deleted, or the controller is "
                         "shutting down); its checkpoint is current", search_ref(self.obj))
        return "ended"

    def _watch_from(self, ctl: Controller) -> None:
        """Watch the children of a controller just started: failures before this start were
        reported by the loop that saw them settle; the streak is read from every trial, once."""
        _, self._settled = ctl.settled_since(0)
        self._streak = Streak.of(ctl.trials)
        self._children = self._streak.systemic()

    def _watch_children(self, ctl: Controller) -> None:
        """An Event for each child that newly failed because Kubernetes could not start it, and
        the systemic reason (``cannot_start.systemic``) for the condition and the message. It
        reads the trials settled since the last tick, not every trial."""
        settled, self._settled = ctl.settled_since(self._settled)
        for trial in sorted(settled, key=lambda t: t.index):
            if trial.failure is None:
                continue
            reason = kubernetes_reason(trial.cause) if trial.source == "trained" else None
            if reason is not None:
                self.event("Warning", "ChildCannotStart",
                           f"Trial {trial.trial_id} could not start ({reason}): {trial.failure}")
        self._streak.add(settled)
        was, self._children = self._children, self._streak.systemic()
        if self._children is not None and (was is None or was.reason != self._children.reason):
            self.logger.warning("search %s: %s", search_ref(self.obj), self._children_note().strip())
            self.event("Warning", "ChildrenCannotStart", self._children_note().strip())

    def _children_note(self) -> str:
        """The sentence of the status message about children that cannot start, if they are
        systemically failing to."""
        c = self._children
        if c is None:
            return ""
        return (f" Children cannot start: the last {c.count} failed with {c.reason} (latest: "
                f"{c.failure[:300]}); fix the cause (image, pull Secret, ServiceAccount, quota): "
                "children launched after the fix start.")

    def _edited(self, ctl: Controller, generation: int | None) -> bool:
        """Whether the edit of ``generation`` changes what runs (only live fields): if it
        touches anything else, or is invalid, it is reported and ignored."""
        try:
            new = spec_of(self.obj, self.defaults.spec_defaults)
            self.defaults.admit(new, f"ActivationSearch {search_ref(self.obj)}")
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
        policy = isinstance(error, PolicyViolation)
        self._not_applied(generation, f"the edit of generation {generation} was not applied: "
                          f"{error}", POLICY_VIOLATION if policy else "InvalidSpec",
                          "outside the cluster's policy" if policy else "the spec is invalid")

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
        message += self._children_note() + self._note
        self.logger.info("search %s succeeded: %s", search_ref(self.obj), message)
        self.event("Normal", "Succeeded", message)
        self.write(search_status(ctl, SUCCEEDED, message, generation))


# -- kopf ---------------------------------------------------------------------------------------


def default_identity() -> str:
    """This operator's name in the Leases it holds: the pod's name and a random suffix (a
    restarted container is another holder: it waits for its predecessor's Leases to expire,
    unless that one released them)."""
    return f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class OperatorConfig:
    api_client: Any  # kubernetes.client.ApiClient, built by the entry point
    defaults: ClusterDefaults
    namespaces: tuple[str, ...] = ()
    clusterwide: bool = False
    liveness_port: int | None = None
    tick_workers: int = DEFAULT_TICK_WORKERS
    """Threads that run searches' ticks: how many ticks run at once, not how many searches."""
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    """A search's Lease lasts this long without renewal before another operator takes it."""
    identity: str = field(default_factory=default_identity)


async def drive(steps: Iterator[float], executor: Executor, stopped: Any) -> None:
    """Run the blocking ``steps`` of a search in ``executor``, one at a time, waiting the
    seconds each yields on ``stopped`` (kopf's async flag: a deletion or a shutdown cuts the
    wait short). The daemon's context (kopf's Event queue and logger) goes with each step."""
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()
    def step() -> float | None:
        return context.run(next, steps, None)

    while True:
        delay = await loop.run_in_executor(executor, step)
        if delay is None:
            return
        if delay > 0:
            await stopped.wait(delay)


def make_registry(config: OperatorConfig) -> Any:
    """kopf handlers bound to ``config`` (a registry of their own: nothing global)."""
    import kopf

    registry = kopf.OperatorRegistry()
    # kopf posts the records of its per-object logger as Events on the search: redact them first
    objects = logging.getLogger("kopf.objects")
    if not any(isinstance(f, RedactingFilter) for f in objects.filters):
        objects.addFilter(RedactingFilter())
    cluster = Cluster(config.api_client, config.defaults.backoff)
    ticks = ThreadPoolExecutor(max_workers=config.tick_workers, thread_name_prefix="search-tick")

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

    @kopf.on.cleanup(registry=registry)
    async def cleanup(**_: Any) -> None:
        ticks.shutdown(wait=False)

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return connection_info(config.api_client)

    @kopf.daemon(GROUP, VERSION, PLURAL, registry=registry, initial_delay=0,
                 cancellation_timeout=60, backoff=30, when=needs_a_loop)
    async def search(body: Any, stopped: Any, logger: Any, **_: Any) -> None:
        def event(type_: str, reason: str, message: str) -> None:
            kopf.event(body, type=type_, reason=reason, message=redact(message)[:1000])

        meta = body["metadata"]
        lease = SearchLease(cluster, meta["namespace"], meta["name"], config.identity,
                            meta.get("uid"), config.lease_seconds)
        runner = SearchRunner(body, cluster, config.defaults, stopped, logger, event, lease)
        await drive(runner.steps(), ticks, stopped)
        # Wait for kopf to stop this daemon (the search ended: ``needs_a_loop`` turned false,
        # or it was deleted) rather than return: kopf never respawns a daemon that returned
        # on its own, and an edit or a retry must be able to bring the loop back.
        while not stopped.is_set():
            await stopped.wait(60)

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
        standalone=True,  # no kopf peering: a Lease per search picks its one driver
        clusterwide=config.clusterwide,
        namespaces=list(config.namespaces),
        liveness_endpoint=liveness,
        stop_flag=stop_flag,
        ready_flag=ready_flag,
    ))
