"""``python -m orchestrator.trainer``: the same as ``actsearch-train``."""

from orchestrator.trainer.cli import main

main()
