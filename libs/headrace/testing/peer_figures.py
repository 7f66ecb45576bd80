"""The peer comparison's numbers (benchmarks/peer_comparison.py): each target's figures from
what the app saw, and how targets compare: an engine against its peer in the same mode, and
against the SDK floor (the same app called by a bare client, no engine)."""

from __future__ import annotations

import math
import statistics

import msgspec

from headrace.testing.soak_stats import percentile


class Figures(msgspec.Struct, frozen=True):
    step_gap_p50_ms: float
    step_gap_p99_ms: float
    first_step_p50_ms: float  # from just before the event was sent to the first step's start
    burst_runs_per_s: float


def figures_of(
    gaps_ms: list[float], first_step_ms: list[float], burst: int, burst_s: float
) -> Figures:
    return Figures(
        step_gap_p50_ms=statistics.median(gaps_ms),
        step_gap_p99_ms=percentile(gaps_ms, 99),
        first_step_p50_ms=statistics.median(first_step_ms),
        burst_runs_per_s=burst / burst_s,
    )


def median_figures(rounds: list[Figures]) -> Figures:
    """Each figure's median over the rounds of one target."""
    return Figures(
        **{
            name: statistics.median(getattr(figures, name) for figures in rounds)
            for name in Figures.__struct_fields__
        }
    )


def ratio(numerator: float, denominator: float) -> float:
    """NaN, not an error, when the denominator is zero: one bad target must not lose the
    table of the others."""
    return numerator / denominator if denominator else math.nan


class Comparison(msgspec.Struct, frozen=True):
    """One mode: headrace and its peer, each against the floor of the same app mode."""

    gap_p50_ratio: float  # headrace / peer: below 1, headrace's steps follow sooner
    first_step_ratio: float  # headrace / peer
    throughput_ratio: float  # headrace / peer: above 1, headrace runs more per second
    headrace_percent_of_floor: float  # runs/s
    peer_percent_of_floor: float
    headrace_gap_over_floor_ms: float  # what the engine adds to a step, at p50
    peer_gap_over_floor_ms: float


def compare(headrace: Figures, peer: Figures, floor: Figures) -> Comparison:
    return Comparison(
        gap_p50_ratio=ratio(headrace.step_gap_p50_ms, peer.step_gap_p50_ms),
        first_step_ratio=ratio(headrace.first_step_p50_ms, peer.first_step_p50_ms),
        throughput_ratio=ratio(headrace.burst_runs_per_s, peer.burst_runs_per_s),
        headrace_percent_of_floor=100 * ratio(headrace.burst_runs_per_s, floor.burst_runs_per_s),
        peer_percent_of_floor=100 * ratio(peer.burst_runs_per_s, floor.burst_runs_per_s),
        headrace_gap_over_floor_ms=headrace.step_gap_p50_ms - floor.step_gap_p50_ms,
        peer_gap_over_floor_ms=peer.step_gap_p50_ms - floor.step_gap_p50_ms,
    )
