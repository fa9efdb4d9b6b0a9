"""The arm-by-arm protocol bench gives search-sim's figures for the same protocol and seeds, and
reads back the arms it already finished."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from orchestrator.cli import main
from tests.unit.bench.tables import scrambled_table

SCRIPT = Path(__file__).resolve().parents[3] / "bench" / "protocol_arms.py"


def _protocol(tmp_path: Path) -> Path:
    scrambled_table(tmp_path / "t.jsonl.gz", [10], lambda q: (0.5 + 0.4 * q,))
    path = tmp_path / "p.yaml"
    path.write_text(
        f"table: {tmp_path / 't.jsonl.gz'}\ntop_fraction: 0.1\nbudget: 8\nseeds: 20\nbatch: 4\n"
        "baseline: random\nstrategies:\n  - random\n  - name: ppo\n    label: ppo small\n"
        "    options: {hidden: 8}\n")
    return path


def test_the_bench_gives_search_sims_figures_and_keeps_finished_arms(tmp_path: Path) -> None:
    protocol = _protocol(tmp_path)
    out = tmp_path / "arms"
    cmd = [sys.executable, str(SCRIPT), "--protocol", str(protocol), "--split", "development",
           "--out", str(out)]
    env = {"PYTHONPATH": str(SCRIPT.parents[1]), "OMP_NUM_THREADS": "1"}
    first = json.loads(subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                                      check=True, env=env).stdout)
    assert sorted(p.name for p in out.iterdir()) == ["ppo_small.json", "random.json"]
    again = json.loads(subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                                      check=True, env=env).stdout)
    assert again == first  # read back from the saved arms

    cli = CliRunner().invoke(main, ["search-sim", "--protocol", str(protocol), "--split",
                                    "development", "--json"])
    assert cli.exit_code == 0, cli.output
    theirs = {s["strategy"]: s for s in json.loads(cli.output)["strategies"]}
    for arm in first["arms"]:
        s = theirs[arm["label"]]
        assert arm["reached"] == f"{s['reached']}/{s['seeds']}"
        t = s["evaluations_to_threshold"]
        assert arm["km"] == [t["km_q1"], t["km_median"], t["km_q3"]]
        assert arm["proposals_median"] == s["proposals"]["median"]
        if s["versus"] is not None:
            assert abs(arm["logrank_p"] - s["versus"]["logrank_p"]) <= 1e-3  # both rounded
