"""Median, spread and the sign test against hand computations."""

from __future__ import annotations

import math

import pytest

from orchestrator.benchmark.results import Record, build, to_json, to_markdown, to_metrics
from orchestrator.benchmark.stats import outcome, sign_test, sign_test_p, summarize


def test_median_and_range_of_an_odd_and_an_even_number_of_seeds() -> None:
    s = summarize([0.93, 0.95, 0.91, 0.94, 0.92])
    assert (s.n, s.median, s.lo, s.hi) == (5, 0.93, 0.91, 0.95)
    s = summarize([0.90, 0.96, 0.92, 0.94])
    assert s.median == pytest.approx(0.93) and (s.lo, s.hi) == (0.90, 0.96)
    assert math.isnan(summarize([]).median)


def test_the_sign_test_p_value_is_the_exact_two_sided_binomial() -> None:
    # 5 wins, 1 loss: n = 6, P(X <= 1) = (1 + 6) / 64, two-sided 14/64
    assert sign_test_p(5, 1) == pytest.approx(14 / 64)
    assert sign_test_p(1, 5) == pytest.approx(14 / 64)
    # 9 of 9: 2 / 512
    assert sign_test_p(9, 0) == pytest.approx(2 / 512)
    assert sign_test_p(3, 3) == 1.0  # capped at 1
    assert sign_test_p(0, 0) == 1.0  # every pair tied


def test_a_tie_tolerance_turns_small_differences_into_ties() -> None:
    assert outcome(0.951, 0.950) == 1
    assert outcome(0.951, 0.950, tie_tolerance=0.002) == 0
    assert outcome(0.947, 0.950, tie_tolerance=0.002) == -1
    t = sign_test([(0.96, 0.95), (0.95, 0.95), (0.94, 0.95), (0.97, 0.95), (math.nan, 0.9)])
    assert (t.wins, t.ties, t.losses) == (2, 1, 1)
    assert t.p_value == pytest.approx(2 * (1 + 3) / 8)  # n = 3, P(X <= 1) = 4/8, capped at 1


def _records() -> list[Record]:
    """Two activations, two columns, three seeds; Swish's seed 2 on cnn failed."""
    values = {
        ("ReLU", "mlp"): [0.90, 0.92, 0.91], ("ReLU", "cnn"): [0.80, 0.84, 0.82],
        ("Swish", "mlp"): [0.93, 0.91, 0.95], ("Swish", "cnn"): [0.82, 0.81, None],
    }
    out = []
    for (label, model), vals in values.items():
        for seed, v in enumerate(vals):
            out.append(Record(0 if label == "ReLU" else 1, label, label.lower(), model, "digits",
                              seed, v, None if v is not None else "nan"))
    return out


def test_the_table_reports_medians_ranges_failures_and_the_sign_test_by_medians() -> None:
    res = build(_records(), "test_accuracy", "ReLU")
    assert res.labels == ["ReLU", "Swish"] and res.columns == [("mlp", "digits"), ("cnn", "digits")]
    # Swish mlp: median 0.93 > 0.91 (win); cnn: median of 0.82, 0.81 = 0.815 < 0.82 (loss)
    assert res.summary("Swish", ("cnn", "digits")).median == pytest.approx(0.815)
    t = res.sign_test("Swish")
    assert (t.wins, t.ties, t.losses) == (1, 0, 1) and t.p_value == 1.0
    md = to_markdown(res, "b")
    assert "| ReLU | 91.00 [90.00–92.00] | **82.00** [80.00–84.00] |" in md
    assert "| Swish | **93.00** [91.00–95.00] | 81.50 [81.00–82.00] (n=2) (1 failed) |" in md
    assert "| Swish | + | − | 1 | 0 | 1 | 1.000 |" in md
    j = to_json(res)
    assert j["sign_test"] == [{"activation": "Swish", "wins": 1, "ties": 0, "losses": 1,
                               "p_value": 1.0, "per_column": {"mlp / digits": "+",
                                                              "cnn / digits": "−"}}]


def test_pairing_by_seed_compares_each_seed_present_on_both_sides() -> None:
    res = build(_records(), "test_accuracy", "ReLU", pairs="seeds")
    # mlp: 0.93>0.90, 0.91<0.92, 0.95>0.91; cnn: 0.82>0.80, 0.81<0.84 (seed 2 failed: dropped)
    t = res.sign_test("Swish")
    assert (t.wins, t.ties, t.losses) == (3, 0, 2)
    assert res.marks("Swish") == {("mlp", "digits"): "2/0/1", ("cnn", "digits"): "1/0/1"}


def test_the_parent_run_gets_medians_spreads_and_sign_tests_as_metrics() -> None:
    res = build(_records() + [Record(2, "|x|", "abs", "mlp", "digits", 0, 0.5)],
                "test_accuracy", "ReLU")
    m = to_metrics(res)
    assert m["median.Swish.cnn.digits"] == pytest.approx(0.815)
    assert (m["lo.Swish.cnn.digits"], m["hi.Swish.cnn.digits"]) == (0.81, 0.82)
    assert (m["sign_wins.Swish"], m["sign_losses.Swish"], m["sign_p.Swish"]) == (1.0, 1.0, 1.0)
    assert "sign_p.ReLU" not in m  # the baseline is not tested against itself
    assert m["median.x.mlp.digits"] == 0.5  # a label MLflow would refuse, made a valid key
