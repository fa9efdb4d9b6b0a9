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
    assert exhaustive["best_after"][-1]["median"] == 1.0
    assert exhaustive["versus"]["baseline"] == "random" and out["strategies"][2]["versus"] is None


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


def _protocol(tmp_path, **changes: object) -> str:  # type: ignore[no-untyped-def]
    import yaml

    doc: dict[str, object] = {
        "units": 1, "unary": ["id", "sigmoid", "sin", "relu"], "binary": ["max", "add", "mul"],
        "budget": 15, "seeds": 20, "threshold": 0.98, "baseline": "random",
        "strategies": ["random", {"name": "evolution", "label": "evolution+surrogate",
                                  "options": {"population": 5, "sample_size": 2,
                                              "surrogate": {"candidates": 2, "warmup": 5}}}],
        "development": ["max(id(x), sigmoid(x))"],
        "heldout": ["mul(id(x), sin(x))"],
    }
    doc.update(changes)
    path = tmp_path / "protocol.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def test_search_sim_runs_a_protocol_split_with_censoring_aware_statistics(tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(main, ["search-sim", "--protocol", _protocol(tmp_path),
                                       "--split", "heldout", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["split"] == "heldout" and [t["target"] for t in out["targets"]] == ["mul(id(x), sin(x))"]
    random, screened = out["targets"][0]["strategies"]
    assert (random["strategy"], screened["strategy"]) == ("random", "evolution+surrogate")
    assert random["versus"] is None and screened["versus"]["baseline"] == "random"
    assert 0.0 <= screened["versus"]["logrank_p"] <= 1.0 and 0.0 <= screened["versus"]["gehan_p"] <= 1.0
    times = random["evaluations_to_threshold"]["times"]
    assert len(times) == 20 and all(1 <= t <= 15 for t in times)


def test_search_sim_refuses_a_protocol_with_too_few_seeds_or_shared_targets(tmp_path) -> None:  # type: ignore[no-untyped-def]
    few = CliRunner().invoke(main, ["search-sim", "--protocol", _protocol(tmp_path, seeds=5)])
    assert few.exit_code == 2 and "seeds: Input should be greater than or equal to 20" in few.output
    shared = CliRunner().invoke(main, ["search-sim", "--protocol", _protocol(
        tmp_path, heldout=["max(sigmoid(x), id(x))"])])  # the development target, reordered
    assert shared.exit_code == 2 and "must be disjoint" in shared.output
    bad = CliRunner().invoke(main, ["search-sim", "--protocol", _protocol(
        tmp_path, strategies=[{"name": "random", "options": {"surrogate": {"candidates": 0}}}])])
    assert bad.exit_code == 2 and "surrogate.candidates must be an integer >= 1; got 0" in bad.output
    assert "Traceback" not in few.output + shared.output + bad.output


def test_search_sim_needs_a_target_or_a_protocol_not_both(tmp_path) -> None:  # type: ignore[no-untyped-def]
    neither = CliRunner().invoke(main, ["search-sim"])
    assert neither.exit_code == 2 and "exactly one of --target, --table and --protocol" in neither.output
    both = CliRunner().invoke(main, ["search-sim", "--protocol", _protocol(tmp_path),
                                     "--target", "max(id(x), sigmoid(x))"])
    assert both.exit_code == 2 and "drop --target" in both.output


def test_search_sim_only_runs_the_named_strategies_and_the_baseline(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = _protocol(tmp_path, budget=5)
    bad = CliRunner().invoke(main, ["search-sim", "--protocol", path, "--only", "ppo"])
    assert bad.exit_code == 2 and "'ppo' not among the protocol's strategies: random, evolution+surrogate" in bad.output
    only = CliRunner().invoke(main, ["search-sim", "--protocol", path, "--only", "random", "--json"])
    assert only.exit_code == 0, only.output
    assert [s["strategy"] for s in json.loads(only.output)["targets"][0]["strategies"]] == ["random"]
