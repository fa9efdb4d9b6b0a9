"""The control-plane benchmark's own arithmetic (its figures go into docs/benchmarks.md)."""

from __future__ import annotations

import math

from bench.control_plane import cpu_ms_per_trial, pct


def test_cpu_per_trial_is_taken_between_the_polls_nearest_the_window() -> None:
    cpu_at = [(0, 1.0), (64, 1.5), (128, 2.0), (500, 4.0), (900, 7.0), (1000, 8.0)]
    assert cpu_ms_per_trial(cpu_at, 0, 1000) == 7.0  # 7 s over 1,000 trials
    assert cpu_ms_per_trial(cpu_at, 100, 1000) == round(1000 * 6.0 / 872, 2)  # from 128 on
    assert cpu_ms_per_trial(cpu_at, 0, 950) == round(1000 * 6.0 / 900, 2)  # up to 900
    assert math.isnan(cpu_ms_per_trial(cpu_at, 2000, 3000))  # nothing settled there
    assert math.isnan(cpu_ms_per_trial([], 0, 10))


def test_percentiles_of_few_values_are_values_seen() -> None:
    assert pct([3.0, 1.0, 2.0], 50) == 2.0 and pct([3.0, 1.0, 2.0], 99) == 3.0
    assert math.isnan(pct([], 99))
