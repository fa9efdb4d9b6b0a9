"""Cluster commands of ``actsearch-ctl``: submit, list, status, logs, retry and cancel (the
operator, which runs searches in the cluster, is ``cli/operator.py``).

They use the kubeconfig's current context (or ``--kubeconfig``/``--context``), or the pod's
service account inside a cluster. Expected failures (a bad spec, the CRD not installed, a
permission refused, an unreachable cluster) end in one message and exit code 1, no traceback
(``cli/errors.py``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
import yaml
from rich.console import Console
from rich.table import Table

from orchestrator.cli.errors import expected_errors
from orchestrator.errors import ConfigError
from orchestrator.kube import (
    API_VERSION,
    CONTROLLER_SELECTOR,
    KIND,
    AlreadyExists,
    Cluster,
)
from orchestrator.retry import Backoff

F = TypeVar("F", bound=Callable[..., Any])
CLI_BACKOFF = Backoff(attempts=2, initial=0.5)  # a command line fails fast, after one retry


def cluster_options(f: F) -> F:
    """``-n/--namespace``, ``--kubeconfig`` and ``--context``."""
    f = click.option("--context", default=None, help="kubeconfig context (default: the current one).")(f)
    f = click.option("--kubeconfig", type=click.Path(dir_okay=False), default=None,
                     help="kubeconfig file (default: $KUBECONFIG, else ~/.kube/config).")(f)
    f = click.option("-n", "--namespace", default=None,
                     help="Namespace (default: the context's, else 'default').")(f)
    return f


def connect(kubeconfig: str | None, context: str | None, namespace: str | None
            ) -> tuple[Cluster, str]:
    from orchestrator.kube import current_namespace, load_api_client

    api_client = load_api_client(kubeconfig, context)
    return Cluster(api_client, CLI_BACKOFF), namespace or current_namespace(kubeconfig, context)


def search_object(raw: dict[str, Any], namespace: str) -> dict[str, Any]:
    """The ActivationSearch object of a spec file's contents (as written: defaults stay with the
    CRD and the model); children run as Jobs unless the file says otherwise."""
    spec = {k: v for k, v in raw.items() if k != "name"}
    backend = dict(spec.get("backend") or {})
    backend.setdefault("kind", "kubernetes")
    spec["backend"] = backend
    return {"apiVersion": API_VERSION, "kind": KIND,
            "metadata": {"name": raw["name"], "namespace": namespace}, "spec": spec}


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


def _accuracy(status: dict[str, Any]) -> str:
    best = status.get("bestAccuracy")
    return f"{best:.4f}" if isinstance(best, (int, float)) else "-"


@click.command()
@click.argument("spec_path", metavar="SPEC", type=click.Path(exists=True, dir_okay=False))
@cluster_options
@click.option("--dry-run", is_flag=True, help="Print the ActivationSearch as YAML; create nothing.")
@click.option("--update", is_flag=True,
              help="Apply the spec to the existing search of that name: its budget, parallelism, "
              "packing and Job scheduling may change (a finished search goes on when its budget "
              "grows); any other change is refused.")
@expected_errors
def submit(spec_path: str, namespace: str | None, kubeconfig: str | None, context: str | None,
           dry_run: bool, update: bool) -> None:
    """Submit a search spec (the file `actsearch-ctl run` takes) to the cluster as an
    ActivationSearch; the operator runs it there, children as GPU Jobs."""
    from orchestrator.kube import current_namespace
    from orchestrator.spec import check_backend, load_spec

    spec = load_spec(spec_path)  # every bad field named; nothing is created
    raw = yaml.safe_load(Path(spec_path).read_text())
    check_backend((raw.get("backend") or {}).get("kind"), "kubernetes", spec_path)
    if dry_run:
        ns = namespace or current_namespace(kubeconfig, context)
        click.echo(yaml.safe_dump(search_object(raw, ns), sort_keys=False), nl=False)
        return
    cluster, ns = connect(kubeconfig, context, namespace)
    if update:
        _update(cluster, ns, spec, search_object(raw, ns))
        return
    try:
        cluster.create_search(ns, search_object(raw, ns))
    except AlreadyExists as e:
        raise ConfigError(
            f"an ActivationSearch {spec.name!r} already exists in namespace {ns!r}; nothing "
            f"was changed. `actsearch-ctl submit --update` applies an edited budget or "
            f"parallelism to it, `actsearch-ctl cancel {spec.name} -n {ns}` deletes it (its "
            "Jobs go with it), or rename the search") from e
    click.echo(f"activationsearch.{API_VERSION.split('/')[0]}/{spec.name} created in namespace {ns}")
    click.echo(f"follow it:  actsearch-ctl status {spec.name} -n {ns}   "
               f"(or kubectl get activationsearches -n {ns})")


def _update(cluster: Any, ns: str, spec: Any, body: dict[str, Any]) -> None:
    """Replace the spec of an existing search, after checking the edit the way the operator
    will (``orchestrator.amend``): a refused change is named here and nothing is sent."""
    from orchestrator.amend import amend, describe, rejection
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


@click.command(name="list")
@cluster_options
@click.option("-A", "--all-namespaces", is_flag=True, help="Searches in every namespace.")
@expected_errors
def list_searches(namespace: str | None, kubeconfig: str | None, context: str | None,
                  all_namespaces: bool) -> None:
    """List the ActivationSearches of a namespace: phase, progress and best function."""
    cluster, ns = connect(kubeconfig, context, namespace)
    items = cluster.list_searches(None if all_namespaces else ns)
    if not items:
        click.echo(f"no ActivationSearches in {'any namespace' if all_namespaces else f'namespace {ns}'}")
        return
    t = Table(box=None)
    for col in (["NAMESPACE"] if all_namespaces else []) + [
            "NAME", "PHASE", "DONE", "RUNNING", "FAILED", "BEST", "FUNCTION", "AGE"]:
        t.add_column(col)
    for obj in items:
        st, meta = obj.get("status") or {}, obj["metadata"]
        budget = ((obj.get("spec") or {}).get("budget") or {}).get("trials", 100)
        row = [meta["name"], st.get("phase") or "Pending", f"{st.get('trialsDone', 0)}/{budget}",
               str(st.get("trialsRunning", 0)), str(st.get("trialsFailed", 0)), _accuracy(st),
               st.get("bestFunction") or "-", age(meta.get("creationTimestamp"))]
        t.add_row(*([meta["namespace"]] if all_namespaces else []), *row)
    Console(width=200).print(t)


@click.command()
@click.argument("name")
@cluster_options
@click.option("--json", "as_json", is_flag=True, help="The object's status as JSON.")
@expected_errors
def status(name: str, namespace: str | None, kubeconfig: str | None, context: str | None,
           as_json: bool) -> None:
    """Phase, counts, best function, age and MLflow run of one search."""
    cluster, ns = connect(kubeconfig, context, namespace)
    obj = cluster.get_search(ns, name)
    st, meta = obj.get("status") or {}, obj["metadata"]
    if as_json:
        click.echo(json.dumps(st, indent=2))
        return
    spec = obj.get("spec") or {}
    budget = (spec.get("budget") or {}).get("trials", 100)
    lines = [
        ("search", f"{ns}/{name}"),
        ("phase", st.get("phase") or "Pending (the operator has not reported yet)"),
        ("trials", f"{st.get('trialsDone', 0)}/{budget} trained, {st.get('trialsRunning', 0)} "
                   f"running, {st.get('trialsFailed', 0)} failed, {st.get('cacheHits', 0)} "
                   "answered from earlier results"),
        ("best", f"{_accuracy(st)}  {st.get('bestFunction') or ''}".rstrip()
         + (f"  ({st['bestFingerprint']})" if st.get("bestFingerprint") else "")),
        ("age", age(meta.get("creationTimestamp"))),
        ("MLflow run", st.get("parentRunId") or "-"),
        ("tracking", (spec.get("tracking") or {}).get("uri") or "the controller's default"),
        ("message", st.get("message") or "-"),
    ]
    generation, observed = meta.get("generation"), st.get("observedGeneration")
    if observed is not None and generation != observed:
        lines.append(("note", f"spec generation {generation}; the controller runs generation "
                              f"{observed}"))
    width = max(len(k) for k, _ in lines)
    for k, v in lines:
        click.echo(f"{k:<{width}}  {v}")


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
@click.option("--controller-namespace", default=None,
              help="Namespace of the controller (default: the search's).")
@expected_errors
def logs(name: str, trial: str | None, namespace: str | None, kubeconfig: str | None,
         context: str | None, tail: int | None, controller_namespace: str | None) -> None:
    """The log of a trial's pod (TRIAL: id, suffix or number; or a pack id), or without TRIAL
    the controller's log lines about this search. A packed trial's log is its pack's: one
    process trains all of the pack's children."""
    from orchestrator.backends.kubernetes import PACK_LABEL

    cluster, ns = connect(kubeconfig, context, namespace)
    if trial is not None:
        tid = trial_id(name, trial)
        pods = trial_pods(cluster, ns, name, tid)
        packs = sorted({(p.metadata.labels or {}).get(PACK_LABEL) for p in pods} - {None, tid})
        if packs:
            click.echo(f"trial {tid} trains in pack {', '.join(packs)}: its log is the pack's",
                       err=True)
        if not pods:
            raise ConfigError(
                f"no pods of trial {tid} in namespace {ns}: it has not started yet, or its Job "
                "finished and was deleted after ttlSecondsAfterFinished; its metrics and log "
                "lines are on its MLflow run (`actsearch-ctl top` lists the trials)")
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
    lines = [line for pod in pods for line in cluster.pod_log(cns, pod.metadata.name).splitlines()
             if mentions(line, name)]
    for line in lines[-tail:] if tail else lines:
        click.echo(line)


@click.command()
@click.argument("name")
@cluster_options
@expected_errors
def cancel(name: str, namespace: str | None, kubeconfig: str | None, context: str | None) -> None:
    """Stop a search: deletes its ActivationSearch; its Jobs are garbage-collected with it.
    Its MLflow runs and its last checkpoint stay."""
    cluster, ns = connect(kubeconfig, context, namespace)
    cluster.delete_search(ns, name)
    click.echo(f"ActivationSearch {ns}/{name} deleted: the controller stops its loop and its "
               "Jobs are deleted with it; its MLflow runs and last checkpoint stay")


@click.command()
@click.argument("name")
@cluster_options
@expected_errors
def retry(name: str, namespace: str | None, kubeconfig: str | None, context: str | None) -> None:
    """Run a Failed search again, from its last checkpoint, once the cause in its message is
    fixed (a refused permission, a missing Secret, an unreachable server...). Nothing it
    trained is trained again."""
    cluster, ns = connect(kubeconfig, context, namespace)
    obj = cluster.get_search(ns, name)
    phase = (obj.get("status") or {}).get("phase") or "Pending"
    if phase != "Failed":
        raise ConfigError(
            f"ActivationSearch {ns}/{name} is {phase}, not Failed; nothing was changed. Only a "
            "failed search is retried; a finished one goes on when its spec.budget is raised "
            "(kubectl edit, or `actsearch-ctl submit --update` with the edited spec)")
    # The operator runs every search that did not end at its current generation: forgetting
    # the generation it ended at brings its loop back, which resumes from the checkpoint.
    cluster.patch_search_status(ns, name, {
        "observedGeneration": None, "message": "Retry requested: resuming from the last "
        "checkpoint."})
    click.echo(f"ActivationSearch {ns}/{name}: retry requested; the controller resumes it from "
               f"its last checkpoint.\nfollow it:  actsearch-ctl status {name} -n {ns}")
