"""``python -m orchestrator.trainer.available DATASET``: is a built-in data set at hand here?

Exit 0 when it is (installed by Debian, in the cache, or downloaded into it now), 1 with one line
saying why not, 2 for a name that is not a data set. ``make quickstart`` asks it about
Fashion-MNIST, so that a fresh machine with neither Debian's ``dataset-fashion-mnist`` nor a
network still runs a search (the digits quickstart) instead of stopping."""

from __future__ import annotations

import sys

from pydantic import ValidationError

from orchestrator.contract import TrainConfig
from orchestrator.trainer import data
from orchestrator.trainer.errors import Infrastructure


def main(argv: list[str] | None = None) -> int:
    """Fetch the data set its children would fetch by default (as ``run`` does before them)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m orchestrator.trainer.available DATASET", file=sys.stderr)
        return 2
    try:
        cfg = TrainConfig(dataset=args[0])  # checked by the model: a ValidationError names the choices
    except ValidationError as e:
        print(f"Error: dataset: {e.errors()[0]['msg']}", file=sys.stderr)
        return 2
    try:
        data.prefetch(cfg)
    except Infrastructure as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
