"""RBAC coverage: what the controller's own code asked of the (fake: no real API server runs
here) API server, across the backend and operator tests, against ``orchestrator.cluster.rbac.RULES``,
the rules the chart's Role grants. Every request must be granted, and every rule used."""

from __future__ import annotations

import pytest

from orchestrator.cluster.rbac import RULES
from tests.k8s.conftest import AUDITED_TESTS, CONTROLLER_TRAFFIC


def granted() -> set[tuple[str, str, str]]:
    return {(verb, group, resource) for rule in RULES for group in rule["apiGroups"]
            for resource in rule["resources"] for verb in rule["verbs"]}


def test_rules_name_each_permission_once() -> None:
    pairs = [(g, r) for rule in RULES for g in rule["apiGroups"] for r in rule["resources"]]
    assert len(pairs) == len(set(pairs))
    assert all(rule["verbs"] and "*" not in rule["verbs"] for rule in RULES)


@pytest.mark.rbac_audit
def test_the_controller_needs_exactly_the_rbac_rules_it_is_granted() -> None:
    operator_runs = [t for t in AUDITED_TESTS if "test_operator.py" in t]
    backend_runs = [t for t in AUDITED_TESTS if "test_backend.py" in t]
    if not (operator_runs and backend_runs):
        pytest.skip("run with tests/k8s/test_operator.py and test_backend.py: it audits their traffic")
    missing = CONTROLLER_TRAFFIC - granted()
    assert not missing, f"requests the Role would refuse: {sorted(missing)}"
    unused = granted() - CONTROLLER_TRAFFIC
    assert not unused, f"rules nothing exercised (more than needed): {sorted(unused)}"
