"""The two MLflow calls a controller makes per trial, ``runs/search`` (its polls) and
``runs/create``, sent and read as plain JSON.

``MlflowClient`` turns each request and answer into protobuf messages (``json_format``, field by
field in Python) and entities: for a poll about 3 ms of CPU per run read on a 2-core machine,
most of what a controller spent per trial, since every run a poll reads carries the child's
params and tags (docs/benchmarks.md, "Control plane"). Here the same requests go to the same REST
endpoints with MLflow's own HTTP helper (credentials, retries, TLS settings, headers), and the
answers are read with ``json``: a search's runs become ``RunView``s holding only what the tracker
reads (info, metrics, tags). A store that is not a REST one (a database URI) goes through the
client as before (``rest_store`` is None).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SEARCH_ENDPOINT = "/api/2.0/mlflow/runs/search"
CREATE_ENDPOINT = "/api/2.0/mlflow/runs/create"


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    run_name: str | None
    status: str
    start_time: int | None
    end_time: int | None


@dataclass(frozen=True)
class RunData:
    metrics: Mapping[str, float]  # the latest value of each metric
    tags: Mapping[str, str]


@dataclass(frozen=True)
class RunView:
    """A run as a search answers it, shaped as MLflow's ``Run`` for what the tracker reads."""

    info: RunInfo
    data: RunData


def _int(value: Any) -> int | None:
    return None if value is None or value == "" else int(value)  # int64s come as strings


def run_view(raw: Mapping[str, Any]) -> RunView:
    """One run of a ``runs/search`` answer (protobuf's JSON form: int64s as strings, NaN and
    infinities as ``"NaN"``, ``"Infinity"``, fields at their default left out)."""
    info, data = raw.get("info") or {}, raw.get("data") or {}
    return RunView(
        RunInfo(run_id=info.get("run_id") or info.get("run_uuid") or "",
                run_name=info.get("run_name"), status=info.get("status", "RUNNING"),
                start_time=_int(info.get("start_time")), end_time=_int(info.get("end_time"))),
        RunData(metrics={m["key"]: float(m.get("value", 0.0)) for m in data.get("metrics", ())},
                tags={t["key"]: t.get("value", "") for t in data.get("tags", ())}),
    )


def rest_store(client: Any) -> Any | None:
    """The client's REST store, or None when it talks to a database (or is not MLflow's)."""
    store = getattr(getattr(client, "_tracking_client", None), "store", None)
    return store if hasattr(store, "get_host_creds") else None


def search_page(store: Any, experiment_id: str, filter_string: str, max_results: int,
                page_token: str | None) -> tuple[list[RunView], str | None]:
    """One page of ``runs/search`` (active runs, the server's default order), and the next
    page's token (None after the last). Errors are MLflow's own (``MlflowException``)."""
    body: dict[str, Any] = {"experiment_ids": [str(experiment_id)], "filter": filter_string,
                            "max_results": max_results, "run_view_type": "ACTIVE_ONLY"}
    if page_token:
        body["page_token"] = page_token
    answer = _post(store, SEARCH_ENDPOINT, body)
    return [run_view(r) for r in answer.get("runs", ())], answer.get("next_page_token") or None


def create_run(store: Any, experiment_id: str, run_name: str, tags: Mapping[str, str]) -> str:
    """A new run (RUNNING, started now) with these tags; its id. What ``MlflowClient.create_run``
    sends (its user id is the ``mlflow.user`` tag, else ``unknown``)."""
    import time

    body = {"experiment_id": str(experiment_id), "user_id": tags.get("mlflow.user", "unknown"),
            "start_time": int(time.time() * 1000), "run_name": run_name,
            "tags": [{"key": k, "value": v} for k, v in tags.items()]}
    return str(_post(store, CREATE_ENDPOINT, body)["run"]["info"]["run_id"])


def _post(store: Any, endpoint: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """POST ``body`` to ``endpoint``; the JSON answer. Errors are MLflow's (``MlflowException``)."""
    import json

    from mlflow.utils.rest_utils import http_request, verify_rest_response

    response = verify_rest_response(
        http_request(store.get_host_creds(), endpoint, "POST", json=body), endpoint)
    answer = json.loads(response.text) if response.text else {}
    return answer if isinstance(answer, dict) else {}
