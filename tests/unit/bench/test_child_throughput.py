"""The child-throughput bench on CPU: its named activations parse and its pack axis measures."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from orchestrator.space import parse, units

SCRIPT = Path(__file__).resolve().parents[3] / "bench" / "child_throughput.py"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("child_throughput", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_named_activations_parse_and_two_units_has_two() -> None:
    bench = _bench()
    for text in bench.ACTIVATIONS.values():
        parse(text)
    assert len(units(parse(bench.ACTIVATIONS["two_units"]))) == 2


def test_a_pack_is_the_first_function_and_distinct_random_two_unit_ones() -> None:
    pack = _bench().pack_activations("sigmul(mul_beta(x), id(x))", 6)
    texts = [str(a) for a in pack]
    assert len(set(texts)) == 6 and texts[0] == str(parse("sigmul(mul_beta(x), id(x))"))
    assert all(len(units(a)) == 2 for a in pack[1:])


def test_the_pack_axis_reports_child_steps(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--device", "cpu", "--model", "mlp", "--activation", "swish",
         "--pack", "1", "--pack", "3", "--steps", "3", "--warmup", "1", "--repeats", "1",
         "--batch-size", "16", "--threads", "1", "--json"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env={"PYTHONPATH": str(SCRIPT.parents[1]), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["pack"] for r in rows] == [1, 3]
    for r in rows:
        assert r["child_steps_per_s"] == r["pack"] * r["steps_per_s"] > 0
        assert r["warmup_s"] >= 0
