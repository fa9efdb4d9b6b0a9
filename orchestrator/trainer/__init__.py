"""The child trainer: trains one network with one searched activation and reports to MLflow.

``run`` (in run.py) is the importable entry point; ``actsearch-train`` (cli.py) wraps it.
"""
