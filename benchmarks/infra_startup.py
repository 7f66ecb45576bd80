"""Measure the local Kafka and Cassandra: first fetch, start (cold and warm cache), RSS, `down`.

Runs in throwaway cache, state and Maven repository directories, so the cold fetch is as on a
fresh machine (nothing in ~/.m2, nothing in the jar cache) and nothing of the developer's own
infra is touched. The fixed ports must be free: run `headrace infra down` first.

    python benchmarks/infra_startup.py [--repeats 3] > results.md
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from headrace.infra import COMPONENTS, InfraConfig, Started, down, status, up
from headrace.infra.processes import busy_ports
from headrace.infra.stack import components


def processes_mentioning(needle: str) -> list[int]:
    """Pids whose command line mentions `needle` (the throwaway dirs): any leftover JVM."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if needle in cmdline:
                found.append(int(entry.name))
    return found


def all_ports(config: InfraConfig) -> list[int]:
    return [port for component in components(config) for port in component.ports]


def timed_up(config: InfraConfig, names: tuple[str, ...]) -> tuple[float, dict[str, Started]]:
    began = time.monotonic()
    endpoints = up(config, names)
    return time.monotonic() - began, endpoints.started


def rss_mib(config: InfraConfig) -> dict[str, float]:
    return {s.name: (s.rss_kib or 0) / 1024 for s in status(config) if s.rss_kib is not None}


def checked_down(config: InfraConfig, wipe: bool, needle: str) -> float:
    """`down`, then verify independently: no process of ours left, no port held."""
    began = time.monotonic()
    down(config, wipe=wipe)
    elapsed = time.monotonic() - began
    leftovers = processes_mentioning(needle)
    held = busy_ports(config.host, all_ports(config))
    assert not leftovers, f"processes still running after down: {leftovers}"
    assert not held, f"ports still held after down: {held}"
    return elapsed


def spread(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.median(values):.1f} ({min(values):.1f} to {max(values):.1f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="headrace-infra-bench-") as tmp:
        root = Path(tmp)
        os.environ["MAVEN_OPTS"] = f"-Dmaven.repo.local={root / 'm2'}"  # an empty ~/.m2
        config = replace(InfraConfig(), cache_dir=root / "cache", state_dir=root / "state")
        needle = str(root)
        held = busy_ports(config.host, all_ports(config))
        if held:
            sys.exit(f"ports {held} are in use; run `headrace infra down` first")

        rows: list[tuple[str, str, str, str]] = []
        wall, started = timed_up(config, COMPONENTS)
        rss = rss_mib(config)
        for name in COMPONENTS:
            s = started[name]
            rows.append(
                (
                    f"{name}, cold (empty jar cache and ~/.m2), both in parallel",
                    f"{s.fetch_s:.1f}" if s.fetch_s is not None else "-",
                    f"{s.start_s:.1f}",
                    f"{rss[name]:.0f}",
                )
            )
        down_times = [checked_down(config, wipe=True, needle=needle)]
        walls = {"cold, both": [wall]}

        scenarios: list[tuple[str, tuple[str, ...], bool]] = [
            ("warm jar cache, fresh data, both in parallel", COMPONENTS, True),
            ("warm jar cache, data kept (restart), both in parallel", COMPONENTS, False),
            ("warm jar cache, fresh data, alone", ("kafka",), True),
            ("warm jar cache, fresh data, alone", ("cassandra",), True),
        ]
        for label, names, wipe in scenarios:
            starts: dict[str, list[float]] = {name: [] for name in names}
            rsses: dict[str, list[float]] = {name: [] for name in names}
            if not wipe:  # a restart needs data to restart from
                up(config, names)
                down(config, names)
            for _ in range(args.repeats):
                wall, started = timed_up(config, names)
                walls.setdefault(f"{label}: {'+'.join(names)}", []).append(wall)
                rss = rss_mib(config)
                for name in names:
                    starts[name].append(started[name].start_s)
                    rsses[name].append(rss[name])
                down_times.append(checked_down(config, wipe=wipe, needle=needle))
            for name in names:
                rows.append((f"{name}, {label}", "-", spread(starts[name]), spread(rsses[name])))

    print(
        "| component, scenario | jar fetch (s) | start until answering (s) | RSS at ready (MiB) |"
    )
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print()
    print("| `up` wall time | seconds |")
    print("|---|---|")
    for label, values in walls.items():
        print(f"| {label} | {spread(values)} |")
    print()
    print(
        f"`down` ({len(down_times)} times): {spread(down_times)} s; after each one no process "
        "mentioning the state/cache dirs was left in /proc and every port could be bound again."
    )


if __name__ == "__main__":
    main()
