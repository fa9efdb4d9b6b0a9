"""Retrain the functions that several searches found on digits under one protocol, next to ReLU.

Run: PYTHONPATH=. python bench/oneshot_digits.py [--steps 300] [--seeds 5] EXPR [EXPR ...]

Each expression (canonical text form) is trained from scratch as the quickstart child (MLP,
digits, batch 64, lr 0.05, cosine) for ``--steps`` steps with seeds 0..N-1; prints the median
and the range of the test accuracy per function. One thread, CPU. The figures go into
docs/oneshot.md with the machine and date; not a timed test.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path
from typing import Any

import torch

from orchestrator.contract import TrainConfig
from orchestrator.space import parse, to_math
from orchestrator.trainer import data as data_mod
from orchestrator.trainer import loop

RELU = "max(relu(x), relu(x))"


class _Quiet:
    def on_metrics(self, step: int, metrics: dict[str, float]) -> None: ...

    def on_checkpoint(self, step: int, state: dict[str, Any]) -> None: ...


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("expressions", nargs="+")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--seeds", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = TrainConfig(model="mlp", dataset="digits", steps=args.steps, batch_size=64, lr=0.05,
                      crop_padding=0, flip=False, device="cpu", log_every=args.steps)
    with tempfile.TemporaryDirectory() as tmp:
        data = data_mod.load(cfg, Path(tmp))
    print(f"| function | median test acc. | range ({args.seeds} seeds, {args.steps} steps) |")
    print("|---|---|---|")
    for text in [RELU, *args.expressions]:
        accs = [loop.train(cfg.model_copy(update={"seed": s}), parse(text), data, _Quiet()).test_accuracy
                for s in range(args.seeds)]
        print(f"| `{to_math(parse(text))}` | {100 * statistics.median(accs):.1f} % | "
              f"{100 * min(accs):.1f}–{100 * max(accs):.1f} % |")


if __name__ == "__main__":
    main()
