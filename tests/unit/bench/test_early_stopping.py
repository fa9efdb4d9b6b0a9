"""The early-stopping bench on a tiny table: for random search (whose proposals do not depend on
rewards) a rule costs fewer child-steps at equal evaluations, and buys more evaluations with the
child-steps a search without it spent."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.unit.bench.tables import scrambled_table

SCRIPT = Path(__file__).resolve().parents[3] / "bench" / "early_stopping.py"


def test_rules_save_child_steps_over_the_same_proposals(tmp_path: Path) -> None:
    path = scrambled_table(tmp_path / "t.jsonl.gz", [10, 20, 30],
                           lambda q: (0.3 + 0.3 * q, 0.4 + 0.4 * q, 0.5 + 0.4 * q))
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--table", str(path), "--strategy", "random", "--seeds", "2",
         "--budget", "12", "--batch", "4", "--concurrency", "1", "--top-fraction", "0.1"],
        capture_output=True, text=True, timeout=120, check=True,
        env={"PYTHONPATH": str(SCRIPT.parents[1]), "OMP_NUM_THREADS": "1"})
    rows = {(r["stopping"] if r["stopping"] == "none" else r["stopping"]["rule"], r["comparison"]): r
            for r in json.loads(done.stdout)["rows"]}
    none = rows["none", "baseline"]
    assert set(rows) == {("none", "baseline")} | {(rule, c) for rule in ("median", "asha") for c in
                                                  ("equal evaluations", "equal child-steps")}
    assert none["stopped"] == 0 and none["child_steps"] == 12 * 30
    for rule in ("median", "asha"):
        same = rows[rule, "equal evaluations"]
        assert same["evaluations"] == none["evaluations"]
        assert same["stopped"] > 0
        assert same["child_steps"] < none["child_steps"]
        spent = rows[rule, "equal child-steps"]  # the saved steps buy more evaluations
        assert spent["child_steps"] <= none["child_steps"]
        assert spent["evaluations"] > none["evaluations"]
        assert set(spent["goals"]) == {"0.1"}
