"""A search's controller, assembled one way from the parts its entry point built.

``embedded.py`` (a search on this machine) and ``incluster.py`` (a search in a cluster) differ
in where the tracker, the checkpoint store and the children live; they build those and hand
them here, where the strategy comes from the spec and the controller is put together.
"""

from __future__ import annotations

from orchestrator.adapters.storage import Store
from orchestrator.backends.base import Backend
from orchestrator.identity import SearchIdentity
from orchestrator.loop.controller import Controller
from orchestrator.loop.tracker import Tracker
from orchestrator.search.registry import make_strategy
from orchestrator.spec import SearchSpec


def assemble_controller(spec: SearchSpec, *, tracker: Tracker, store: Store, backend: Backend,
                        tracking_uri: str, poll_interval: float,
                        identity: SearchIdentity | None = None) -> Controller:
    """The controller of ``spec`` over the given tracker, store and backend, with the strategy
    the spec names (seeded by ``spec.seed``; a resumed search restores its state from the
    checkpoint)."""
    strategy = make_strategy(spec.strategy.name, spec.space.build(), spec.seed,
                             **spec.strategy.kwargs())
    return Controller(spec=spec, strategy=strategy, tracker=tracker, store=store,
                      backend=backend, tracking_uri=tracking_uri, poll_interval=poll_interval,
                      identity=identity)
