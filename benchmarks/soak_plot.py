"""The soak's PNG: one panel per measure, a line per service (or group, or table), minutes on
the x axis, so flat and growing lines show at a glance."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: render to a file
import matplotlib.pyplot as plt

from headrace.testing.soak_stats import Series

TITLES = {
    "rss_mib": "RSS (MiB) per process",
    "fds": "open file descriptors per process",
    "lag": "consumer lag (records) per group",
    "step_p99_ms": "step handoff latency p99 (ms), at the app",
    "runs": "runs (cumulative)",
    "table_mib": "Cassandra table size on disk (MiB, flushed sstables), the 8 largest",
    "partition_rows": "Cassandra largest partition (live rows), the 8 largest tables",
    "tombstones": "Cassandra tombstones per read, recent max (the soak's scans too), top 8",
}


# Lines per panel: the tables that grow most are the ones to see.
MAX_LINES = 8


def _largest(lines: dict[str, list[float]]) -> list[tuple[str, list[float]]]:
    """The MAX_LINES lines with the highest peaks, in name order."""

    def peak(values: list[float]) -> float:
        return max((v for v in values if v == v), default=0.0)  # v == v: not NaN

    kept = sorted(lines.items(), key=lambda item: peak(item[1]), reverse=True)[:MAX_LINES]
    return sorted(kept)


def plot(minutes: list[float], series: Series, warmup: float, path: Path, title: str) -> None:
    measures = [m for m in TITLES if series.get(m)]
    fig, axes = plt.subplots(len(measures), 1, figsize=(11, 3.2 * len(measures)), sharex=True)
    for ax, measure in zip(axes, measures, strict=True):
        for line, values in _largest(series[measure]):
            ax.plot(minutes, values, marker=".", label=line)
        ax.axvline(warmup, color="grey", linestyle=":", linewidth=1)
        ax.set_title(TITLES[measure], fontsize=10)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    axes[-1].set_xlabel("minutes (dotted: end of warm-up)")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    fig.savefig(path, dpi=80)
    plt.close(fig)
