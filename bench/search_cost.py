"""What a finished search spent and found, read from its MLflow runs: child-steps trained (the
cost early stopping cuts) and the best complete child (what it must not lose).

Run: PYTHONPATH=. python bench/search_cost.py --tracking-uri sqlite:///WORKDIR/mlflow.db \\
         --experiment actsearch --search quickstart-es [--table tables/fashion-mnist-mlp-1unit.jsonl.gz]

Per trained child (``actsearch.source`` = ``trained``): the steps it trained. A complete or
stopped child's last logged training step, where a stopped child's stored checkpoint
(``actsearch.checkpoint_step``, written when it answered the SIGTERM) is later; a diverged one's
``actsearch.failure_step``. Prints JSON: children trained, stopped early, failed, child-steps in
all, and the best complete child (reward, expression) with, given ``--table`` built with the same
child, that function's table accuracy (``Entry.mean_final``, free of the seed noise of one run).
"""

from __future__ import annotations

import argparse
import json
from typing import Any


def main() -> None:
    from mlflow.tracking import MlflowClient

    from orchestrator.contract import Tag
    from orchestrator.space import parse
    from orchestrator.space.fingerprint import fingerprint

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tracking-uri", required=True)
    ap.add_argument("--experiment", default="actsearch")
    ap.add_argument("--search", required=True)
    ap.add_argument("--table", default=None)
    args = ap.parse_args()
    client = MlflowClient(args.tracking_uri)
    exp = client.get_experiment_by_name(args.experiment)
    if exp is None:
        raise SystemExit(f"no experiment {args.experiment!r} at {args.tracking_uri}")
    runs = client.search_runs([exp.experiment_id],
                              f"tags.`{Tag.SEARCH}` = '{args.search}' and tags.`{Tag.ROLE}` = 'trial'"
                              f" and tags.`{Tag.SOURCE}` = 'trained'", max_results=50_000)
    steps, stopped, failed = 0, 0, 0
    best: dict[str, Any] | None = None
    for run in runs:
        tags = run.data.tags
        logged = [m.step for m in client.get_metric_history(run.info.run_id, "train_loss")]
        trained = max([0, *logged, int(tags.get(Tag.CHECKPOINT_STEP, 0))])
        if Tag.FAILURE_STEP in tags:
            trained = int(tags[Tag.FAILURE_STEP])
        steps += trained
        stopped += Tag.STOPPED_EARLY in tags
        failed += Tag.FAILURE in tags
        reward = run.data.metrics.get("val_accuracy")
        if (run.info.status == "FINISHED" and Tag.STOPPED_EARLY not in tags and reward is not None
                and (best is None or reward > best["reward"])):
            best = {"reward": reward, "expression": tags[Tag.EXPRESSION]}
    if best is not None and args.table:
        from orchestrator.table.format import load

        entry = load(args.table).get(fingerprint(parse(best["expression"])))
        best["table_accuracy"] = entry.mean_final() if entry is not None else None
    print(json.dumps({"search": args.search, "trained": len(runs), "stopped_early": stopped,
                      "failed": failed, "child_steps": steps, "best": best}, indent=1))


if __name__ == "__main__":
    main()
