"""The soak's summary (headrace.testing.soak_stats): growth after warm-up, lag, p99, runs."""

from __future__ import annotations

import math

from headrace.testing.soak_stats import growth, percentile, render, summarize


def test_percentile_is_nearest_rank_and_nan_without_values() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 99) == 99.0
    assert percentile(values, 50) == 50.0
    assert percentile([5.0], 99) == 5.0
    assert math.isnan(percentile([], 99))


def test_growth_compares_the_samples_after_warmup_with_the_last_ones() -> None:
    minutes = [1.0, 2, 3, 4, 5, 6, 7, 8]
    # Warm-up (minutes 1-2) doubles the value; it is not counted as growth.
    values = [50.0, 90, 100, 100, 100, 110, 110, 110]
    g = growth("runner", minutes, values, warmup=3)
    assert (g.at_warmup, g.at_end) == (100.0, 110.0)
    assert g.percent == 10.0


def test_growth_skips_samples_that_were_not_measured() -> None:
    g = growth("ingest", [1.0, 2, 3, 4], [math.nan, 100, 100, 120], warmup=0)
    assert g.at_warmup == 100.0
    assert math.isclose(g.at_end, 320 / 3)


def test_summary_per_service_and_group() -> None:
    minutes = [1.0, 2, 3, 4, 5, 6]
    series = {
        "rss_mib": {"runner": [100.0] * 6, "executor": [100.0, 100, 100, 120, 130, 140]},
        "fds": {"runner": [10.0] * 6},
        "lag": {"executor": [0.0, 40, 3, math.nan, 1, 0], "runner": [0.0] * 6},
        "step_p99_ms": {"app": [20.0, 30, math.nan, 25, 500, 40]},
        "runs": {"started": [10.0, 20, 30, 40, 50, 60], "completed": [9.0, 19, 29, 39, 49, 58]},
    }
    summary = summarize(minutes, series, warmup=1)
    by_line = {g.line: g.percent for g in summary.rss}
    assert by_line["runner"] == 0.0
    assert by_line["executor"] == 30.0  # 100 -> 130 (means of three samples each)
    assert summary.lag_max == {"executor": 40.0, "runner": 0.0}
    assert summary.step_p99_ms_max == 500.0
    assert summary.step_p99_ms_median == 30.0
    assert (summary.runs_started, summary.runs_completed) == (60.0, 58.0)
    assert math.isnan(summary.runs_failed)
    text = render(summary)
    rss_section = text.split("RSS (MiB), after warm-up -> end:\n")[1].split("open fds")[0]
    rss_lines = {line.split()[0]: line for line in rss_section.splitlines()}
    assert rss_lines["executor"].endswith("+30.0 %  OVER 10 %")
    assert rss_lines["runner"].split()[1:] == ["100.0", "->", "100.0", "+0.0", "%", "ok"]
