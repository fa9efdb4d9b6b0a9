"""The API permissions the controller's ServiceAccount needs: one source of truth.

The chart's Role (helm/actsearch/templates/rbac.yaml) and the plain manifests must grant exactly
these rules (a chart test compares them), and the operator and Kubernetes backend tests check that
every API call they make is covered and every rule is used (tests/k8s/test_rbac.py). Each rule names
who needs it. Child Jobs are never listed by the controller, and deleted only when their child
cannot start or their search is cancelled (``actsearch-ctl cancel``): deleting a search
garbage-collects them through their ownerReferences, and a restarted controller finds them by name.
``KubernetesBackend.list_trials`` exists for tools run with a user's own rights. Pods and Events are
listed, never read one by one: their names are not known in advance. No Secrets.
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
    # kubernetes backend: one Job per child, created by name (a 409 re-attaches; no get needed);
    # deleted when its child cannot start (image pull, missing Secret, Pending too long);
    # operator: a cancelled search's running Jobs are deleted (their GPUs freed at once)
    {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create", "delete"]},
    # kubernetes backend: a Job's ownerReference to its search has blockOwnerDeletion: true,
    # which OwnerReferencesPermissionEnforcement (OpenShift, hardened clusters) lets only an
    # account that may update the owner's finalizers set
    {"apiGroups": ["actsearch.io"], "resources": ["activationsearches/finalizers"],
     "verbs": ["update"]},
    # kubernetes backend: read a Job's status to see a child that died without logging
    {"apiGroups": ["batch"], "resources": ["jobs/status"], "verbs": ["get"]},
    # operator: Events on searches (Started, Resumed, Succeeded, Failed...: `kubectl describe`);
    # kubernetes backend: list a Job's FailedCreate Events (no pod could be made for it)
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "list"]},
    # kubernetes backend: list a Job's pods, to see a child that cannot start
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
    # operator: one driver per search (orchestrator/cluster/lease.py): read its Lease, create it
    # the first time, update it to renew, take over an expired one or release it on shutdown
    {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
     "verbs": ["get", "create", "update"]},
]
