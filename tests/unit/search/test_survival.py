"""Censoring-aware statistics on hand-made samples whose answers are known."""

from __future__ import annotations

import math

import pytest

from orchestrator.search.survival import (
    Quartiles,
    Sample,
    kaplan_meier,
    km_median,
    km_quantile,
    weighted_logrank,
)

# Freireich et al. (1963), remission times in weeks, the textbook example of censored data:
# 6-MP (a "+" time is censored) against placebo (no censoring).
SIX_MP = Sample(
    (6, 6, 6, 7, 10, 13, 16, 22, 23, 6, 9, 10, 11, 17, 19, 20, 25, 32, 32, 34, 35),
    (True,) * 9 + (False,) * 12,
)
PLACEBO = Sample((1, 1, 2, 2, 3, 4, 4, 5, 5, 8, 8, 8, 8, 11, 11, 12, 12, 15, 17, 22, 23),
                 (True,) * 21)


def _flat(steps: list[tuple[float, float]]) -> list[float]:
    return [v for step in steps for v in step]


def test_kaplan_meier_steps_keep_a_run_censored_at_an_event_time_at_risk() -> None:
    s = Sample((1, 2, 2, 3, 5), (True, True, False, True, False))
    assert _flat(kaplan_meier(s)) == pytest.approx([1, 0.8, 2, 0.6, 3, 0.3])
    assert km_median(s) == 3
    assert km_quantile(s, 0.25) == 2


def test_without_censoring_the_median_is_the_sample_median() -> None:
    assert km_median(Sample((3, 1, 2), (True,) * 3)) == 2
    assert km_median(Sample((5, 1, 3, 1000), (True, True, True, False))) == 4  # 1, 3 | 5, > 1000
    assert km_median(Sample((5, 1000, 1000, 3), (True, False, False, True))) is None
    assert km_median(Sample((4, 1000, 2), (True, False, True))) == 4
    assert km_median(Sample((1000,), (False,))) is None


def test_the_median_is_none_when_fewer_than_half_reached() -> None:
    s = Sample((100, 200, 1000, 1000, 1000), (True, True, False, False, False))
    assert km_median(s) is None  # S stays at 0.6 up to the budget
    assert km_quantile(s, 0.25) == 200


def test_early_censoring_moves_the_median_unlike_counting_the_run_as_the_budget() -> None:
    # two runs stopped early (out of proposals) at 50: KM leaves them out from then on
    s = Sample((10, 50, 50, 200, 300), (True, False, False, True, True))
    assert _flat(kaplan_meier(s)) == pytest.approx([10, 0.8, 200, 0.4, 300, 0.0])
    assert km_median(s) == 200


def test_leukaemia_medians_and_log_rank_match_the_textbook() -> None:
    assert km_median(SIX_MP) == 23 and km_median(PLACEBO) == 8
    test = weighted_logrank(SIX_MP, PLACEBO)
    assert test.z ** 2 == pytest.approx(16.79, abs=0.01)  # R: survdiff, Chisq = 16.8
    assert test.z > 0 and test.p_value == pytest.approx(4.17e-5, rel=0.01)


def test_log_rank_and_gehan_on_a_sample_computed_by_hand() -> None:
    early, late = Sample((1, 2), (True, True)), Sample((3, 4), (True, True))
    lr = weighted_logrank(early, late)
    # O−E = 7/6, V = 1/4 + 2/9: z² = (7/6)² / (17/36) = 49/17
    assert lr.z == pytest.approx(-math.sqrt(49 / 17)) and lr.p_value == pytest.approx(0.0896, abs=1e-4)
    gehan = weighted_logrank(early, late, weights="gehan")
    # Σ n_j (O−E) = 4·½ + 3·⅔ = 4, Σ n_j² V_j = 16·¼ + 9·2/9 = 6
    assert gehan.z == pytest.approx(-4 / math.sqrt(6)) and gehan.p_value == pytest.approx(0.1025, abs=1e-4)
    assert weighted_logrank(late, early).z == pytest.approx(-lr.z)


def test_identical_or_eventless_samples_give_p_one() -> None:
    assert weighted_logrank(SIX_MP, SIX_MP).p_value == pytest.approx(1.0)
    none = Sample((1000, 1000), (False, False))
    assert weighted_logrank(none, none).p_value == 1.0


def test_bad_input_is_refused_with_the_field_named() -> None:
    with pytest.raises(ValueError, match="same length"):
        Sample((1, 2), (True,))
    with pytest.raises(ValueError, match="finite"):
        Sample((math.inf,), (True,))
    with pytest.raises(ValueError, match="weights must be"):
        weighted_logrank(SIX_MP, PLACEBO, weights="peto")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="q must be"):
        km_quantile(SIX_MP, 1.0)


def test_sample_of_hits_censors_unreached_runs_where_they_stopped() -> None:
    s = Sample.of([12, None, None], [1000, 1000, 640])
    assert s.times == (12, 1000, 640) and s.reached == (True, False, False) and s.events == 1


def test_quartiles_of_plain_values() -> None:
    q = Quartiles.of([1.0, 2.0, 3.0, 4.0, 5.0])
    assert (q.q1, q.median, q.q3, q.n) == (2.0, 3.0, 4.0, 5)
    assert Quartiles.of([]).n == 0
