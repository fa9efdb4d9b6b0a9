"""The benchmark spec: the paper's baseline names, per-model overrides, the examples, and errors
that name the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from orchestrator.benchmark.spec import BASELINES, load_benchmark, parse_benchmark
from orchestrator.errors import ConfigError

EXAMPLES = Path(__file__).parents[3] / "examples"
MINIMAL = {"name": "b", "activations": ["ReLU"], "models": ["mlp"], "datasets": ["digits"]}


def test_baseline_names_in_any_spelling_become_their_grammar_form_or_builtin() -> None:
    spec = parse_benchmark({**MINIMAL, "activations": [
        "relu", "LReLU", "prelu", "softplus", "elu", "SELU", "gelu", "swish_1", "Swish",
        "max(id(x), sin(x))", {"name": "mine", "expression": "min(id(x),  sin(x))"}]})
    labels = [a.label for a in spec.activations]
    assert labels[:9] == list(BASELINES)
    assert [a.expression for a in spec.activations][:9] == list(BASELINES.values())
    assert labels[9] == "max(x, sin(x))" and labels[10] == "mine"
    assert spec.activations[10].expression == "min(id(x), sin(x))"  # canonical spacing
    assert spec.baseline == "ReLU" and spec.seeds == [0, 1, 2, 3, 4]
    assert spec.metric == "test_accuracy"


def test_per_model_overrides_sit_over_the_shared_child_section() -> None:
    spec = parse_benchmark({**MINIMAL, "models": ["mlp", {"name": "tiny_cnn", "child": {"lr": 0.2}}],
                            "datasets": ["digits", "synthetic"], "seeds": 2,
                            "child": {"lr": 0.05, "steps": 30}})
    cfg = spec.cell_config(spec.models[1], spec.datasets[1], 1)
    assert (cfg.model, cfg.dataset, cfg.seed, cfg.lr, cfg.steps) == ("tiny_cnn", "synthetic", 1, 0.2, 30)
    assert spec.cell_config(spec.models[0], spec.datasets[0], 0).lr == 0.05
    assert spec.seeds == [0, 1]
    assert spec.columns == [("mlp", "digits"), ("mlp", "synthetic"), ("tiny_cnn", "digits"),
                            ("tiny_cnn", "synthetic")]


def test_a_data_sets_overrides_sit_under_a_models() -> None:
    spec = parse_benchmark({**MINIMAL, "datasets": [{"name": "cifar100", "child": {
        "data_source": "/data/c100", "lr": 0.3}}], "models": [
        {"name": "mlp", "child": {"lr": 0.2}}]})
    cfg = spec.cell_config(spec.models[0], spec.datasets[0], 0)
    assert cfg.data_source == "/data/c100" and cfg.lr == 0.2


def test_both_examples_are_valid_benchmark_specs() -> None:
    quick = load_benchmark(EXAMPLES / "benchmark-quick.yaml")
    assert [d.name for d in quick.datasets] == ["digits"] and quick.backend.kind == "local"
    paper = load_benchmark(EXAMPLES / "paper-benchmark.yaml")
    assert [a.label for a in paper.activations][:9] == list(BASELINES)
    assert {m.name for m in paper.models} == {"preact_resnet164", "wrn_28_10", "densenet100_12"}
    assert [d.name for d in paper.datasets] == ["cifar10", "cifar100"] and len(paper.seeds) == 5
    assert len({paper.cell_config(paper.models[0], d, 0).data_source for d in paper.datasets}) == 2
    assert paper.backend.kind == "kubernetes"


def test_the_fashion_mnist_benchmark_trains_the_nine_baselines_and_the_papers_top_functions() -> None:
    spec = load_benchmark(EXAMPLES / "benchmark-fashion-mnist.yaml")
    labels = [a.label for a in spec.activations]
    assert labels[:9] == list(BASELINES)
    paper = yaml.safe_load((EXAMPLES / "paper-functions.yaml").read_text())["top_functions"]
    top = {parse_benchmark({**MINIMAL, "activations": [f["expr"]]}).activations[0].expression for f in paper}
    assert {a.expression for a in spec.activations} == set(BASELINES.values()) | top  # x·σ(βx) is Swish
    assert [d.name for d in spec.datasets] == ["fashion_mnist"] and len(spec.seeds) >= 5
    assert spec.backend.kind == "local" and {m.name for m in spec.models} == {"mlp"}


@pytest.mark.parametrize(("data", "expected"), [
    ({"activations": ["Mish"]}, "activations.0.expression: 'Mish' is neither a baseline"),
    ({"activations": ["builtin:swish"]}, "unknown built-in activation 'swish'"),
    ({"activations": [{"expression": "max(id(x), sin(x))", "top": {"search": "s"}}]},
     "activations.0: give exactly one of expression and top"),
    ({"activations": [{"top": {"search": "s", "k": 0}}]}, "activations.0.top.k: Input should be greater"),
    ({"activations": ["ReLU", "relu"]}, "labels repeat: ['ReLU']"),
    ({"activations": ["ReLU", {"name": "r2", "expression": "max(relu(x), relu(x))"}]},
     "the same function is listed twice"),
    ({"models": ["vgg"]}, "models.0.name: Input should be 'resnet20'"),
    ({"models": [{"name": "mlp", "child": {"lr": -1}}]}, "models.0.child (mlp on digits): lr: "
     "lr must be a positive number"),
    ({"models": [{"name": "mlp", "child": {"seed": 3}}]}, "models.0.child: seed come from the axes"),
    ({"datasets": ["imagenet"]}, "datasets.0.name: Input should be 'cifar10'"),
    ({"datasets": ["digits", "digits"]}, "datasets: datasets repeat"),
    ({"seeds": 0}, "seeds: a seed count must be at least 1"),
    ({"seeds": [1, 1]}, "seeds: seeds repeat"),
    ({"child": {"model": "mlp"}}, "child: model come from models, datasets and seeds"),
    ({"sign_test": {"baseline": "GELU"}}, "sign_test.baseline: 'GELU' is not one of"),
    ({"sign_test": {"tie_tolerance": -0.1}}, "sign_test.tie_tolerance: Input should be greater"),
    ({"metric": "loss"}, "metric: Input should be 'test_accuracy' or 'val_accuracy'"),
    ({"name": "Bad_Name"}, "name: must be lowercase letters"),
    ({"parallelism": 0}, "parallelism: Input should be greater than or equal to 1"),
    ({"budget": {}}, "budget: unknown field (not part of the benchmark spec)"),
])
def test_a_bad_spec_names_the_field(data: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_benchmark({**MINIMAL, **data})
    assert expected in str(e.value), str(e.value)
