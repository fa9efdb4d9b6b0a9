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


def test_the_quickstart_example_is_a_valid_spec() -> None:
    spec = load_spec(EXAMPLES / "quickstart.yaml")
    assert spec.name == "quickstart" and spec.child.dataset == "digits"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"name": "Bad_Name"}, "name: must be lowercase letters"),
        ({"name": "s", "budget": {"trials": 0}}, "budget.trials: Input should be greater than or equal to 1"),
        ({"name": "s", "strategy": {"name": "annealing"}},
         "strategy.name: Input should be 'ppo', 'reinforce', 'random', 'exhaustive' or 'evolution'"),
        ({"name": "s", "strategy": {"name": "ppo", "options": {"hiden": 3}}}, "strategy.options:"),
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
