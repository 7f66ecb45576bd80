"""The soak's numbers (benchmarks/soak.py): per-minute series of each measure, a line per
service (or consumer group, or table), and the summary a person reads first: what grew after
warm-up, the worst lag and latency, and how many of the runs started completed."""

from __future__ import annotations

import math
from collections.abc import Iterable

import msgspec

# A measure ("rss_mib") -> a line ("runner") -> one value per sample (NaN: not measured then).
Series = dict[str, dict[str, list[float]]]

# Samples averaged at each end of the comparison, so one noisy minute does not decide it.
ENDS = 3


class Growth(msgspec.Struct, frozen=True):
    line: str
    at_warmup: float  # mean of the first samples after warm-up
    at_end: float  # mean of the last samples
    percent: float


class Summary(msgspec.Struct, frozen=True):
    minutes: float
    warmup_minutes: float
    rss: list[Growth]
    fds: list[Growth]
    lag_max: dict[str, float]  # by consumer group
    step_p99_ms_max: float
    step_p99_ms_median: float
    runs_started: float
    runs_completed: float
    runs_failed: float


def percentile(values: Iterable[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of `values`; NaN when there are none."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def _mean(values: list[float]) -> float:
    known = [v for v in values if not math.isnan(v)]
    return sum(known) / len(known) if known else math.nan


def growth(line: str, minutes: list[float], values: list[float], warmup: float) -> Growth:
    """How much `values` grew from the end of warm-up to the end of the soak, in percent."""
    after = [v for t, v in zip(minutes, values, strict=True) if t >= warmup]
    start, end = _mean(after[:ENDS]), _mean(after[-ENDS:])
    percent = (end - start) / start * 100 if start else math.nan
    return Growth(line, start, end, percent)


def _last(values: list[float]) -> float:
    known = [v for v in values if not math.isnan(v)]
    return known[-1] if known else math.nan


def summarize(minutes: list[float], series: Series, warmup: float) -> Summary:
    p99 = [v for v in series.get("step_p99_ms", {}).get("app", []) if not math.isnan(v)]
    runs = series.get("runs", {})
    return Summary(
        minutes=minutes[-1] if minutes else 0.0,
        warmup_minutes=warmup,
        rss=[growth(k, minutes, v, warmup) for k, v in sorted(series.get("rss_mib", {}).items())],
        fds=[growth(k, minutes, v, warmup) for k, v in sorted(series.get("fds", {}).items())],
        lag_max={
            group: max((v for v in values if not math.isnan(v)), default=math.nan)
            for group, values in sorted(series.get("lag", {}).items())
        },
        step_p99_ms_max=max(p99, default=math.nan),
        step_p99_ms_median=percentile(p99, 50),
        runs_started=_last(runs.get("started", [])),
        runs_completed=_last(runs.get("completed", [])),
        runs_failed=_last(runs.get("failed", [])),
    )


def render(summary: Summary, rss_bar_percent: float = 10.0) -> str:
    """The summary as text; each RSS line says whether it is under the bar."""
    lines = [
        f"soak of {summary.minutes:.0f} min, warm-up {summary.warmup_minutes:.0f} min "
        f"(growth compares the mean of the {ENDS} samples after warm-up with the last {ENDS})",
        "RSS (MiB), after warm-up -> end:",
    ]
    for g in summary.rss:
        verdict = "ok" if g.percent < rss_bar_percent else f"OVER {rss_bar_percent:.0f} %"
        lines.append(
            f"  {g.line:<10} {g.at_warmup:8.1f} -> {g.at_end:8.1f}  {g.percent:+6.1f} %  {verdict}"
        )
    lines.append("open fds, after warm-up -> end:")
    lines += [
        f"  {g.line:<10} {g.at_warmup:8.1f} -> {g.at_end:8.1f}  {g.percent:+6.1f} %"
        for g in summary.fds
    ]
    lines.append("consumer lag, max over the soak (records, all partitions of the group):")
    lines += [f"  {group:<10} {lag:8.0f}" for group, lag in summary.lag_max.items()]
    lines.append(
        f"step handoff latency p99 per minute (ms): max {summary.step_p99_ms_max:.0f}, "
        f"median {summary.step_p99_ms_median:.0f}"
    )
    lines.append(
        f"runs: started {summary.runs_started:.0f}, completed {summary.runs_completed:.0f}, "
        f"failed {summary.runs_failed:.0f} (failed on purpose: 1 in 10 of the retry function's)"
    )
    return "\n".join(lines)
