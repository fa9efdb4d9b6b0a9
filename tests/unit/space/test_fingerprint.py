"""Functional fingerprints: equivalent forms collide, different functions do not."""

from __future__ import annotations

import numpy as np

from orchestrator.space import SearchSpace, parse, to_text
from orchestrator.space.evaluate import evaluate
from orchestrator.space.fingerprint import PROBE_POINTS, fingerprint

EQUIVALENT = [
    ["max(relu(x), relu(x))", "max(id(x), relu(x))", "max(relu(x), min0(x))",
     "sub(id(x), min0(x))", "min(relu(x), abs(x))"],
    ["add(id(x), id(x))", "sub(id(x), neg(x))"],
    ["beta_mix(id(x), id(x))", "max(id(x), id(x))", "min(id(x), id(x))"],
    ["sigmul(mul_beta(x), id(x))", "max(id(sigmul(mul_beta(x), id(x))), id(sigmul(mul_beta(x), id(x))))"],
    ["mul(id(x), id(x))", "max(square(x), square(x))", "mul(abs(x), abs(x))"],
]
DIFFERENT = [
    "sigmul(mul_beta(x), id(x))", "sigmul(id(x), id(x))", "max(id(x), sigmoid(x))",
    "max(relu(x), relu(x))", "add(id(x), id(x))", "sub(cos(x), id(x))", "min(id(x), sin(x))",
    "max(id(x), tanh(x))", "add(sinc(x), id(x))", "mul(id(x), id(x))",
]


def test_equivalent_forms_share_a_fingerprint() -> None:
    for group in EQUIVALENT:
        prints = {fingerprint(parse(e)) for e in group}
        assert len(prints) == 1, group


def test_different_functions_get_different_fingerprints() -> None:
    prints = [fingerprint(parse(e)) for e in DIFFERENT]
    assert len(set(prints)) == len(prints)


def test_beta_dependent_functions_differ_from_their_beta_one_twins() -> None:
    assert fingerprint(parse("mul(mul_beta(x), id(x))")) != fingerprint(parse("mul(id(x), id(x))"))


def test_fingerprints_agree_exactly_when_values_agree_on_the_probes() -> None:
    """Over a sample of the space, equal fingerprints mean values equal to 1e-5 on the probes,
    and distinct fingerprints mean the values differ somewhere by more than 1e-7 (relative)."""
    exprs = SearchSpace(units=1, unary=("id", "neg", "relu", "min0", "abs", "sin"),
                        binary=("add", "sub", "max", "min")).sample_expressions(300, 5)
    by_print: dict[str, list[np.ndarray]] = {}
    for e in exprs:
        values = np.concatenate([evaluate(e, PROBE_POINTS, beta=b) for b in (1.0, 0.61)])
        by_print.setdefault(fingerprint(e), []).append(values)
    groups = list(by_print.values())
    assert 1 < len(groups) < len(exprs)  # some collisions, not all
    for vals in groups:
        for v in vals[1:]:
            np.testing.assert_allclose(v, vals[0], rtol=1e-5, atol=1e-9)
    reps = [g[0] for g in groups]
    for i in range(len(reps)):
        for j in range(i + 1, len(reps)):
            assert not np.allclose(reps[i], reps[j], rtol=1e-7, atol=1e-9)


def test_fingerprint_is_a_stable_16_hex_digit_string() -> None:
    fp = fingerprint(parse("sigmul(mul_beta(x), id(x))"))
    assert len(fp) == 16 and int(fp, 16) >= 0
    assert fp == fingerprint(parse(to_text(parse("sigmul(mul_beta(x),id(x))"))))
