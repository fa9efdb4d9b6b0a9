"""Cluster commands of ``actsearch-ctl``: submit, list, status, logs, retry and cancel (the
operator, which runs searches in the cluster, is ``cli/operator.py``; the CRD's upgrade is
``cli/crd.py``). Their habits are kubectl's: ``list -o wide|json|yaml``, ``status --watch``,
``logs -f``.

They use the kubeconfig's current context (or ``--kubeconfig``/``--context``), or the pod's
service account inside a cluster. Expected failures (a bad spec, the CRD not installed, a
permission refused, an unreachable cluster) end in one message and exit code 1, no traceback
(``cli/errors.py``).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

import click
import yaml
from rich.console import Console
from rich.table import Table

from orchestrator.adapters.kube import (
    API_VERSION,
    CANCEL_ANNOTATION,
    CONTROLLER_SELECTOR,
    AlreadyExists,
    Cluster,
)
from orchestrator.adapters.retry import Backoff
from orchestrator.cli.errors import expected_errors
from orchestrator.cluster.conditions import CANCELLED, ENDED, FAILED, TYPES, condition
from orchestrator.errors import ConfigError

F = TypeVar("F", bound=Callable[..., Any])
CLI_BACKOFF = Backoff(attempts=2, initial=0.5)  # a command line fails fast, after one retry


def cluster_options(f: F) -> F:
    """``-n/--namespace``, ``--kubeconfig`` and ``--context``."""
    f = click.option("--context", default=None, help="kubeconfig context (default: the current one).")(f)
    f = click.option("--kubeconfig", type=click.Path(dir_okay=False), default=None,
                     help="kubeconfig file (default: $KUBECONFIG, else ~/.kube/config).")(f)
    return click.option("-n", "--namespace", default=None,
                        help="Namespace (default: the context's, else 'default').")(f)


def connect(kubeconfig: str | None, context: str | None, namespace: str | None
            ) -> tuple[Cluster, str]:
    from orchestrator.adapters.kube import current_namespace, load_api_client

    api_client = load_api_client(kubeconfig, context)
    return Cluster(api_client, CLI_BACKOFF), namespace or current_namespace(kubeconfig, context)


def age(timestamp: str | None, now: datetime | None = None) -> str:
    """kubectl's short age: 45s, 12m, 3h, 2d."""
    if not timestamp:
        return "-"
    then = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    s = max(int(((now or datetime.now(UTC)) - then).total_seconds()), 0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size:
            return f"{s // size}{unit}"
    return f"{s}s"


def best_of(status: Mapping[str, Any]) -> dict[str, Any]:
    """``status.best``, else what operators before it wrote (``bestAccuracy``...)."""
    best = dict(status.get("best") or {})
    for key, old in (("valAccuracy", "bestAccuracy"), ("expression", "bestFunction"),
                     ("fingerprint", "bestFingerprint")):
        if best.get(key) is None and status.get(old) is not None:
            best[key] = status[old]
    return best


def _accuracy(status: Mapping[str, Any]) -> str:
    best = best_of(status).get("valAccuracy")
    return f"{best:.4f}" if isinstance(best, (int, float)) else "-"


def _budget(obj: Mapping[str, Any]) -> Any:
    """The budget in force (the operator's word), else the spec's."""
    st = obj.get("status") or {}
    if st.get("trialsBudget") is not None:
        return st["trialsBudget"]
    return ((obj.get("spec") or {}).get("budget") or {}).get("trials", 100)


@click.command()
@click.argument("spec_path", metavar="FILE", type=click.Path(exists=True, dir_okay=False))
@cluster_options
@click.option("--dry-run", is_flag=True, help="Print the ActivationSearch as YAML; create nothing.")
@click.option("--update", is_flag=True,
              help="Apply the spec to the existing search of that name: its budget, parallelism, "
              "packing and Job scheduling may change (a finished search goes on when its budget "
              "grows); any other change is refused.")
@expected_errors
def submit(spec_path: str, namespace: str | None, kubeconfig: str | None, context: str | None,
           dry_run: bool, update: bool) -> None:
    """Submit a search to the cluster as an ActivationSearch; the operator runs it there,
    children as GPU Jobs. FILE is a search spec (the file `actsearch-ctl run` takes) or an
    ActivationSearch manifest (the file `kubectl apply -f` takes; its metadata.namespace is used
    unless -n is given)."""
    from orchestrator.adapters.kube import current_namespace
    from orchestrator.cluster.submission import read_submission
    from orchestrator.validation import read_yaml

    # every bad field named; nothing is created
    submission = read_submission(read_yaml(spec_path), spec_path)
    spec = submission.spec
    if dry_run:
        ns = namespace or submission.namespace or current_namespace(kubeconfig, context)
        click.echo(yaml.safe_dump(submission.object(ns), sort_keys=False), nl=False)
        return
    cluster, ns = connect(kubeconfig, context, namespace or submission.namespace)
    if update:
        _update(cluster, ns, spec, submission.object(ns))
        return
    try:
        cluster.create_search(ns, submission.object(ns))
    except AlreadyExists as e:
        raise ConfigError(
            f"an ActivationSearch {spec.name!r} already exists in namespace {ns!r}; nothing "
            f"was changed. `actsearch-ctl submit --update` applies an edited budget or "
            f"parallelism to it, `actsearch-ctl cancel {spec.name} -n {ns} --delete` deletes "
            "it (its Jobs go with it), or rename the search") from e
    click.echo(f"activationsearch.{API_VERSION.split('/')[0]}/{spec.name} created in namespace {ns}")
    click.echo(f"follow it:  actsearch-ctl status {spec.name} -n {ns}   "
               f"(or kubectl get activationsearches -n {ns})")


def _update(cluster: Any, ns: str, spec: Any, body: dict[str, Any]) -> None:
    """Replace the spec of an existing search, after checking the edit the way the operator
    will (``orchestrator.loop.amend``): a refused change is named here and nothing is sent."""
    from orchestrator.loop.amend import amend, describe, rejection
    from orchestrator.spec import parse_spec

    current = cluster.get_search(ns, spec.name)
    before = None  # a search that never started (e.g. failed on its spec) takes any valid spec
    if (current.get("status") or {}).get("parentRunId"):
        try:
            before = parse_spec({**current.get("spec", {}), "name": spec.name})
        except ConfigError:
            pass
    amendment = amend(before, spec)
    if amendment.rejected:
        raise ConfigError(rejection(f"ActivationSearch {ns}/{spec.name}: nothing was changed",
                                    amendment.rejected))
    if current.get("spec") == body["spec"] or (before is not None and not amendment.applied):
        click.echo(f"ActivationSearch {ns}/{spec.name}: the spec is unchanged; nothing to do")
        return
    body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
    cluster.replace_search(ns, body)
    what = describe(amendment.applied) if amendment.applied else "spec replaced"
    click.echo(f"activationsearch.{API_VERSION.split('/')[0]}/{spec.name} updated in namespace "
               f"{ns}: {what}")
    click.echo(f"follow it:  actsearch-ctl status {spec.name} -n {ns}")


LIST_COLUMNS = ["NAME", "PHASE", "DONE", "RUNNING", "FAILED", "BEST", "FUNCTION", "AGE"]
WIDE_COLUMNS = [*LIST_COLUMNS, "TRIAL", "CACHED", "READY", "MLFLOW RUN", "MESSAGE"]


def list_row(obj: Mapping[str, Any], wide: bool = False) -> list[str]:
    """One search as a row of ``actsearch-ctl list`` (LIST_COLUMNS, or WIDE_COLUMNS)."""
    st, meta = obj.get("status") or {}, obj["metadata"]
    best = best_of(st)
    row = [meta["name"], st.get("phase") or "Pending", f"{st.get('trialsDone', 0)}/{_budget(obj)}",
           str(st.get("trialsRunning", 0)), str(st.get("trialsFailed", 0)), _accuracy(st),
           best.get("expression") or "-", age(meta.get("creationTimestamp"))]
    if wide:
        ready = condition(st, "Ready") or {}
        row += [best.get("trial") or "-", str(st.get("cacheHits", 0)),
                f"{ready['status']} ({ready.get('reason')})" if ready else "-",
                st.get("parentRunId") or "-", st.get("message") or "-"]
    return row


@click.command(name="list")
@cluster_options
@click.option("-A", "--all-namespaces", is_flag=True, help="Searches in every namespace.")
@click.option("-o", "--output", type=click.Choice(["wide", "json", "yaml"]), default=None,
              help="wide: more columns (best trial, cache hits, Ready, MLflow run, message); "
              "json/yaml: the objects, as `kubectl get -o json|yaml` prints them.")
@expected_errors
def list_searches(namespace: str | None, kubeconfig: str | None, context: str | None,
                  all_namespaces: bool, output: str | None) -> None:
    """List the ActivationSearches of a namespace: phase, progress and best function."""
    cluster, ns = connect(kubeconfig, context, namespace)
    items = cluster.list_searches(None if all_namespaces else ns)
    if output in ("json", "yaml"):
        listing = {"apiVersion": "v1", "kind": "List", "items": items,
                   "metadata": {"resourceVersion": ""}}
        click.echo(json.dumps(listing, indent=2) if output == "json"
                   else yaml.safe_dump(listing, sort_keys=False), nl=output == "json")
        return
    if not items:
        click.echo(f"no ActivationSearches in {'any namespace' if all_namespaces else f'namespace {ns}'}")
        return
    t = Table(box=None)
    for col in (["NAMESPACE"] if all_namespaces else []) + (
            WIDE_COLUMNS if output == "wide" else LIST_COLUMNS):
        t.add_column(col)
    for obj in items:
        t.add_row(*([obj["metadata"]["namespace"]] if all_namespaces else []),
                  *list_row(obj, output == "wide"))
    Console(width=400 if output == "wide" else 200).print(t)


def status_lines(obj: Mapping[str, Any]) -> list[tuple[str, str]]:
    """What ``actsearch-ctl status`` prints of one search, as (key, value) lines."""
    st, meta = obj.get("status") or {}, obj["metadata"]
    spec = obj.get("spec") or {}
    best = best_of(st)
    lines = [
        ("search", f"{meta.get('namespace')}/{meta['name']}"),
        ("phase", st.get("phase") or "Pending (the operator has not reported yet)"),
        ("trials", f"{st.get('trialsDone', 0)}/{_budget(obj)} trained, "
                   f"{st.get('trialsRunning', 0)} running, {st.get('trialsFailed', 0)} failed, "
                   f"{st.get('cacheHits', 0)} answered from earlier results"),
        ("best", f"{_accuracy(st)}  {best.get('expression') or ''}".rstrip()
         + (f"  ({best['fingerprint']})" if best.get("fingerprint") else "")
         + (f"  trial {best['trial']}" if best.get("trial") else "")),
        ("age", age(meta.get("creationTimestamp"))),
        ("MLflow run", st.get("parentRunId") or "-"),
        ("tracking", (spec.get("tracking") or {}).get("uri") or "the controller's default"),
        ("message", st.get("message") or "-"),
    ]
    shown = [c for c in (condition(st, t) for t in TYPES) if c]
    if shown:
        lines.append(("conditions", ", ".join(f"{c['type']}={c['status']} ({c.get('reason')})"
                                              for c in shown)))
    generation, observed = meta.get("generation"), st.get("observedGeneration")
    if observed is not None and generation != observed:
        lines.append(("note", f"spec generation {generation}; the controller runs generation "
                              f"{observed}"))
    if CANCEL_ANNOTATION in (meta.get("annotations") or {}) and st.get("phase") != CANCELLED:
        lines.append(("note", "cancel requested; the controller stops it between two ticks"))
    return lines


def watch(read: Callable[[], dict[str, Any]], interval: float,
          sleep: Callable[[float], None] = time.sleep) -> Iterator[dict[str, Any]]:
    """The object each time what ``status`` shows of it changed (the first time too), until it
    is in an ended phase at its current generation."""
    last: list[tuple[str, str]] | None = None
    while True:
        obj = read()
        lines = [kv for kv in status_lines(obj) if kv[0] != "age"]
        if lines != last:
            last = lines
            yield obj
        st = obj.get("status") or {}
        if st.get("phase") in ENDED and st.get("observedGeneration") in (
                None, obj["metadata"].get("generation")):
            return
        sleep(interval)


def _print_status(obj: Mapping[str, Any]) -> None:
    lines = status_lines(obj)
    width = max(len(k) for k, _ in lines)
    for k, v in lines:
        click.echo(f"{k:<{width}}  {v}")


@click.command()
@click.argument("name")
@cluster_options
@click.option("--json", "as_json", is_flag=True, help="The object's status as JSON.")
@click.option("-w", "--watch", "follow", is_flag=True,
              help="Print again on every change until the search ends (or Ctrl-C).")
@click.option("--interval", type=click.FloatRange(0.2, 300), default=5.0, show_default=True,
              help="Seconds between two reads with --watch.")
@expected_errors
def status(name: str, namespace: str | None, kubeconfig: str | None, context: str | None,
           as_json: bool, follow: bool, interval: float) -> None:
    """Phase, counts, best function, conditions, age and MLflow run of one search."""
    cluster, ns = connect(kubeconfig, context, namespace)
    if not follow:
        obj = cluster.get_search(ns, name)
        if as_json:
            click.echo(json.dumps(obj.get("status") or {}, indent=2))
        else:
            _print_status(obj)
        return
    try:
        for i, obj in enumerate(watch(lambda: cluster.get_search(ns, name), interval)):
            if as_json:
                click.echo(json.dumps(obj.get("status") or {}))
                continue
            if i:
                click.echo("")
            _print_status(obj)
    except KeyboardInterrupt:
        pass


def trial_id(search: str, trial: str) -> str:
    """A trial named in full (``s-t00003``), by suffix (``t00003``) or by number (``3``); a
    pack by its id (``s-p00000``) or suffix (``p00000``)."""
    if trial.startswith(f"{search}-"):
        return trial
    if re.fullmatch(r"t?\d+", trial):
        return f"{search}-t{int(trial.lstrip('t')):05d}"
    if re.fullmatch(r"p\d+", trial):
        return f"{search}-p{int(trial[1:]):05d}"
    raise ConfigError(f"trial {trial!r} is neither a trial id of search {search!r} "
                      f"({search}-t00003), its suffix (t00003), a number (3) nor a pack id "
                      f"({search}-p00000 or p00000)")


def mentions(line: str, search: str) -> bool:
    """Whether a controller log line is about ``search`` (its name, one of its trial or pack
    ids)."""
    return re.search(rf"(?<![\w-]){re.escape(search)}(-[tp]\d+)?(?![\w-])", line) is not None


def trial_pods(cluster: Any, namespace: str, search: str, tid: str) -> list[Any]:
    """The pods that train trial (or pack) ``tid``: a trial trained alone by its label, a packed
    one through its pack's ``actsearch.io/trials`` annotation, a pack by its label."""
    from orchestrator.backends.kubernetes import (
        PACK_LABEL,
        SEARCH_LABEL,
        TRIAL_LABEL,
        pack_members,
    )

    pods = cluster.pods(namespace, f"{TRIAL_LABEL}={tid}")
    if pods:
        return pods
    if re.fullmatch(rf"{re.escape(search)}-p\d+", tid):
        return cluster.pods(namespace, f"{PACK_LABEL}={tid}")
    packed = cluster.pods(namespace, f"{SEARCH_LABEL}={search},{PACK_LABEL}")
    return [p for p in packed if tid in pack_members(p.metadata.annotations)]


@click.command()
@click.argument("name")
@click.argument("trial", required=False)
@cluster_options
@click.option("--tail", type=click.IntRange(min=1), default=None, help="Last N lines only.")
@click.option("-f", "--follow", is_flag=True,
              help="Stream the log as it is written (a trial's newest pod, or the controller's "
              "lines about this search) until the pod ends or Ctrl-C.")
@click.option("--controller-namespace", default=None,
              help="Namespace of the controller (default: the search's).")
@expected_errors
def logs(name: str, trial: str | None, namespace: str | None, kubeconfig: str | None,
         context: str | None, tail: int | None, follow: bool,
         controller_namespace: str | None) -> None:
    """The log of a trial's pod (TRIAL: id, suffix or number; or a pack id), or without TRIAL
    the controller's log lines about this search. A packed trial's log is its pack's: one
    process trains all of the pack's children."""
    try:
        _logs(name, trial, namespace, kubeconfig, context, tail, follow, controller_namespace)
    except KeyboardInterrupt:
        pass


def _logs(name: str, trial: str | None, namespace: str | None, kubeconfig: str | None,
          context: str | None, tail: int | None, follow: bool,
          controller_namespace: str | None) -> None:
    from orchestrator.backends.kubernetes import PACK_LABEL

    cluster, ns = connect(kubeconfig, context, namespace)
    if trial is not None:
        tid = trial_id(name, trial)
        pods = trial_pods(cluster, ns, name, tid)
        packs = sorted({pack for p in pods
                        if (pack := (p.metadata.labels or {}).get(PACK_LABEL)) not in (None, tid)})
        if packs:
            click.echo(f"trial {tid} trains in pack {', '.join(packs)}: its log is the pack's",
                       err=True)
        if not pods:
            raise ConfigError(
                f"no pods of trial {tid} in namespace {ns}: it has not started yet, or its Job "
                "finished and was deleted after ttlSecondsAfterFinished; its metrics and log "
                "lines are on its MLflow run (`actsearch-ctl top` lists the trials)")
        if follow:  # the newest pod: the one a retried or re-launched child runs in now
            for line in cluster.follow_pod_log(ns, pods[-1].metadata.name, tail):
                click.echo(line, nl=False)
            return
        for pod in pods:
            if len(pods) > 1:
                click.echo(f"==> pod {pod.metadata.name} <==")
            click.echo(cluster.pod_log(ns, pod.metadata.name, tail), nl=False)
        return
    cns = controller_namespace or ns
    pods = cluster.pods(cns, CONTROLLER_SELECTOR)
    if not pods:
        raise ConfigError(f"no controller pod ({CONTROLLER_SELECTOR}) in namespace {cns}; pass "
                          "--controller-namespace if the chart was installed elsewhere")
    if follow:
        for line in cluster.follow_pod_log(cns, pods[-1].metadata.name):
            if mentions(line, name):
                click.echo(line, nl=False)
        return
    lines = [line for pod in pods for line in cluster.pod_log(cns, pod.metadata.name).splitlines()
             if mentions(line, name)]
    for line in lines[-tail:] if tail else lines:
        click.echo(line)


@click.command()
@click.argument("name")
@cluster_options
@click.option("--delete", is_flag=True,
              help="Delete the ActivationSearch instead; its Jobs are garbage-collected with it.")
@expected_errors
def cancel(name: str, namespace: str | None, kubeconfig: str | None, context: str | None,
           delete: bool) -> None:
    """Stop a search: the controller deletes its running Jobs and reports phase Cancelled; the
    object, its MLflow runs and its last checkpoint stay (`actsearch-ctl retry` resumes it).
    With --delete, the object is deleted and its Jobs go with it."""
    cluster, ns = connect(kubeconfig, context, namespace)
    if delete:
        cluster.delete_search(ns, name)
        click.echo(f"ActivationSearch {ns}/{name} deleted: the controller stops its loop and "
                   "its Jobs are deleted with it; its MLflow runs and last checkpoint stay")
        return
    obj = cluster.get_search(ns, name)
    phase = (obj.get("status") or {}).get("phase")
    if phase == CANCELLED:
        click.echo(f"ActivationSearch {ns}/{name} is already Cancelled; nothing to do")
        return
    if phase in ENDED:
        raise ConfigError(
            f"ActivationSearch {ns}/{name} is {phase}: there is nothing to cancel; nothing was "
            f"changed. `actsearch-ctl cancel {name} -n {ns} --delete` deletes it")
    when = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    cluster.annotate_search(ns, name, {CANCEL_ANNOTATION: when})
    click.echo(f"ActivationSearch {ns}/{name}: cancel requested; the controller deletes its "
               "running Jobs and reports phase Cancelled. Its MLflow runs and last checkpoint "
               f"stay.\nwait for it:  kubectl wait --for=jsonpath='{{.status.phase}}'=Cancelled "
               f"activationsearch/{name} -n {ns}")


@click.command()
@click.argument("name")
@cluster_options
@expected_errors
def retry(name: str, namespace: str | None, kubeconfig: str | None, context: str | None) -> None:
    """Run a Failed or Cancelled search again, from its last checkpoint, once the cause in its
    message is fixed (a refused permission, a missing Secret, an unreachable server...).
    Nothing it trained is trained again."""
    cluster, ns = connect(kubeconfig, context, namespace)
    obj = cluster.get_search(ns, name)
    phase = (obj.get("status") or {}).get("phase") or "Pending"
    if phase not in (FAILED, CANCELLED):
        raise ConfigError(
            f"ActivationSearch {ns}/{name} is {phase}, not Failed or Cancelled; nothing was "
            "changed. Only a failed or cancelled search is retried; a finished one goes on "
            "when its spec.budget is raised (kubectl edit, or `actsearch-ctl submit --update` "
            "with the edited spec)")
    if CANCEL_ANNOTATION in (obj["metadata"].get("annotations") or {}):
        cluster.annotate_search(ns, name, {CANCEL_ANNOTATION: None})
    # The operator runs every search that did not end at its current generation: forgetting
    # the generation it ended at brings its loop back, which resumes from the checkpoint.
    cluster.patch_search_status(ns, name, {
        "observedGeneration": None, "message": "Retry requested: resuming from the last "
        "checkpoint."})
    click.echo(f"ActivationSearch {ns}/{name}: retry requested; the controller resumes it from "
               f"its last checkpoint.\nfollow it:  actsearch-ctl status {name} -n {ns}")
