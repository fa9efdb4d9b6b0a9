"""Which launches in flight to stop early, from a stopping rule's decision on each running child
(``orchestrator.search.stopping``). Not yet called by the controller (docs/search.md, "Early
stopping of children").

A launch is one process: a single child, or a pack of children trained side by side. A lone
child the rule stops is stopped. A pack is stopped only when the rule stops every member still
running: stopping the process would stop the members worth training too, so otherwise the pack
runs on and its members the rule would stop finish as complete results.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from orchestrator.search.stopping import STOP, Rule, Trial


@dataclass(frozen=True)
class Running:
    """A child in flight: the launch (its trial id, or its pack's id) and the validation
    accuracies it has logged so far, one per evaluation step reached."""

    launch: str
    curve: tuple[float | None, ...]


@dataclass(frozen=True)
class Review:
    """The rule's verdict on the children in flight: the trials it would stop, and the launches
    to stop (every member of each is among ``stopped``)."""

    stopped: frozenset[str]
    launches: tuple[str, ...]


def review(rule: Rule, steps: Sequence[int], history: Sequence[Trial],
           running: Mapping[str, Running]) -> Review:
    """Decide for each running trial (by id) from ``history`` (the trials already ended), then
    stop the launches whose members are all stopped."""
    stopped = frozenset(t for t, r in running.items()
                        if r.curve and rule.decide(steps, history, r.curve) == STOP)
    members: dict[str, list[str]] = {}
    for trial_id, r in running.items():
        members.setdefault(r.launch, []).append(trial_id)
    launches = tuple(sorted(launch for launch, ids in members.items()
                            if all(t in stopped for t in ids)))
    return Review(stopped, launches)
