"""Early stopping measured on an accuracy table: child-steps spent and the quality of the search
with and without a stopping rule, over seeds (``orchestrator/table/staged.py``).

Run: PYTHONPATH=. python bench/early_stopping.py --table tables/fashion-mnist-mlp-1unit.jsonl.gz
         [--strategy random --strategy evolution] [--budget 40] [--seeds 20] [--concurrency 4]
         [--top-fraction 0.01 --top-fraction 0.05] [--step-factor 3]

Each seed runs once without a rule (``--budget`` evaluations) and once per rule (none, median,
asha with their default options, or ``--rule '{"rule": "asha", "eta": 2}'``) with ``--budget``
× ``--step-factor`` evaluations, read two ways:

- ``equal evaluations``: its first ``--budget`` evaluations (what the rule saves in child-steps,
  at what cost in quality);
- ``equal child-steps``: the evaluations it could pay for with the child-steps the same seed's
  run without a rule spent (what the saved steps buy; a run that never spent that many is
  counted as it is, and ``short`` says how many did not).

A learning strategy's first ``--budget`` evaluations are the same whether the run goes on or not,
so one run gives both. Per row: the median over seeds of the child-steps spent, of the table
accuracy of the best function found (a complete child; ``Entry.mean_finished``), and per goal
(the table's top ``--top-fraction`` functions by ``Entry.mean_final``) the evaluations and
child-steps until a complete child of one of them (Kaplan–Meier medians, a run that never
reached it censored at what it spent: None when half or more never did), with reached/total.
Prints JSON.
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
    from orchestrator.table.staged import StagedReward, outcome, within_steps

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--table", required=True)
    ap.add_argument("--strategy", action="append", default=None)
    ap.add_argument("--rule", action="append", default=None,
                    help='JSON early_stopping options, e.g. \'{"rule": "median"}\'; '
                    "default: median, asha (none always runs)")
    ap.add_argument("--budget", type=int, default=40)
    ap.add_argument("--step-factor", type=float, default=3.0)
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--top-fraction", type=float, action="append", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    tbl = load(args.table)
    space = table_space(tbl)
    goals = {f: top(tbl, f) for f in (args.top_fraction or [0.01])}
    rules: list[dict[str, Any]] = [{"rule": "median"}, {"rule": "asha"}]
    if args.rule:
        rules = [json.loads(r) for r in args.rule if r != "none"]
    started = time.time()
    rows = []

    def row(name: str, options: Any, comparison: str, runs: list[Any]) -> dict[str, Any]:
        outs = {f: [outcome(tbl, r, g.fingerprints) for r in runs] for f, g in goals.items()}
        return _row(name, options, comparison, outs)

    for name in args.strategy or ["random", "evolution"]:
        plain = []
        for s in range(args.seeds):
            reward = StagedReward(tbl, s, None, args.concurrency)
            simulate(make_strategy(name, space, s), reward, args.budget, batch=args.batch)
            plain.append(reward.runs)
        rows.append(row(name, None, "baseline", plain))
        spent = [sum(r.steps for r in runs) for runs in plain]
        for options in rules:
            rule = make_rule(options)
            long = []
            for s in range(args.seeds):
                reward = StagedReward(tbl, s, rule, args.concurrency)
                simulate(make_strategy(name, space, s), reward,
                         round(args.budget * args.step_factor), batch=args.batch)
                long.append(reward.runs)
            rows.append(row(name, options, "equal evaluations", [r[:args.budget] for r in long]))
            capped = [within_steps(r, limit) for r, limit in zip(long, spent, strict=True)]
            short = sum(sum(x.steps for x in r) < limit - max(tbl.steps)
                        for r, limit in zip(long, spent, strict=True))
            rows.append({**row(name, options, "equal child-steps", capped), "short": short})
    print(json.dumps({
        "table": args.table, "functions": len(tbl), "partial": bool(tbl.meta.get("partial")),
        "steps": list(tbl.steps),
        "goals": {str(f): {"functions": g.count, "threshold": round(g.threshold, 5)}
                  for f, g in goals.items()},
        "budget": args.budget, "step_factor": args.step_factor, "seeds": args.seeds,
        "batch": args.batch, "concurrency": args.concurrency,
        "seconds": round(time.time() - started), "rows": rows}, indent=1))


def _row(name: str, options: dict[str, Any] | None, comparison: str,
         outs_by_goal: dict[float, list[Any]]) -> dict[str, Any]:
    from orchestrator.search.survival import Sample, km_median

    def med(values: list[float]) -> float | None:
        return round(statistics.median(values), 4) if values else None

    def quart(values: list[float]) -> list[float] | None:
        if len(values) < 2:
            return None
        q = statistics.quantiles(values, n=4)
        return [round(q[0], 4), round(q[2], 4)]

    outs = next(iter(outs_by_goal.values()))
    best = [o.best_accuracy for o in outs if o.best_accuracy is not None]
    steps = [float(o.child_steps) for o in outs]
    goals = {}
    for fraction, os_ in outs_by_goal.items():
        goals[str(fraction)] = {
            "reached": f"{sum(o.evaluations_to_goal is not None for o in os_)}/{len(os_)}",
            "evaluations_to_goal": km_median(Sample.of([o.evaluations_to_goal for o in os_],
                                                       [o.evaluations for o in os_])),
            "steps_to_goal": km_median(Sample.of([o.steps_to_goal for o in os_],
                                                 [o.child_steps for o in os_])),
        }
    return {
        "strategy": name, "stopping": options or "none", "comparison": comparison,
        "evaluations": med([float(o.evaluations) for o in outs]),
        "child_steps": med(steps), "child_steps_iqr": quart(steps),
        "stopped": med([float(o.stopped) for o in outs]),
        "best_accuracy": med(best), "best_accuracy_iqr": quart(best),
        "goals": goals,
    }


if __name__ == "__main__":
    main()
