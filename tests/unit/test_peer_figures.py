"""The peer comparison's numbers (headrace.testing.peer_figures): a target's figures, and an
engine against its peer and against the SDK floor."""

from __future__ import annotations

import math

from headrace.testing.peer_figures import Figures, compare, figures_of, median_figures


def test_figures_take_the_gaps_percentiles_and_the_burst_rate() -> None:
    gaps = [float(v) for v in range(1, 101)]  # 1..100 ms
    figures = figures_of(gaps, first_step_ms=[30.0, 10.0, 20.0], burst=500, burst_s=20.0)
    assert figures == Figures(
        step_gap_p50_ms=50.5, step_gap_p99_ms=99.0, first_step_p50_ms=20.0, burst_runs_per_s=25.0
    )


def test_rounds_give_each_figures_median() -> None:
    rounds = [
        Figures(step_gap_p50_ms=4.0, step_gap_p99_ms=9, first_step_p50_ms=8, burst_runs_per_s=20),
        Figures(step_gap_p50_ms=9.0, step_gap_p99_ms=30, first_step_p50_ms=6, burst_runs_per_s=5),
        Figures(step_gap_p50_ms=5.0, step_gap_p99_ms=10, first_step_p50_ms=7, burst_runs_per_s=25),
    ]
    assert median_figures(rounds) == Figures(
        step_gap_p50_ms=5.0, step_gap_p99_ms=10, first_step_p50_ms=7, burst_runs_per_s=20
    )


def test_an_engine_against_its_peer_and_the_floor() -> None:
    floor = Figures(
        step_gap_p50_ms=2.0, step_gap_p99_ms=5, first_step_p50_ms=2, burst_runs_per_s=80
    )
    headrace = Figures(
        step_gap_p50_ms=5.0, step_gap_p99_ms=9, first_step_p50_ms=8, burst_runs_per_s=60
    )
    peer = Figures(
        step_gap_p50_ms=10.0, step_gap_p99_ms=20, first_step_p50_ms=140, burst_runs_per_s=20
    )
    c = compare(headrace, peer, floor)
    assert (c.gap_p50_ratio, c.throughput_ratio) == (0.5, 3.0)
    assert math.isclose(c.first_step_ratio, 8 / 140)
    assert (c.headrace_percent_of_floor, c.peer_percent_of_floor) == (75.0, 25.0)
    assert (c.headrace_gap_over_floor_ms, c.peer_gap_over_floor_ms) == (3.0, 8.0)


def test_a_peer_that_measured_zero_gives_no_ratio_rather_than_an_error() -> None:
    headrace = Figures(
        step_gap_p50_ms=5.0, step_gap_p99_ms=9, first_step_p50_ms=8, burst_runs_per_s=60
    )
    zero = Figures(step_gap_p50_ms=0.0, step_gap_p99_ms=0, first_step_p50_ms=0, burst_runs_per_s=0)
    c = compare(headrace, zero, zero)
    assert math.isnan(c.gap_p50_ratio)
    assert math.isnan(c.throughput_ratio)
    assert math.isnan(c.headrace_percent_of_floor)
