"""Kubernetes wiring: operator, in-cluster controller, CRD, RBAC, conditions, submission."""
