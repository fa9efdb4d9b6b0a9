"""The search spec: defaults, and errors that name the field and what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import ConfigError
from orchestrator.spec import load_spec, parse_spec

EXAMPLES = Path(__file__).parents[2] / "examples"


def test_a_minimal_spec_gets_the_papers_defaults() -> None:
    spec = parse_spec({"name": "s"})
    assert spec.strategy.name == "ppo"
    assert spec.space.units == 1 and len(spec.space.unary) == 25 and len(spec.space.binary) == 10
    assert spec.child.model == "resnet20" and spec.child.steps == 10_000
    assert spec.budget.samples == 20 * spec.budget.trials
    assert spec.backend.kind == "local"


def test_any_strategy_takes_the_surrogate_screen_as_an_option() -> None:
    spec = parse_spec({"name": "s", "strategy": {"name": "ppo", "options": {
        "surrogate": {"candidates": 4, "warmup": 20}}}})
    assert spec.strategy.kwargs()["surrogate"] == {"candidates": 4, "warmup": 20}


def test_the_quickstart_examples_are_valid_specs_that_differ_only_in_the_data() -> None:
    spec = load_spec(EXAMPLES / "quickstart.yaml")
    assert spec.name == "quickstart" and spec.child.dataset == "fashion_mnist"
    digits = load_spec(EXAMPLES / "quickstart-digits.yaml")
    assert digits.name == "quickstart-digits" and digits.child.dataset == "digits"
    assert (digits.space, digits.strategy, digits.budget) == (spec.space, spec.strategy, spec.budget)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"name": "Bad_Name"}, "name: must be lowercase letters"),
        ({"name": "s", "budget": {"trials": 0}}, "budget.trials: Input should be greater than or equal to 1"),
        ({"name": "s", "strategy": {"name": "annealing"}},
         "strategy.name: Input should be 'ppo', 'reinforce', 'random', 'exhaustive' or 'evolution'"),
        ({"name": "s", "strategy": {"name": "ppo", "options": {"hiden": 3}}}, "strategy.options:"),
        ({"name": "s", "strategy": {"name": "evolution", "options": {"surrogate": {"warmup": 0}}}},
         "strategy.options: option surrogate.warmup must be an integer >= 1; got 0"),
        ({"name": "s", "strategy": {"options": {"failure_reward": -1}}},
         "set strategy.failure_reward, not strategy.options.failure_reward"),
        ({"name": "s", "space": {"unary": ["id", "tan"]}}, "space: unary has unknown function(s) 'tan'"),
        ({"name": "s", "child": {"model": "vgg"}}, "child.model: Input should be 'resnet20'"),
        ({"name": "s", "parallelism": 0}, "parallelism: Input should be greater than or equal to 1"),
        ({"name": "s", "packing": 0}, "packing: Input should be greater than or equal to 1"),
        ({"name": "s", "packing": 65}, "packing: Input should be less than or equal to 64"),
        ({"name": "s", "packing": 2.5}, "packing: Input should be a valid integer"),
        ({"name": "s", "backend": {"kind": "slurm"}}, "backend.kind: Input should be 'local' or 'kubernetes'"),
        ({"name": "s", "budgett": {}}, "budgett: unknown field"),
        ({"name": "s", "storage": {"uri": "s3://"}}, "storage.uri"),
        ({"name": "s", "backend": {"kubernetes": {"resources": {"requests": {"memory": "16GB"}}}}},
         "backend.kubernetes.resources.requests.memory: String should match pattern"),
    ],
)
def test_errors_name_the_field_and_what_is_allowed(data: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_spec(data, "spec.yaml")
    assert expected in str(info.value)
    assert str(info.value).startswith("spec.yaml is not a valid search spec")


def test_packing_defaults_to_one_child_per_process_and_accepts_up_to_the_trainers_limit() -> None:
    from orchestrator.contract import MAX_PACK

    assert parse_spec({"name": "s"}).packing == 1
    spec = parse_spec({"name": "s", "packing": MAX_PACK, "parallelism": 2})
    assert (spec.packing, spec.parallelism) == (MAX_PACK, 2)


def test_a_spec_that_is_not_a_mapping_or_not_yaml_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="a mapping of fields; got list"):
        parse_spec([1, 2])
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_spec(bad)
    with pytest.raises(ConfigError, match="cannot read spec"):
        load_spec(tmp_path / "missing.yaml")


def test_the_spec_is_frozen() -> None:
    spec = parse_spec({"name": "s"})
    with pytest.raises(ValueError):
        spec.parallelism = 3  # type: ignore[misc]


def test_validating_a_spec_imports_no_torch_and_builds_no_strategy() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from orchestrator.spec import parse_spec\n"
        "parse_spec({'name': 'x', 'strategy': {'name': 'ppo', 'options': {'lr': 0.01}}})\n"
        "try:\n"
        "    parse_spec({'name': 'x', 'strategy': {'name': 'ppo', 'options': {'clip': 2}}})\n"
        "except Exception as e:\n"
        "    assert 'strategy.options: option clip must be a number in (0, 1)' in str(e), e\n"
        "else:\n"
        "    raise AssertionError('a bad option passed')\n"
        "loaded = sorted(m for m in ('torch', 'orchestrator.search.ppo', "
        "'orchestrator.search.policy') if m in sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"name": "s", "generation": 100_000_000}, "generation: Input should be less than or equal to 10000"),
        ({"name": "s", "budget": {"trials": 10**9}}, "budget.trials: Input should be less than or equal to 100000"),
        ({"name": "s", "budget": {"max_samples": 10**9}},
         "budget.max_samples: Input should be less than or equal to 2000000"),
        ({"name": "s", "parallelism": 10**8}, "parallelism: Input should be less than or equal to 1024"),
        ({"name": "s", "screen": {"domain": float("inf")}}, "screen.domain: Input should be a finite number"),
        ({"name": "s", "screen": {"domain": 1e6}}, "screen.domain: Input should be less than or equal to 1000"),
        ({"name": "s", "screen": {"max_abs_grad": float("nan")}}, "screen.max_abs_grad: Input should be a finite"),
        ({"name": "s", "budget": {"gpu_hours": float("inf")}}, "budget.gpu_hours: Input should be a finite"),
    ],
)
def test_sizes_and_limits_are_bounded_and_finite(data: dict, expected: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigError) as info:
        parse_spec(data)
    assert expected in str(info.value)


def test_the_bounds_themselves_are_accepted() -> None:
    spec = parse_spec({"name": "s", "generation": 10_000, "parallelism": 1024,
                       "budget": {"trials": 100_000, "max_samples": 2_000_000}, "screen": {"domain": 1000}})
    assert spec.generation == 10_000 and spec.budget.samples == 2_000_000


def test_a_yaml_infinity_in_a_spec_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("name: s\nscreen:\n  domain: .inf\n")
    with pytest.raises(ConfigError, match=r"screen\.domain: Input should be a finite number"):
        load_spec(path)


def test_a_key_given_twice_is_refused_naming_the_key_and_both_lines(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("name: victim\nbudget:\n  trials: 3\n  trials: 5\n")
    with pytest.raises(ConfigError) as info:
        load_spec(path)
    assert str(info.value) == f"{path}: line 4: key 'trials' is given twice (first on line 3); a key may appear once"
    path.write_text("name: victim\nparallelism: 2\nname: other\n")
    with pytest.raises(ConfigError, match="line 3: key 'name' is given twice \\(first on line 1\\)"):
        load_spec(path)


def test_yaml_merge_keys_may_still_override_what_they_merge(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("name: s\nscreen:\n  <<: {domain: 3.0, max_abs_value: 10.0}\n  domain: 4.0\n")
    assert load_spec(path).screen.domain == 4.0


def test_a_spec_that_is_not_utf8_is_refused_naming_the_byte_and_line(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_bytes(b"name: s\nstrategy:\n  name: caf\xe9\n")
    with pytest.raises(ConfigError) as info:
        load_spec(path)
    assert str(info.value) == f"{path} is not UTF-8 text: byte 0xe9 on line 3 (offset 29); save the spec as UTF-8"


def test_a_huge_bad_value_is_quoted_clipped_in_the_message() -> None:
    with pytest.raises(ConfigError) as info:
        parse_spec({"name": "N" * 1_000_000, "strategy": {"name": "s" * 1_000_000},
                    "space": {"unary": ["id", "t" * 1_000_000]}})
    lines = str(info.value).splitlines()
    assert [line.split(":")[0] for line in lines[1:]] == ["name", "space", "strategy.name"]
    assert all(len(line) <= 300 for line in lines[1:])
    assert "characters]" in lines[1]


@pytest.mark.parametrize("uri", ["not a uri", "./mlruns", "foo://bar", "http://", "http://[::1", "http://h:port"])
def test_a_tracking_uri_that_is_not_an_mlflow_uri_is_refused(uri: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_spec({"name": "s", "tracking": {"uri": uri}})
    assert str(info.value).splitlines()[1] == (
        "tracking.uri: must be an MLflow tracking URI: http(s)://host[:port][/path], sqlite:///path, "
        f"or a postgresql/mysql/mssql/file/databricks URI; got {uri!r}")


@pytest.mark.parametrize("uri", ["http://mlflow:5000", "https://mlflow.example.org/team", "sqlite:///m.db",
                                 "postgresql+psycopg2://u@db/mlflow", "file:///tmp/mlruns"])
def test_mlflow_tracking_uris_are_accepted(uri: str) -> None:
    assert parse_spec({"name": "s", "tracking": {"uri": uri}}).tracking.uri == uri
