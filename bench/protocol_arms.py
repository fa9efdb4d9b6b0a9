"""A table protocol's arms, one at a time, each saved as it finishes; with the proposal-cap count.

Run: PYTHONPATH=. python bench/protocol_arms.py --protocol examples/table-tuning.yaml
         --split development --out DIR [--only LABEL,...] [--seeds K]

The figures are those of ``actsearch-ctl search-sim --protocol FILE --split S --only LABEL``
(the same replay, seeds 0..K-1 and tests; the runs are seeded), plus what that command does not
print: how many runs stopped at the proposal cap (``replay.proposal_cap``) before spending their
budget, i.e. settled on functions already evaluated. Each arm is written to DIR/<label>.json
when it finishes, so a run cut short keeps the arms it completed; the summary against the
baseline (``--only`` always adds it; it is read back from DIR when there) is printed as JSON.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path
from typing import Any


def _arm(name: str, options: dict[str, Any], tbl: Any, seeds: int, budget: int, batch: int,
         goal: Any, cap: int) -> dict[str, Any]:
    from orchestrator.search import make_strategy
    from orchestrator.search.simulate import simulate
    from orchestrator.table.replay import TableReward, table_space

    space = table_space(tbl)
    times, reached, proposals, capped = [], [], [], 0
    start = time.process_time()
    for s in range(seeds):
        trace = simulate(make_strategy(name, space, s, **options), TableReward(tbl, seed=s), budget,
                         batch=batch, max_proposals=cap)
        hit = trace.evaluations_to_any(set(goal.fingerprints))
        times.append(len(trace.rewards) if hit is None else hit)
        reached.append(hit is not None)
        proposals.append(trace.proposals)
        capped += len(trace.rewards) < budget and trace.proposals >= cap
    return {"name": name, "options": options, "times": times, "reached": reached,
            "proposals": proposals, "capped": capped, "cpu_s": round(time.process_time() - start, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--protocol", required=True)
    ap.add_argument("--split", choices=["development", "heldout"], required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--only", default=None)
    ap.add_argument("--seeds", type=int, default=None, help="fewer seeds than the protocol's")
    a = ap.parse_args()

    import numpy as np
    import torch

    from orchestrator.search.protocol import TableProtocol, load_protocol
    from orchestrator.search.survival import Sample, km_quantile, weighted_logrank
    from orchestrator.table.format import load
    from orchestrator.table.replay import proposal_cap, top
    from orchestrator.table.split import half

    torch.set_num_threads(1)
    protocol = load_protocol(a.protocol)
    if not isinstance(protocol, TableProtocol):
        raise SystemExit("--protocol: a table protocol (with table:) is needed")
    only = None if a.only is None else set(a.only.split(","))
    arms = [x for x in protocol.strategies
            if only is None or x.label in only or x.label == protocol.baseline]
    if any(x.prior is not None for x in arms):
        raise SystemExit("--protocol: arms with a surrogate prior are not supported here")
    tbl = half(load(protocol.table), a.split)
    goal, cap = top(tbl, protocol.top_fraction), proposal_cap(tbl, protocol.budget)
    seeds = protocol.seeds if a.seeds is None else a.seeds
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    done: dict[str, dict[str, Any]] = {}
    for x in arms:
        path = out / (re.sub(r"[^A-Za-z0-9_.=-]+", "_", x.label) + ".json")
        if path.exists():
            done[x.label] = json.loads(path.read_text())
            continue
        done[x.label] = _arm(x.name, x.options, tbl, seeds, protocol.budget, protocol.batch, goal, cap)
        path.write_text(json.dumps({"label": x.label, **done[x.label]}))
    base = done[protocol.baseline]
    base_sample = Sample.of([t if r else None for t, r in zip(base["times"], base["reached"], strict=True)],
                            base["times"])
    rows = []
    for label, d in done.items():
        sample = Sample.of([t if r else None for t, r in zip(d["times"], d["reached"], strict=True)],
                           d["times"])
        row = {"label": label, "reached": f"{sum(d['reached'])}/{len(d['times'])}",
               "km": [km_quantile(sample, q) for q in (0.25, 0.5, 0.75)],
               "proposals_median": float(np.median(d["proposals"])), "capped": d["capped"],
               "cpu_s": d["cpu_s"]}
        if label != protocol.baseline:
            lr, gh = (weighted_logrank(sample, base_sample, w) for w in ("logrank", "gehan"))
            row.update(logrank_p=round(lr.p_value, 3), direction="earlier" if lr.z < 0 else "later",
                       gehan_p=round(gh.p_value, 3))
        rows.append(row)
    print(json.dumps({"protocol": a.protocol, "split": a.split, "seeds": seeds, "cap": cap,
                      "goal": goal.count, "arms": rows}, indent=1))


if __name__ == "__main__":
    main()
