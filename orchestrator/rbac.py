"""The API permissions the controller's ServiceAccount needs: one source of truth.

The chart's Role (helm/actsearch/templates/rbac.yaml) and the plain manifests must grant exactly
these rules (a chart test compares them), and the operator and Kubernetes backend tests check that
every API call they make is covered and every rule is used. Each rule names who needs it.
"""

from __future__ import annotations

from typing import Final

RULES: Final[list[dict[str, list[str]]]] = [
    # operator: watch searches, keep its handler state (annotations, finalizer) on them
    {"apiGroups": ["actsearch.io"], "resources": ["activationsearches"],
     "verbs": ["get", "list", "watch", "patch"]},
    # operator: write progress into .status
    {"apiGroups": ["actsearch.io"], "resources": ["activationsearches/status"],
     "verbs": ["get", "patch"]},
    # kubernetes backend: one Job per child; list by label to re-attach; delete on cancel
    {"apiGroups": ["batch"], "resources": ["jobs"],
     "verbs": ["create", "get", "list", "delete"]},
    # kubernetes backend: read a Job's status
    {"apiGroups": ["batch"], "resources": ["jobs/status"], "verbs": ["get"]},
    # operator: events on searches (what a `kubectl describe` shows)
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
]
