"""The table's two halves and the table protocol: the split is disjoint, covers the table and
depends on each function alone; a surrogate prior holds the functions of the half it is given
and nothing else; the protocol file refuses bad fields by name, and a prior on the half in play."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from orchestrator.cli import main
from orchestrator.errors import ConfigError
from orchestrator.search import StrategyError, make_strategy
from orchestrator.search.protocol import TableProtocol, load_protocol
from orchestrator.search.registry import check_options
from orchestrator.search.screened import SurrogateScreen
from orchestrator.space import parse
from orchestrator.space.fingerprint import fingerprint
from orchestrator.table import Table, save
from orchestrator.table.replay import top
from orchestrator.table.split import half, half_of, prior
from tests.unit.table.test_replay import SPACE, tiny_table


def test_the_halves_are_disjoint_cover_the_table_and_depend_on_each_function_alone() -> None:
    table = tiny_table(keep_every=1)
    dev, held = half(table, "development"), half(table, "heldout")
    d, h = {e.fingerprint for e in dev}, {e.fingerprint for e in held}
    assert not d & h and d | h == {e.fingerprint for e in table}
    assert d and h  # ~50 functions: both halves hold some
    # the same function lands in the same half whatever else the table holds, in any order
    smaller = Table(table.meta, tuple(reversed(table.entries[::3])))
    assert {e.fingerprint for e in half(smaller, "development")} == d & {e.fingerprint for e in smaller}
    assert all(half_of(e.fingerprint) == "development" for e in dev)
    assert half(table, "heldout").meta["half"]["name"] == "heldout"
    with pytest.raises(ValueError, match="half must be one of development, heldout"):
        half(table, "test")  # type: ignore[arg-type]


def test_each_half_has_its_own_top_and_refuses_the_other_half() -> None:
    from orchestrator.table.replay import TableReward
    from tests.unit.table.test_replay import cand

    table = tiny_table(keep_every=1)
    held = half(table, "heldout")
    assert top(held, 0.1).fingerprints <= {e.fingerprint for e in held}
    reward = TableReward(held, seed=0)
    other = next(e for e in table if half_of(e.fingerprint) == "development")
    r = reward(cand(other.expression))
    assert not r.ok and not reward.charged(r)


def test_a_prior_holds_the_given_half_only_with_its_mean_finished_accuracy() -> None:
    table = tiny_table(keep_every=1)
    dev = half(table, "development")
    pairs = prior(dev)
    keys = {fingerprint(parse(e)) for e, _ in pairs}
    assert keys == {e.fingerprint for e in dev if any(e.final(s) is not None for s in e.seeds)}
    for expression, value in pairs:
        e = dev.get(fingerprint(parse(expression)))
        assert e is not None
        finals = [f for s in e.seeds if (f := e.final(s)) is not None]
        assert value == pytest.approx(sum(finals) / len(finals))
    screen = make_strategy("random", SPACE, 0, surrogate={"warmup": 5, "prior": "development"},
                           surrogate_prior=pairs)
    assert isinstance(screen, SurrogateScreen)
    assert 0 < len(screen._y) <= len(pairs)
    assert sorted(screen._y) == sorted(v for e, v in pairs if screen._key_features(parse(e))[1] is not None)


def test_a_surrogate_prior_is_refused_outside_a_table_protocol() -> None:
    with pytest.raises(StrategyError, match="only a table protocol"):
        check_options("random", 0, surrogate={"prior": "development"})
    with pytest.raises(StrategyError, match="only a table protocol"):
        make_strategy("random", SPACE, 0, surrogate={"prior": "development"})
    with pytest.raises(StrategyError, match=r"surrogate\.prior must be one of development, heldout"):
        check_options("random", 0, table_halves=True, surrogate={"prior": "tables/x.jsonl.gz"})


def _protocol(tmp_path: Path, table: Table | None = None, **changes: Any) -> str:
    path = save(table or tiny_table(keep_every=1), tmp_path / "t.jsonl.gz")
    doc: dict[str, Any] = {
        "table": str(path), "top_fraction": 0.1, "budget": 6, "seeds": 20, "batch": 4,
        "strategies": ["random", {"name": "random", "label": "random+prior",
                                  "options": {"surrogate": {"warmup": 3, "prior": "development"}}}],
    }
    doc.update(changes)
    out = tmp_path / "protocol.yaml"
    out.write_text(yaml.safe_dump(doc))
    return str(out)


def test_a_table_protocol_loads_and_refuses_bad_fields_by_name(tmp_path: Path) -> None:
    assert isinstance(load_protocol(_protocol(tmp_path)), TableProtocol)
    for changes, message in (
        ({"seeds": 5}, "seeds: Input should be greater than or equal to 20"),
        ({"top_fraction": 0}, "top_fraction: Input should be greater than 0"),
        ({"units": 1}, "units: unknown field"),
        ({"baseline": "ppo"}, "baseline 'ppo' must be the label of one of the strategies"),
        ({"strategies": [{"name": "random", "options": {"surrogate": {"prior": "test"}}}]},
         "surrogate.prior must be one of development, heldout"),
    ):
        with pytest.raises(ConfigError, match="not a valid protocol") as e:
            load_protocol(_protocol(tmp_path, **changes))
        assert message in str(e.value)


def test_a_target_protocol_refuses_a_surrogate_prior(tmp_path: Path) -> None:
    doc = {"units": 1, "budget": 5, "seeds": 20, "threshold": 0.9,
           "strategies": ["random", {"name": "random", "label": "p",
                                     "options": {"surrogate": {"prior": "development"}}}],
           "development": ["max(id(x), sigmoid(x))"], "heldout": ["mul(id(x), sin(x))"]}
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError, match=r"strategies.1.options.surrogate.prior: only a table protocol"):
        load_protocol(path)


def test_search_sim_replays_a_half_with_a_prior_from_the_other_and_refuses_the_same_half(
        tmp_path: Path) -> None:
    path = _protocol(tmp_path)
    ok = CliRunner().invoke(main, ["search-sim", "--protocol", path, "--split", "heldout", "--json"])
    assert ok.exit_code == 0, ok.output
    out = json.loads(ok.output)
    held = half(tiny_table(keep_every=1), "heldout")
    assert out["split"] == "heldout" and out["functions"] == len(held)
    assert out["top_functions"] == top(held, 0.1).count
    assert [s["strategy"] for s in out["strategies"]] == ["random", "random+prior"]
    assert all(len(s["evaluations_to_threshold"]["times"]) == 20 for s in out["strategies"])
    for split in ("development", "whole"):
        bad = CliRunner().invoke(main, ["search-sim", "--protocol", path, "--split", split])
        assert bad.exit_code == 2 and "must not have seen the functions it is measured on" in bad.output
        assert "Traceback" not in bad.output


def test_a_target_protocol_has_no_whole_split(tmp_path: Path) -> None:
    doc = {"units": 1, "budget": 5, "seeds": 20, "threshold": 0.9, "strategies": ["random"],
           "development": ["max(id(x), sigmoid(x))"], "heldout": ["mul(id(x), sin(x))"]}
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(doc))
    r = CliRunner().invoke(main, ["search-sim", "--protocol", str(path), "--split", "whole"])
    assert r.exit_code == 2 and "whole is for a table protocol" in r.output
