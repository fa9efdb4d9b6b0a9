"""``actsearch-ctl table``: a bad spec is one line naming the field, exit 1, nothing written;
``table show`` lists a table's best whole functions in order."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from orchestrator.cli import main
from orchestrator.table import Curve, Entry, Table, save


def test_a_bad_table_spec_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    spec = tmp_path / "t.yaml"
    spec.write_text("name: t\nseeds: 2\nchild: {steps: 20, eval_every: 10}\npacking: 99\n"
                    f"output: {tmp_path / 'out.jsonl.gz'}\n")
    work = tmp_path / "work"
    r = CliRunner().invoke(main, ["table", "build", str(spec), "--workdir", str(work)])
    assert r.exit_code == 1
    errors = [line for line in r.output.splitlines() if "packing" in line]
    assert len(errors) == 1 and "Traceback" not in r.output
    assert not work.exists() and not (tmp_path / "out.jsonl.gz").exists()


def test_table_show_lists_the_best_whole_functions(tmp_path: Path) -> None:
    entries = (
        Entry("max(relu(x), relu(x))", "a", {0: Curve((0.8,), 0.8), 1: Curve((0.82,), 0.8)}),
        Entry("sigmul(mul_beta(x), id(x))", "b", {0: Curve((0.85,), 0.8), 1: Curve((0.83,), 0.8)}),
        Entry("max(id(x), sigmoid(x))", "c", {0: Curve((0.9,), 0.8), 1: Curve((None,), None, "nan")}),
    )
    path = save(Table({"steps": [400], "name": "t", "partial": True}, entries), tmp_path / "t.jsonl.gz")
    r = CliRunner().invoke(main, ["table", "show", str(path)])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert "(PARTIAL)" in lines[0] and "1 functions with a failed seed" in r.output
    best = [line for line in lines if line.startswith("  0.")]
    assert [b.split()[-1] for b in best] == ["id(x))", "relu(x))"]
    assert best[0].split()[0] == "0.8400" and best[1].split()[0] == "0.8100"
