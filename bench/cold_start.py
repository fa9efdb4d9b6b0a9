"""Cold start of ``actsearch-ctl``: wall time of four commands against ``import torch``.

Run: PYTHONPATH=. python bench/cold_start.py [--runs 5]

Each command runs ``--runs`` times in a fresh interpreter (``python -m orchestrator.cli ...``, the
same code as the ``actsearch-ctl`` script); prints, as JSON, the median wall time of each in
seconds, the median of ``python -c "import torch"``, and each command's share of it (the goal:
under a quarter). Not a timed test: the figures go into docs/benchmarks.md with the machine and
date.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from importlib.metadata import version

COMMANDS: dict[str, list[str]] = {
    "actsearch-ctl --help": ["--help"],
    "actsearch-ctl list --help": ["list", "--help"],
    "actsearch-ctl submit --help": ["submit", "--help"],
    "actsearch-ctl space show 'sigmul(mul_beta(x), id(x))'": [
        "space", "show", "sigmul(mul_beta(x), id(x))"],
}


def median_wall(argv: list[str], runs: int) -> float:
    walls = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        walls.append(time.perf_counter() - t0)
    return statistics.median(walls)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    torch_s = median_wall([sys.executable, "-c", "import torch"], args.runs)
    commands = {
        name: median_wall([sys.executable, "-m", "orchestrator.cli", *argv], args.runs)
        for name, argv in COMMANDS.items()
    }
    print(json.dumps({
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python "
                   f"{platform.python_version()}, torch {version('torch')}",
        "runs": args.runs,
        "import_torch_s": round(torch_s, 3),
        "commands_s": {k: round(v, 3) for k, v in commands.items()},
        "share_of_torch": {k: round(v / torch_s, 3) for k, v in commands.items()},
    }, indent=2))


if __name__ == "__main__":
    main()
