"""Early stopping measured on an accuracy table: child-steps spent and the quality of the search
with and without a stopping rule, over seeds (``orchestrator/table/staged.py``).

Run: PYTHONPATH=. python bench/early_stopping.py --table tables/fashion-mnist-mlp-1unit.jsonl.gz
         [--strategy random --strategy ppo] [--budget 40] [--seeds 20] [--concurrency 4]

For each strategy and rule (none, median, asha with their default options, or ``--rule
'{"rule": "asha", "eta": 2}'``): the median over seeds of the child-steps a run spent, of the
table accuracy of the best function it found (a complete child), and of the evaluations and
child-steps until a complete child of one of the table's top ``--top-fraction`` functions
(Kaplan–Meier medians, a run that never reached it censored at what it spent: None when half
or more never did), with reached/total. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any


def main() -> None:
    import torch

    from orchestrator.search import make_strategy
    from orchestrator.search.simulate import simulate
    from orchestrator.search.stopping import make_rule
    from orchestrator.table.format import load
    from orchestrator.table.replay import table_space, top
    from orchestrator.table.staged import StagedReward, outcome

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--table", required=True)
    ap.add_argument("--strategy", action="append", default=None)
    ap.add_argument("--rule", action="append", default=None,
                    help='JSON early_stopping options, e.g. \'{"rule": "median"}\'; '
                    "default: none, median, asha")
    ap.add_argument("--budget", type=int, default=40)
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--top-fraction", type=float, default=0.01)
    args = ap.parse_args()
    torch.set_num_threads(1)
    tbl = load(args.table)
    space = table_space(tbl)
    goal = top(tbl, args.top_fraction)
    rules: list[dict[str, Any] | None] = [None, {"rule": "median"}, {"rule": "asha"}]
    if args.rule:
        rules = [None if r == "none" else json.loads(r) for r in args.rule]
    started = time.time()
    rows = []
    for name in args.strategy or ["random", "ppo"]:
        for options in rules:
            rule = make_rule(options) if options is not None else None
            outs = []
            for s in range(args.seeds):
                reward = StagedReward(tbl, s, rule, args.concurrency)
                simulate(make_strategy(name, space, s), reward, args.budget, batch=args.batch)
                outs.append(outcome(tbl, reward.runs, goal.fingerprints))
            rows.append(_row(name, options, outs))
    print(json.dumps({
        "table": args.table, "functions": len(tbl), "partial": bool(tbl.meta.get("partial")),
        "steps": list(tbl.steps), "top_functions": goal.count,
        "top_threshold": round(goal.threshold, 5), "budget": args.budget, "seeds": args.seeds,
        "batch": args.batch, "concurrency": args.concurrency,
        "seconds": round(time.time() - started), "rows": rows}, indent=1))


def _row(name: str, options: dict[str, Any] | None, outs: list[Any]) -> dict[str, Any]:
    from orchestrator.search.survival import Sample, km_median

    def med(values: list[float]) -> float | None:
        return round(statistics.median(values), 4) if values else None

    def quart(values: list[float]) -> list[float] | None:
        if len(values) < 2:
            return None
        q = statistics.quantiles(values, n=4)
        return [round(q[0], 4), round(q[2], 4)]

    best = [o.best_accuracy for o in outs if o.best_accuracy is not None]
    steps = [float(o.child_steps) for o in outs]
    return {
        "strategy": name, "stopping": options or "none",
        "evaluations": med([float(o.evaluations) for o in outs]),
        "child_steps": med(steps), "child_steps_iqr": quart(steps),
        "stopped": med([float(o.stopped) for o in outs]),
        "best_accuracy": med(best), "best_accuracy_iqr": quart(best),
        "reached": f"{sum(o.evaluations_to_goal is not None for o in outs)}/{len(outs)}",
        "evaluations_to_goal": km_median(Sample.of([o.evaluations_to_goal for o in outs],
                                                   [o.evaluations for o in outs])),
        "steps_to_goal": km_median(Sample.of([o.steps_to_goal for o in outs],
                                             [o.child_steps for o in outs])),
    }


if __name__ == "__main__":
    main()
