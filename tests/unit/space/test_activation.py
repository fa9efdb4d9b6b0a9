"""Built-in activations equal their closed forms and torch.nn's modules; the paper's grammar
baselines equal theirs; every site is built by one factory; built-ins have stable fingerprints."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from orchestrator.contract import TrialSpec
from orchestrator.space import ParseError, parse
from orchestrator.space.activation import (
    BUILTIN_NAMES,
    Builtin,
    activation_fingerprint,
    activation_text,
    parse_activation,
)
from orchestrator.space.module import (
    Activation,
    BuiltinActivation,
    build_site,
    is_activation_site,
)

X = torch.linspace(-6.0, 6.0, 241, dtype=torch.float64)
SELU_ALPHA, SELU_SCALE = 1.6732632423543772, 1.0507009873554805

CLOSED_FORMS = {
    "lrelu": lambda x: torch.where(x > 0, x, 0.01 * x),
    "prelu": lambda x: torch.where(x > 0, x, 0.25 * x),
    "elu": lambda x: torch.where(x > 0, x, torch.exp(x) - 1),
    "selu": lambda x: SELU_SCALE * torch.where(x > 0, x, SELU_ALPHA * (torch.exp(x) - 1)),
    "gelu": lambda x: 0.5 * x * (1 + torch.erf(x / math.sqrt(2))),
}
TORCH_MODULES = {
    "lrelu": lambda: nn.LeakyReLU(0.01),
    "prelu": lambda: nn.PReLU(num_parameters=1, init=0.25),
    "elu": lambda: nn.ELU(alpha=1.0),
    "selu": nn.SELU,
    "gelu": nn.GELU,
}


@pytest.mark.parametrize("name", BUILTIN_NAMES)
def test_each_builtin_equals_its_closed_form_and_torch_nn(name: str) -> None:
    site = build_site(parse_activation(f"builtin:{name}")).double()
    y = site(X)
    torch.testing.assert_close(y, CLOSED_FORMS[name](X), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(y, TORCH_MODULES[name]().double()(X), rtol=1e-12, atol=1e-12)


def test_prelu_has_one_alpha_per_channel_initialised_to_a_quarter_and_it_learns() -> None:
    site = build_site(Builtin("prelu"), channels=6)
    assert isinstance(site, BuiltinActivation) and is_activation_site(site)
    assert site.alpha is not None and site.alpha.shape == (6,)
    assert torch.all(site.alpha == 0.25)
    x = -torch.ones(4, 6, 3, 3)
    x[:, 2] = -2.0
    reference = nn.PReLU(num_parameters=6, init=0.25)
    torch.testing.assert_close(site(x), reference(x))
    site(x).sum().backward()
    assert site.alpha.grad is not None and site.alpha.grad[2] == -2.0 * 4 * 9


@pytest.mark.parametrize("text, closed", [
    ("max(relu(x), relu(x))", lambda x, b: torch.relu(x)),
    ("max(softplus(x), softplus(x))", lambda x, b: torch.log1p(torch.exp(x))),
    ("sigmul(id(x), id(x))", lambda x, b: x * torch.sigmoid(x)),
    ("sigmul(mul_beta(x), id(x))", lambda x, b: x * torch.sigmoid(b * x)),
], ids=["ReLU", "Softplus", "Swish-1", "Swish"])
def test_the_grammar_baselines_equal_their_closed_forms(text: str, closed) -> None:  # type: ignore[no-untyped-def]
    site = build_site(parse_activation(text), beta_mode="scalar", beta_init=0.5).double()
    assert isinstance(site, Activation)
    torch.testing.assert_close(site(X), closed(X, 0.5), rtol=1e-9, atol=1e-12)


def test_builtin_names_parse_print_and_fingerprint_stably() -> None:
    assert parse_activation(" builtin:GELU ") == Builtin("gelu")
    assert activation_text(Builtin("gelu")) == "builtin:gelu"
    keys = {activation_fingerprint(Builtin(n)) for n in BUILTIN_NAMES}
    assert len(keys) == len(BUILTIN_NAMES)
    assert activation_fingerprint(Builtin("elu")) == "d790afd6004a981a"  # sha256("builtin:elu"): a fixed cache key
    assert activation_fingerprint(Builtin("elu")) not in {
        activation_fingerprint(parse("max(relu(x), relu(x))"))}


def test_an_unknown_builtin_is_refused_with_the_allowed_names() -> None:
    with pytest.raises(ParseError, match=r"unknown built-in activation 'swish'.*builtin:gelu"):
        parse_activation("builtin:swish")


def test_a_trial_spec_accepts_a_builtin_and_keeps_it_canonical() -> None:
    spec = TrialSpec(expression="builtin:PReLU")
    assert spec.expression == "builtin:prelu" and spec.activation == Builtin("prelu")
    with pytest.raises(ValueError, match="built-in"):
        _ = spec.expr
