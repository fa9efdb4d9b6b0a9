"""The table that ships in tables/: it loads, says whether it is partial, and every entry is the
function its fingerprint names, from the space its metadata names, with the spec's seeds and
steps."""

from __future__ import annotations

from pathlib import Path

from orchestrator.space import parse
from orchestrator.space.fingerprint import fingerprint
from orchestrator.table import load
from orchestrator.table.replay import table_space
from orchestrator.table.spec import load_table_spec

ROOT = Path(__file__).parents[3]


def test_the_shipped_table_is_what_its_spec_and_metadata_say() -> None:
    spec = load_table_spec(ROOT / "examples" / "table-fashion-mnist.yaml")
    t = load(ROOT / spec.output_path)
    done, planned = t.meta["functions"]["done"], t.meta["functions"]["planned"]
    assert len(t) == done <= planned and t.meta["partial"] is (done < planned)
    assert list(t.steps) == spec.steps and list(t.seeds) == list(range(spec.seeds))
    space = table_space(t)
    for e in t.entries:
        expr = parse(e.expression)
        assert space.contains(expr) and fingerprint(expr) == e.fingerprint
        assert set(e.curves) == set(t.seeds)
        for c in e.curves.values():
            assert (c.failure is None) == (c.final is not None and c.test is not None)
    assert [e.expression for e in t.entries[:len(spec.functions.include)]] == spec.functions.include
