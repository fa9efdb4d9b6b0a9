"""``actsearch-ctl search-sim`` in-process via CliRunner."""

from __future__ import annotations

import json

from click.testing import CliRunner

from orchestrator.cli import main

SMALL = ["--units", "1", "--unary", "id,sigmoid,sin,relu", "--binary", "max,add,mul"]


def test_search_sim_compares_every_strategy_as_json() -> None:
    result = CliRunner().invoke(main, ["search-sim", "--target", "max(id(x), sigmoid(x))", *SMALL,
                                       "--budget", "30", "--seeds", "2", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    names = [s["strategy"] for s in out["strategies"]]
    assert names == ["ppo", "reinforce", "random", "exhaustive", "evolution"]
    exhaustive = out["strategies"][3]
    assert exhaustive["reached"] == 2 and len(exhaustive["best_after"]) == 10
    assert exhaustive["best_after"][-1]["mean"] == 1.0


def test_search_sim_prints_aligned_tables() -> None:
    result = CliRunner().invoke(main, ["search-sim", "--strategy", "random", "--target",
                                       "min(id(x), sin(x))", *SMALL, "--budget", "20", "--seeds", "2"])
    assert result.exit_code == 0, result.output
    assert "evaluations to reward >= 0.98" in result.output and "random" in result.output


def test_search_sim_refuses_an_unknown_option_without_a_traceback() -> None:
    result = CliRunner().invoke(main, ["search-sim", "--strategy", "ppo", "--target",
                                       "max(id(x), sigmoid(x))", "--set", "learning_rate=0.1"])
    assert result.exit_code == 2
    assert "unknown option(s) 'learning_rate' for strategy 'ppo'; allowed:" in result.output
    assert "Traceback" not in result.output


def test_search_sim_refuses_options_for_all_strategies_at_once() -> None:
    result = CliRunner().invoke(main, ["search-sim", "--target", "max(id(x), sigmoid(x))",
                                       "--set", "lr=0.01"])
    assert result.exit_code == 2 and "pick one with --strategy" in result.output


def test_search_sim_refuses_a_constant_target() -> None:
    result = CliRunner().invoke(main, ["search-sim", "--target", "add(beta(x), beta(x))"])
    assert result.exit_code == 2 and "must not be constant" in result.output
