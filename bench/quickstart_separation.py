"""Does the quickstart's reward tell functions apart? Between-function spread against seed noise.

Run: PYTHONPATH=. python bench/quickstart_separation.py [--seeds 5] [--spec examples/quickstart.yaml]
     [--set steps=400 ...] [EXPR ...]

Trains each expression (canonical text form; default: a handful spanning the space) with seeds
0..N-1 at the child settings of the spec (``--set key=value`` overrides one for exploration), on
one CPU thread, all functions of one seed packed side by side as the quickstart packs its
children. Prints per function the mean, standard deviation and range of the validation accuracy
(the search's reward), then the within-function (seed) standard deviation pooled over functions,
the standard deviation of the function means, and their ratio. The figures go into
docs/benchmarks.md with the machine and date; not a timed test.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import yaml
from scipy import stats

from orchestrator.contract import TrainConfig
from orchestrator.space import parse, to_math
from orchestrator.spec import load_spec
from orchestrator.trainer import data as data_mod
from orchestrator.trainer import loop

SPANNING = [
    "max(relu(x), relu(x))",        # ReLU
    "sigmul(mul_beta(x), id(x))",   # Swish
    "add(id(x), id(x))",            # linear (2x): no non-linearity at all
    "max(tanh(x), tanh(x))",        # tanh
    "max(sin(x), sin(x))",          # sin
    "max(id(x), sigmoid(x))",       # one of the paper's top functions
    "mul(square(x), id(x))",        # x³: unbounded, badly conditioned
    "max(cos(x), cos(x))",          # cos: even, loses the sign
    # three of the quickstart's own top five (seed 0, 2026-12-03)
    "sub(relu(x), cos(x))",
    "sigmul(relu(x), relu(x))",
    "add(abs(x), sin(x))",
]


class _Quiet:
    def on_metrics(self, step: int, metrics: dict[str, float]) -> None: ...

    def on_checkpoint(self, step: int, state: dict[str, Any]) -> None: ...


def _child(spec_path: Path, overrides: list[str]) -> TrainConfig:
    cfg = load_spec(spec_path).child
    update = {k: yaml.safe_load(v) for k, v in (o.split("=", 1) for o in overrides)}
    return TrainConfig.model_validate({**cfg.model_dump(), **update})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("expressions", nargs="*", default=SPANNING)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--spec", type=Path, default=Path("examples/quickstart.yaml"))
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = _child(args.spec, args.overrides)
    with tempfile.TemporaryDirectory() as tmp:
        data = data_mod.load(cfg, Path(tmp))
    acts = [parse(t) for t in args.expressions]
    accs: dict[str, list[float]] = {t: [] for t in args.expressions}
    t0 = time.perf_counter()
    for seed in range(args.seeds):
        cfgs = [cfg.model_copy(update={"seed": seed})] * len(acts)
        results = loop.train_pack(cfgs, acts, data, [_Quiet()] * len(acts))
        for text, result in zip(args.expressions, results, strict=True):
            accs[text].append(result.val_accuracy if isinstance(result, loop.Outcome) else float("nan"))
    wall = time.perf_counter() - t0
    print(f"{cfg.model} on {cfg.dataset}, {cfg.steps} steps of {cfg.batch_size}, lr {cfg.lr}, "
          f"{len(data.val)} validation images; {args.seeds} seeds; {wall:.0f} s of training")
    print("| function | mean val. acc. (%) | seed SD (points) | range (%) |")
    print("|---|---|---|---|")
    rows = sorted(accs.items(), key=lambda kv: -statistics.fmean(kv[1]))
    for text, a in rows:
        print(f"| `{to_math(parse(text))}` | {100 * statistics.fmean(a):.2f} | "
              f"{100 * statistics.stdev(a):.2f} | {100 * min(a):.2f}–{100 * max(a):.2f} |")
    within = statistics.fmean(statistics.variance(a) for a in accs.values()) ** 0.5
    typical = statistics.median(statistics.stdev(a) for a in accs.values())
    means = [statistics.fmean(a) for a in accs.values()]
    between = statistics.stdev(means)
    anova = stats.f_oneway(*accs.values())
    pairs = list(itertools.combinations(accs.values(), 2))
    apart = sum(stats.ttest_ind(a, b, equal_var=False).pvalue < 0.05 for a, b in pairs)
    print(f"\nwithin-function (seed) SD: pooled {100 * within:.2f} points, median {100 * typical:.2f}")
    print(f"between-function SD of the means: {100 * between:.2f} points (ratio to pooled "
          f"{between / within:.1f}); range of the means {100 * (max(means) - min(means)):.2f} points")
    print(f"one-way ANOVA F = {anova.statistic:.1f}, p = {anova.pvalue:.1e}; pairs of functions "
          f"apart by Welch's t-test (p < 0.05): {apart} of {len(pairs)}")


if __name__ == "__main__":
    main()
