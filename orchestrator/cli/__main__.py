"""`python -m orchestrator.cli`: the same as `actsearch-ctl`."""

from orchestrator.cli import main

main()
