"""`actsearch-ctl space ...` in-process with click's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli import main


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_count_prints_the_number_of_sequences() -> None:
    assert run("space", "count", "--units", "1") == (0, "6,250\n")
    code, out = run("space", "count", "--units", "2", "--json")
    assert code == 0 and json.loads(out) == {"units": 2, "count": 117187500}


def test_count_with_op_subsets() -> None:
    code, out = run("space", "count", "--unary", "id,sin", "--binary", "add", "--json")
    assert code == 0 and json.loads(out)["count"] == 4


def test_show_json_has_the_documented_keys() -> None:
    code, out = run("space", "show", "sigmul(mul_beta(x), id(x))", "--json")
    assert code == 0
    info = json.loads(out)
    assert set(info) == {"canonical", "math", "latex", "units", "fingerprint", "screen"}
    assert info["canonical"] == "sigmul(mul_beta(x), id(x))"
    assert info["math"] == "σ(β·x)·x"
    assert info["units"] == 1
    assert info["screen"] == {"ok": True, "reason": None}


def test_show_reports_a_rejected_function() -> None:
    code, out = run("space", "show", "add(beta(x), beta(x))", "--json")
    assert code == 0
    assert json.loads(out)["screen"] == {"ok": False, "reason": "constant in x on [-5, 5]"}


def test_eval_prints_values_and_non_finite_values_as_strings() -> None:
    code, out = run("space", "eval", "mul(sqrt(x), id(x))", "--at", "4", "--at", "-1",
                    "--numerics", "paper", "--json")
    assert code == 0
    assert json.loads(out)["values"] == [8.0, "nan"]


def test_sample_is_seeded_and_yields_canonical_expressions() -> None:
    code, out = run("space", "sample", "--units", "2", "--n", "4", "--seed", "3", "--json")
    assert code == 0
    exprs = json.loads(out)["expressions"]
    assert len(exprs) == 4
    assert run("space", "sample", "--units", "2", "--n", "4", "--seed", "3")[1].splitlines() == exprs


def test_plot_writes_a_png(tmp_path: Path) -> None:
    target = tmp_path / "f.png"
    code, out = run("space", "plot", "sigmul(mul_beta(x), id(x))", "-o", str(target))
    assert code == 0, out
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("command", ["show", "eval", "plot"])
def test_a_bad_expression_exits_non_zero_with_the_parse_error_and_no_traceback(
    command: str, tmp_path: Path
) -> None:
    extra = {"eval": ["--at", "1"], "plot": ["-o", str(tmp_path / "x.png")]}.get(command, [])
    code, out = run("space", command, "sigmul(mul_beta(x), idd(x))", *extra)
    assert code == 2
    assert "position 20: unknown unary function 'idd'" in out
    assert "Traceback" not in out
    assert not (tmp_path / "x.png").exists()


def test_bad_op_subset_names_the_field() -> None:
    code, out = run("space", "count", "--unary", "id,tan")
    assert code == 2 and "space.unary" in out and "'tan'" in out
