"""One fingerprint per function and child config: the controller computes it with the child's
numerics, hands it to the child in the trial spec, and the run's tag, the search's dedup key and
the cross-search cache key are that one value. ``max(id(x), sinh(x))`` is a function whose
``safe`` and ``paper`` fingerprints differ (the safe sinh is clipped at ±19.11, a probe is at 20)."""

from __future__ import annotations

from pathlib import Path

from orchestrator.contract import Tag
from orchestrator.space import parse
from orchestrator.space.fingerprint import fingerprint

from .test_controller import make_controller

SINH_SPACE = {"units": 1, "unary": ["id", "sinh"], "binary": ["max"]}
"""Four sequences, three functions: x, max(x, sinh x) and sinh x; the last two have a paper
fingerprint apart from their safe one."""
PAPER_CHILD = {"model": "mlp", "dataset": "digits", "steps": 10, "numerics": "paper"}


def _paper_search(tmp_path: Path, name: str, tracker=None):  # type: ignore[no-untyped-def]
    return make_controller(tmp_path, tracker=tracker, name=name, space=SINH_SPACE,
                           strategy={"name": "exhaustive"}, budget={"trials": 4},
                           child=PAPER_CHILD)


def test_the_probe_function_has_different_safe_and_paper_fingerprints() -> None:
    expr = parse("max(id(x), sinh(x))")
    assert fingerprint(expr, "safe") != fingerprint(expr, "paper")


def test_the_trial_spec_carries_the_fingerprint_computed_with_the_childs_numerics(
        tmp_path: Path) -> None:
    ctl, tracker, backend = _paper_search(tmp_path, "s1")
    ctl.run()
    assert backend.launches
    for launch in backend.launches:
        trial = next(t for t in ctl.trials if t.trial_id == launch.trial_id)
        paper = fingerprint(trial.candidate.expr, "paper")
        assert trial.fingerprint == paper
        assert launch.trial_spec["fingerprint"] == paper
        assert tracker.runs[trial.run_id].tags[Tag.FINGERPRINT] == paper
    assert "max(id(x), sinh(x))" in {t.candidate.expression for t in ctl.trials}


def test_with_paper_numerics_a_second_search_reuses_every_function_the_first_trained(
        tmp_path: Path) -> None:
    first, tracker, _ = _paper_search(tmp_path, "s1")
    p1 = first.run()
    assert (p1.trained, p1.duplicates) == (3, 1)
    second, _, backend2 = _paper_search(tmp_path, "s2", tracker)
    p2 = second.run()
    assert (p2.trained, p2.cache_hits, p2.duplicates) == (0, 3, 1)
    assert backend2.launches == []
    rewards = {t.fingerprint: t.reward for t in first.trials}
    assert all(t.reward == rewards[t.fingerprint] for t in second.trials)


def test_a_diverged_function_is_reused_by_the_next_search_like_a_reward(tmp_path: Path) -> None:
    first, tracker, backend = _paper_search(tmp_path, "s1")
    backend.reward = lambda expr: None if "sinh" in expr else 0.9
    p1 = first.run()
    assert p1.failed == 2
    second, _, _ = _paper_search(tmp_path, "s2", tracker)
    p2 = second.run()
    assert (p2.trained, p2.cache_hits) == (0, 3)
    assert sorted(t.failure or "" for t in second.trials if t.source == "cache") == ["", "nan", "nan"]


def test_a_crashed_function_is_not_reused_by_the_next_search(tmp_path: Path) -> None:
    first, tracker, backend = _paper_search(tmp_path, "s1")
    backend.crash = lambda expr: "sinh" in expr
    first.run()
    second, _, _ = _paper_search(tmp_path, "s2", tracker)
    p2 = second.run()
    assert (p2.trained, p2.cache_hits) == (2, 1)
