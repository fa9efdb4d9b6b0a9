"""Which functions a table trains (distinct, screened, a seeded uniform sample with the included
ones first) and the table spec's strict validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import ConfigError
from orchestrator.space import SearchSpace, decode, parse
from orchestrator.space.fingerprint import fingerprint
from orchestrator.space.screen import screen
from orchestrator.table.functions import census, select
from orchestrator.table.spec import load_table_spec, parse_table_spec

EXAMPLE = Path(__file__).parents[3] / "examples" / "table-fashion-mnist.yaml"
SMALL = SearchSpace(units=1, unary=("id", "relu", "sigmoid", "sin", "exp", "square"),
                    binary=("max", "add", "mul", "sub"))


def test_the_census_keeps_one_screened_function_per_fingerprint() -> None:
    c = census(SMALL)
    assert c.sequences == SMALL.count() == 6 * 6 * 4
    fps = [f.fingerprint for f in c.functions]
    assert len(set(fps)) == len(fps) <= c.distinct < c.sequences  # max(id, id) = id(x) ...
    assert all(screen(parse(f.expression)).ok for f in c.functions)
    assert all(fingerprint(parse(f.expression)) == f.fingerprint for f in c.functions)
    every = {fingerprint(decode(t)) for t in SMALL.enumerate() if screen(decode(t)).ok}
    assert set(fps) == every


def test_the_sample_is_seeded_uniform_without_repeats_and_includes_come_first() -> None:
    c = census(SMALL)
    relu = "max(relu(x), relu(x))"
    a = select(c, 10, seed=3, include=[relu], space=SMALL)
    assert a == select(c, 10, seed=3, include=[relu], space=SMALL)
    assert a != select(c, 10, seed=4, include=[relu], space=SMALL)
    assert len(a) == 11 and a[0].expression == relu
    assert len({f.fingerprint for f in a}) == 11
    everything = select(c, None, seed=0, include=[relu], space=SMALL)
    assert {f.fingerprint for f in everything} == {f.fingerprint for f in c.functions}
    assert everything[0].expression == relu


@pytest.mark.parametrize(("include", "message"), [
    (["max(tanh(x), tanh(x))"], "not in the table's space"),
    (["mul(exp(x), square(x))"], "fails the numeric screen"),
    (["max(relu(x), relu(x))", "max(relu(x), id(x))"], "same function"),
])
def test_bad_includes_are_refused(include: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        select(census(SMALL), 1, seed=0, include=include, space=SMALL)


def test_a_sample_larger_than_the_space_is_refused() -> None:
    c = census(SMALL)
    with pytest.raises(ValueError, match="more than the"):
        select(c, len(c.functions) + 1, seed=0, include=[], space=SMALL)


def test_the_shipped_spec_is_the_documented_build() -> None:
    spec = load_table_spec(EXAMPLE)
    assert spec.steps == [100, 200, 300, 400]
    assert (spec.seeds, spec.model, spec.dataset, spec.packing) == (2, "mlp", "fashion_mnist", 16)
    assert spec.functions.sample == 1000 and "max(relu(x), relu(x))" in spec.functions.include
    assert str(spec.output_path) == "tables/fashion-mnist-mlp-1unit.jsonl.gz"


def _spec(**over: object) -> dict[str, object]:
    base: dict[str, object] = {"name": "t", "functions": {"sample": 2},
                               "child": {"steps": 20, "eval_every": 10}}
    return {**base, **over}


@pytest.mark.parametrize(("over", "field"), [
    ({"colour": 1}, "colour: unknown field"),
    ({"seeds": 1}, "seeds:"),
    ({"space": {"units": 2}}, "space: units must be 1"),
    ({"child": {"steps": 20, "eval_every": 0}}, "child: eval_every must be at least 1"),
    ({"child": {"steps": 25, "eval_every": 10}}, "multiple of eval_every"),
    ({"child": {"steps": 20, "eval_every": 10, "seed": 3}}, "child: seed"),
    ({"functions": {"sample": 0}}, "functions.sample:"),
    ({"functions": {"include": ["Swish", "Swish"]}}, "listed twice"),
    ({"functions": {"include": ["LReLU"]}}, "built-in"),
    ({"functions": {"include": ["sin(x)"]}}, "neither a baseline name nor an expression"),
    ({"packing": 0}, "packing:"),
    ({"name": "Bad Name"}, "name:"),
])
def test_a_bad_spec_names_the_field(over: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_table_spec(_spec(**over), "t.yaml")
    assert field in str(info.value)


def test_a_table_spec_becomes_a_benchmark_of_whole_functions() -> None:
    spec = parse_table_spec(_spec(seeds=3), "t.yaml")
    c = census(SMALL)
    functions = select(c, 4, seed=0, include=[], space=SMALL)
    bench = spec.benchmark(functions)
    assert bench.order == "rows" and bench.metric == "val_accuracy"
    assert [a.label for a in bench.activations] == [f.fingerprint for f in functions]
    from orchestrator.benchmark.cells import expand, resolve_rows

    cells = expand(bench, resolve_rows(bench, lambda t: [], {}))
    assert [(c.row, c.seed) for c in cells[:4]] == [(0, 0), (0, 1), (0, 2), (1, 0)]
    assert len({c.cell_id for c in cells}) == 12
