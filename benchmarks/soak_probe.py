"""What the soak measures each minute: a process's RSS and open file descriptors (from /proc),
the services' `/metrics` (consumer lag, runs), and the soak keyspace's Cassandra tables (bytes
on disk, and the live rows of each table's largest partition)."""

from __future__ import annotations

import os
from pathlib import Path

from cassandra.cluster import Session

from headrace.testing.metrics import samples


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise ValueError(f"no VmRSS for pid {pid}")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def lag_by_group(texts: list[str], prefix: str) -> dict[str, float]:
    """Sum of `headrace_consumer_lag` over every partition each group's members report (a
    partition is reported by its owner only), by group without the soak's prefix."""
    lag: dict[str, float] = {}
    for text in texts:
        for labels, value in samples(text, "headrace_consumer_lag"):
            group = labels["group"].removeprefix(prefix)
            lag[group] = lag.get(group, 0.0) + value
    return lag


def runs(texts: list[str]) -> dict[str, float]:
    """Runs started, and ended by status, over every service."""
    totals = {"started": 0.0, "completed": 0.0, "failed": 0.0, "cancelled": 0.0}
    for text in texts:
        for _, value in samples(text, "headrace_runs_started_total"):
            totals["started"] += value
        for labels, value in samples(text, "headrace_runs_ended_total"):
            totals[labels["status"]] = totals.get(labels["status"], 0.0) + value
    return totals


def table_bytes(data_dir: Path, keyspace: str) -> dict[str, float]:
    """Bytes on disk of each table of `keyspace` (sstables: flushed data and its tombstones;
    rows still in memtables are not counted), in MiB. Table dirs are `<table>-<id>`."""
    sizes: dict[str, float] = {}
    root = data_dir / keyspace
    if not root.is_dir():
        return sizes
    for table_dir in root.iterdir():
        table = table_dir.name.rsplit("-", 1)[0]
        total = sum(f.stat().st_size for f in table_dir.rglob("*") if f.is_file())
        sizes[table] = sizes.get(table, 0.0) + total / 2**20
    return sizes


def clustered_tables(session: Session, keyspace: str) -> dict[str, list[str]]:
    """Tables whose partitions hold many rows (they have clustering columns): their partition
    key columns. A partition of these is what can grow without bound."""
    keys: dict[str, list[str]] = {}
    clustered: set[str] = set()
    rows = session.execute(
        "SELECT table_name, column_name, kind, position FROM system_schema.columns "
        "WHERE keyspace_name = %s",
        (keyspace,),
    )
    for row in sorted(rows, key=lambda r: r.position):
        if row.kind == "partition_key":
            keys.setdefault(row.table_name, []).append(row.column_name)
        elif row.kind == "clustering":
            clustered.add(row.table_name)
    return {table: columns for table, columns in keys.items() if table in clustered}


def largest_partition_rows(session: Session, keyspace: str, table: str, key: list[str]) -> int:
    """Live rows in the table's largest partition (a full scan: soak keyspaces are small)."""
    columns = ", ".join(key)
    query = f"SELECT {columns}, COUNT(*) AS n FROM {keyspace}.{table} GROUP BY {columns}"
    return max((row.n for row in session.execute(query, timeout=60)), default=0)


def tombstones_per_read(session: Session, keyspace: str) -> dict[str, float]:
    """The most tombstones one recent read of each table scanned (Cassandra's decaying
    histogram; the soak's own full scans above count too, so this nears the table's total)."""
    rows = session.execute(
        "SELECT table_name, count, max FROM system_views.tombstones_per_read "
        "WHERE keyspace_name = %s ALLOW FILTERING",
        (keyspace,),
    )
    return {row.table_name: row.max for row in rows if row.count}


def open_by_function(texts: list[str]) -> dict[str, float]:
    """Runs started and not ended, by function (only those with any)."""
    opened: dict[str, float] = {}
    for text in texts:
        for labels, value in samples(text, "headrace_runs_started_total"):
            opened[labels["function"]] = opened.get(labels["function"], 0.0) + value
        for labels, value in samples(text, "headrace_runs_ended_total"):
            opened[labels["function"]] = opened.get(labels["function"], 0.0) - value
    return {function: n for function, n in sorted(opened.items()) if n}
