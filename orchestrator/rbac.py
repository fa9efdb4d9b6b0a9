"""The API permissions the controller's ServiceAccount needs: one source of truth.

The chart's Role (helm/actsearch/templates/rbac.yaml) and the plain manifests must grant exactly
these rules (a chart test compares them), and the operator and Kubernetes backend tests check that
every API call they make is covered and every rule is used (tests/k8s/test_rbac.py). Each rule
names who needs it. Child Jobs are never deleted or listed by the controller: deleting a search
garbage-collects them through their ownerReferences, and a restarted controller finds them by
name. ``KubernetesBackend.list_trials``/``cancel`` exist for tools run with a user's own rights.
"""

from __future__ import annotations

from typing import Final

RULES: Final[list[dict[str, list[str]]]] = [
    # operator (kopf): list + watch the searches of its namespace(s); patch to add and remove its
    # finalizer (actsearch.io/controller), which holds a deleted search until its loop stopped
    {"apiGroups": ["actsearch.io"], "resources": ["activationsearches"],
     "verbs": ["list", "watch", "patch"]},
    # operator: write progress into .status (merge patch of the status subresource)
    {"apiGroups": ["actsearch.io"], "resources": ["activationsearches/status"],
     "verbs": ["patch"]},
    # kubernetes backend: one Job per child, created by name (a 409 re-attaches; no get needed)
    {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create"]},
    # kubernetes backend: a Job's ownerReference to its search has blockOwnerDeletion: true,
    # which OwnerReferencesPermissionEnforcement (OpenShift, hardened clusters) lets only an
    # account that may update the owner's finalizers set
    {"apiGroups": ["actsearch.io"], "resources": ["activationsearches/finalizers"],
     "verbs": ["update"]},
    # kubernetes backend: read a Job's status to see a child that died without logging
    {"apiGroups": ["batch"], "resources": ["jobs/status"], "verbs": ["get"]},
    # operator: Events on searches (Started, Resumed, Succeeded, Failed...: `kubectl describe`)
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
]
