"""Models: the published sizes, and every activation site built through the one factory."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from orchestrator.space import parse
from orchestrator.space.module import Activation
from orchestrator.trainer.models import build_model

SWISH = parse("sigmul(mul_beta(x), id(x))")


def _counted(name: str, classes: int = 10, shape: tuple[int, int, int] = (3, 32, 32)):  # type: ignore[no-untyped-def]
    sites: list[int] = []

    def make_act(channels: int) -> nn.Module:
        sites.append(channels)
        return Activation(SWISH, channels)

    return build_model(name, classes, shape, make_act), sites


@pytest.mark.parametrize(("name", "millions", "sites"), [
    ("resnet20", 0.27, 19), ("resnet56", 0.85, 55), ("preact_resnet164", 1.70, 163),
    ("wrn_28_10", 36.5, 25), ("densenet100_12", 0.8, 99),
])
def test_benchmark_models_have_their_published_size(name: str, millions: float, sites: int) -> None:
    model, built = _counted(name)
    params = sum(p.numel() for n, p in model.named_parameters() if not n.endswith(".beta"))
    assert params / 1e6 == pytest.approx(millions, rel=0.05)  # as published, to their rounding
    assert len(built) == sites


@pytest.mark.parametrize("name", ["resnet20", "tiny_cnn", "mlp"])
def test_every_site_is_a_distinct_activation_with_per_channel_beta(name: str) -> None:
    model, built = _counted(name, classes=7, shape=(1, 8, 8))
    acts = [m for m in model.modules() if isinstance(m, Activation)]
    assert [a.beta.numel() for a in acts] == built
    assert len({id(a.beta) for a in acts}) == len(acts)
    out = model(torch.randn(4, 1, 8, 8))
    assert out.shape == (4, 7)
    out.sum().backward()
    assert all(a.beta.grad is not None for a in acts)


def test_an_unknown_model_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="resnet20"):
        build_model("vgg", 10, (3, 32, 32), lambda c: nn.ReLU())
