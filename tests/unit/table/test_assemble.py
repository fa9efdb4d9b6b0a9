"""The export's core, on runs written here: curves from the validation history at the table's
steps, failures recorded with null accuracies, functions with an unfinished seed left out (and
the table marked partial), entries of an earlier export reused without reading their runs."""

from __future__ import annotations

from orchestrator.adapters.tracking import TrialRun
from orchestrator.benchmark.cells import cell_id
from orchestrator.table.build import Session, assemble
from orchestrator.table.functions import Census, Function
from orchestrator.table.spec import parse_table_spec

SPEC = parse_table_spec({"name": "t", "functions": {"sample": 3}, "seeds": 2,
                         "child": {"steps": 20, "eval_every": 10}}, "t.yaml")
FUNCTIONS = [Function("max(relu(x), relu(x))", "fa"), Function("max(exp(x), id(x))", "fb"),
             Function("min(sin(x), id(x))", "fc")]
CENSUS = Census(10, 8, tuple(FUNCTIONS))


def runs() -> dict[str, TrialRun]:
    bench = SPEC.benchmark(FUNCTIONS)
    m, d = bench.models[0], bench.datasets[0]
    out = {}
    for i, f in enumerate(FUNCTIONS):
        for seed in (0, 1):
            cid = cell_id("t", f.expression, bench.cell_config(m, d, seed))
            if i == 0:
                run = TrialRun(cid, f"r{i}{seed}", "FINISHED", 0.8, None,
                               metrics={"val_accuracy": 0.8 + seed / 100, "test_accuracy": 0.79})
            elif i == 1 and seed == 1:
                run = TrialRun(cid, f"r{i}{seed}", "FAILED", None, "nan")
            elif i == 2 and seed == 1:
                run = TrialRun(cid, f"r{i}{seed}", "RUNNING", None, None)
            else:
                run = TrialRun(cid, f"r{i}{seed}", "FINISHED", 0.7, None,
                               metrics={"val_accuracy": 0.7, "test_accuracy": 0.69})
            out[cid] = run
    return out


HISTORY = {"r00": {10: 0.5, 20: 0.8}, "r01": {10: 0.6, 20: 0.81}, "r10": {10: 0.4, 20: 0.7},
           "r11": {10: 0.3}, "r20": {10: 0.5, 20: 0.7}}


def test_the_export_reads_curves_records_failures_and_leaves_out_unfinished_functions() -> None:
    read: list[str] = []

    def history(run_id: str) -> dict[int, float]:
        read.append(run_id)
        return HISTORY[run_id]

    t = assemble(SPEC, CENSUS, FUNCTIONS, runs(), history, [Session(0.0, 10.0, 5.0)])
    assert [e.fingerprint for e in t.entries] == ["fa", "fb"]  # fc's seed 1 still runs
    assert t.meta["partial"] is True and t.meta["functions"] == {
        "planned": 3, "done": 2, "with_a_failed_seed": 1, "included": []}
    relu, bad = t.entries
    assert relu.curves[0].val == (0.5, 0.8) and relu.curves[1].test == 0.79
    assert bad.curves[1].val == (0.3, None) and bad.curves[1].failure == "nan"
    assert bad.curves[1].test is None and bad.mean_final() is None
    assert t.meta["build"]["cpu_s"] == 5.0 and t.steps == (10, 20)
    assert sorted(read) == ["r00", "r01", "r10", "r11"]

    read.clear()
    again = assemble(SPEC, CENSUS, FUNCTIONS, runs(), history, [], known=t)
    assert again.entries == t.entries and read == []
