"""Does the one-shot search hold across seeds? Search on N seeds, retrain what each returns.

Run: PYTHONPATH=. python bench/oneshot_seeds.py --dataset digits [--seeds 5] [--retrain-seeds 5]
                                                  [--first-seed 0]
     PYTHONPATH=. python bench/oneshot_seeds.py --dataset fashion_mnist

For each search seed s (``--first-seed`` onwards, N of them) the full method runs
(``oneshot.find``: DrNAS supernet on the paper's template, two units, all 25 unary and 10
binary ops; derivation; selection by retraining beside ReLU) with the child's seed s. Then
three functions are retrained under one protocol on ``--retrain-seeds`` seeds (100, 101, ...:
seeds neither the search nor the selection used), packed, and their test accuracy reported:
the function returned, the raw argmax derivation (the method before selection), and ReLU. The
seed noise is ReLU's spread over those seeds (its sample standard deviation); a search *holds*
when its function's median test accuracy is at least ReLU's median minus that noise. One
thread, CPU; the figures go into docs/oneshot.md with the machine and date. Not a timed test.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from orchestrator.contract import TrainConfig
from orchestrator.oneshot.config import RELU, OneShotConfig
from orchestrator.oneshot.find import find
from orchestrator.space.activation import activation_math, parse_activation
from orchestrator.trainer import data as data_mod
from orchestrator.trainer import loop
from orchestrator.trainer.errors import NonFiniteLoss

CHILDREN = {
    "digits": TrainConfig(model="mlp", dataset="digits", steps=300, batch_size=64, lr=0.05,
                          crop_padding=0, flip=False, device="cpu", log_every=300),
    "fashion_mnist": TrainConfig(model="mlp", dataset="fashion_mnist", steps=400, batch_size=128, lr=0.05,
                                 crop_padding=0, flip=False, device="cpu", log_every=400),
}


class _Quiet:
    def on_metrics(self, step: int, metrics: dict[str, float]) -> None: ...

    def on_checkpoint(self, step: int, state: dict[str, Any]) -> None: ...


def test_accuracies(cfg: TrainConfig, texts: list[str], data: data_mod.Data, seeds: list[int]) -> list[list[float]]:
    """Test accuracy of every text on every seed (one pack); a diverged member counts as 0."""
    members = [(t, s) for t in texts for s in seeds]
    results = loop.train_pack([cfg.model_copy(update={"seed": s}) for _, s in members],
                              [parse_activation(t) for t, _ in members], data, [_Quiet() for _ in members])
    accs = [0.0 if isinstance(r, NonFiniteLoss) else r.test_accuracy for r in results]
    return [accs[i * len(seeds):(i + 1) * len(seeds)] for i in range(len(texts))]


def _pct(xs: list[float]) -> str:
    return f"{100 * statistics.median(xs):.1f} % ({100 * min(xs):.1f}–{100 * max(xs):.1f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--dataset", choices=sorted(CHILDREN), default="digits")
    ap.add_argument("--seeds", type=int, default=5, help="search seeds FIRST..FIRST+N-1")
    ap.add_argument("--first-seed", type=int, default=0, help="to split the seeds over processes")
    ap.add_argument("--retrain-seeds", type=int, default=5)
    ap.add_argument("--search-steps", type=int, default=300)
    ap.add_argument("-o", "--option", action="append", default=[], metavar="KEY=VALUE",
                    help="one-shot option (integers only, e.g. -o candidates=8)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = CHILDREN[args.dataset]
    extra = {k: int(v) for k, v in (o.split("=", 1) for o in args.option)}
    ocfg = OneShotConfig(variant="drnas", units=2, search_steps=args.search_steps, **extra)
    with tempfile.TemporaryDirectory() as tmp:
        data = data_mod.load(cfg, Path(tmp))
    retrain_seeds = [100 + i for i in range(args.retrain_seeds)]
    print(f"{args.dataset}: {cfg.model}, {cfg.steps} steps, batch {cfg.batch_size}; {ocfg!r}", file=sys.stderr)
    print("| search seed | returned | selection val acc. (ReLU's) | its test acc. | argmax derivation | "
          "its test acc. | ReLU test acc. | seed noise (ReLU sd) | holds | search s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    held = 0
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        t0 = time.perf_counter()
        found = find(cfg.model_copy(update={"seed": seed}), ocfg, data, _Quiet())
        wall = time.perf_counter() - t0
        derived = found.searches[0].expression
        for r in found.retrained:
            print(f"  seed {seed}: selection {r.expression}: val {r.val_accuracies} loss {r.val_loss:.4f}",
                  file=sys.stderr)
        found_acc, derived_acc, relu_acc = test_accuracies(cfg, [found.expression, derived, RELU], data,
                                                           retrain_seeds)
        noise = statistics.stdev(relu_acc) if len(relu_acc) > 1 else 0.0
        holds = statistics.median(found_acc) >= statistics.median(relu_acc) - noise
        held += holds
        chosen, baseline = found.chosen, found.baseline
        sel = (f"{100 * chosen.val_accuracy:.1f} % ({100 * baseline.val_accuracy:.1f} %)"
               if chosen and baseline else "–")
        print(f"| {seed} | `{activation_math(parse_activation(found.expression))}` | {sel} | {_pct(found_acc)} | "
              f"`{activation_math(parse_activation(derived))}` | {_pct(derived_acc)} | {_pct(relu_acc)} | "
              f"{100 * noise:.2f} | {'yes' if holds else 'no'} | {wall:.0f} |", flush=True)
    print(f"\nholds on {held} of {args.seeds} search seeds")


if __name__ == "__main__":
    main()
