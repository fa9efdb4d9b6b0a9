"""The table file: what is saved loads back equal, failures stay recorded, bad files are named."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from orchestrator.table import Curve, Entry, Table, TableError, load, save
from orchestrator.table.format import FORMAT

STEPS = [100, 200]


def _table() -> Table:
    return Table(
        {"steps": STEPS, "name": "t"},
        (
            Entry("max(relu(x), relu(x))", "aaaa", {0: Curve((0.5, 0.8), 0.79),
                                                     1: Curve((0.6, 0.7), 0.71)}),
            Entry("exp(x)", "bbbb", {0: Curve((0.3, None), None, "nan"),
                                     1: Curve((0.4, 0.5), 0.49)}),
        ),
    )


def test_a_saved_table_loads_back_equal(tmp_path: Path) -> None:
    t = _table()
    path = save(t, tmp_path / "t.jsonl.gz")
    back = load(path)
    assert back.entries == t.entries
    assert back.steps == (100, 200)
    assert back.meta["format"] == FORMAT and back.meta["name"] == "t"
    assert back.seeds == (0, 1)
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    assert json.loads(lines[0])["steps"] == STEPS and len(lines) == 3
    assert save(back, tmp_path / "again.jsonl.gz").read_bytes() == path.read_bytes()


def test_finals_and_means_treat_a_failed_seed_as_no_result() -> None:
    t = _table()
    relu, bad = t.get("aaaa"), t.get("bbbb")
    assert relu is not None and bad is not None
    assert relu.final(0) == 0.8 and relu.final(1) == 0.7
    assert relu.mean_final() == pytest.approx(0.75)
    assert bad.final(0) is None and bad.final(1) == 0.5
    assert bad.mean_final() is None
    assert t.get("cccc") is None
    with pytest.raises(KeyError):
        relu.final(7)


def _write(path: Path, lines: list[str]) -> Path:
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    return path


@pytest.mark.parametrize(("lines", "message"), [
    (['{"format": "other", "steps": [1]}'], "format"),
    ([f'{{"format": "{FORMAT}", "steps": [2, 1]}}'], "steps"),
    ([f'{{"format": "{FORMAT}", "steps": [1]}}', '{"expression": "x"}'], ":2: missing 'fingerprint'"),
    ([f'{{"format": "{FORMAT}", "steps": [1]}}',
      '{"expression": "e", "fingerprint": "f", "seeds": {"0": {"val": [1.5], "test": null}}}'],
     ":2.seeds.0.val: an accuracy"),
    ([f'{{"format": "{FORMAT}", "steps": [1, 2]}}',
      '{"expression": "e", "fingerprint": "f", "seeds": {"0": {"val": [0.5], "test": null}}}'],
     "1 validation accuracies for 2 steps"),
    ([f'{{"format": "{FORMAT}", "steps": [1]}}',
      '{"expression": "e", "fingerprint": "f", "seeds": {"0": {"val": [0.5], "test": null}}}',
      '{"expression": "g", "fingerprint": "f", "seeds": {"0": {"val": [0.5], "test": null}}}'],
     "appears twice"),
    (["not json"], ":1: not JSON"),
])
def test_a_bad_file_gets_one_line_naming_where(tmp_path: Path, lines: list[str], message: str) -> None:
    with pytest.raises(TableError) as info:
        load(_write(tmp_path / "bad.jsonl.gz", lines))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_a_missing_file_is_a_table_error(tmp_path: Path) -> None:
    with pytest.raises(TableError, match="cannot read"):
        load(tmp_path / "absent.jsonl.gz")
