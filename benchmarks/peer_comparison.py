"""headrace beside Inngest on the same app, in one run, with the SDK floor beside both.

    python benchmarks/peer_comparison.py [--runs 20] [--steps 10] [--burst 100] [--rounds 1] \\
        [--targets floor,headrace-dev,inngest-dev,floor-signed,headrace-distributed,...] \\
        [--tick 10] [--inngest-bin ~/.cache/headrace-peer-bench/bin/inngest] [--json FILE]

The app is steps_app.py's function of `--steps` trivial `step.run`s (official `inngest` SDK,
FastAPI, uvicorn, in this process), measured at the app, on one clock, whatever drives it:

- floor, floor-signed: the SDK floor (sdk_floor.py), a bare client calling the app as
  headrace's executor does, unsigned (the app in dev mode) or signed (production mode);
- headrace-dev: `headrace dev --in-memory`, its own process; the app in dev mode;
- inngest-dev: `inngest dev --tick T` (Inngest built from source, see peer_comparison.md);
- headrace-distributed: one ingest, runner, scheduler and executor on `headrace infra up`'s
  Kafka and Cassandra, 4 partitions (bench_cluster.py); the app in production mode (signed);
- inngest-start: `inngest start --tick T` (its SQLite in a temporary directory, its in-process
  Redis); the app in production mode (signed).

Each target gets a fresh app synced by a PUT to its serve route, `--warmup` runs, then:
`--runs` runs one at a time (step gap: between the starts of consecutive step bodies; first
step: from just before the event is sent to the first step body), and `--burst` runs sent in
one request (runs/s: from just before the send to the last run's last line). The floor starts
a run where an engine would be sent its event, and makes at most `--floor-concurrency` calls at
once (headrace's executor concurrency by default).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import msgspec
from peer_engines import EVENT_KEY, engine
from sdk_floor import FloorClient
from steps_app import STEPS_EVENT, STEPS_FN, StepsSeen, ends, steps_function

from headrace.runtime.settings import SERVICE_SETTINGS
from headrace.testing.peer_figures import (
    Comparison,
    Figures,
    compare,
    figures_of,
    median_figures,
)
from headrace.testing.sdk_app import ServedApp, make_client

TARGETS = (
    "floor",
    "headrace-dev",
    "inngest-dev",
    "floor-signed",
    "headrace-distributed",
    "inngest-start",
)
# Mode -> (headrace, its peer, the floor of the same app mode).
MODES = {
    "dev": ("headrace-dev", "inngest-dev", "floor"),
    "distributed": ("headrace-distributed", "inngest-start", "floor-signed"),
}
SIGNED = {"floor-signed", "headrace-distributed", "inngest-start"}
INNGEST_BIN = Path.home() / ".cache/headrace-peer-bench/bin/inngest"
# A run sent alone ends well within this; a burst is given 2 s more per run (under 1 run/s was
# seen on a machine loaded 15 times over its cores).
RUN_TIMEOUT_S = 60.0

# Starts the runs of these events; returns once they are sent (an engine) or done (the floor).
Starter = Callable[[list[dict[str, Any]]], Awaitable[None]]


def log(message: str) -> None:
    print(f"[peer {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


async def measure(start: Starter, seen: StepsSeen, args: argparse.Namespace) -> Figures:
    async def runs(keys: list[str], timeout: float) -> tuple[float, list[float]]:
        futures = seen.expect(keys)
        began = time.perf_counter()
        starting = asyncio.ensure_future(
            start([{"name": STEPS_EVENT, "data": {"k": k}} for k in keys])
        )
        ended = await ends(futures, timeout, f"{len(keys)} run(s)")
        await starting
        return began, ended

    for i in range(args.warmup):
        await runs([f"warm-{i}"], RUN_TIMEOUT_S)
    gaps: list[float] = []
    first_step: list[float] = []
    for i in range(args.runs):
        key = f"seq-{i}"
        began, _ = await runs([key], RUN_TIMEOUT_S)
        gaps += seen.gaps_ms(key)
        first_step.append((seen.step_starts[key][0] - began) * 1000)
    began, ended = await runs(
        [f"burst-{i}" for i in range(args.burst)], RUN_TIMEOUT_S + 2 * args.burst
    )
    return figures_of(gaps, first_step, args.burst, max(ended) - began)


async def measure_engine(url: str, target: str, args: argparse.Namespace) -> Figures:
    """The app synced with the engine at `url`, its events sent there."""
    seen = StepsSeen()
    client = make_client(url, f"peer-{target}", **app_keys(target, args))
    async with httpx.AsyncClient(timeout=RUN_TIMEOUT_S) as http:

        async def send(events: list[dict[str, Any]]) -> None:
            response = await http.post(f"{url}/e/{EVENT_KEY}", json=events)
            response.raise_for_status()

        with ServedApp(client, [steps_function(client, args.steps, seen)]) as app:
            # The SDK registers itself with the engine before it answers the PUT.
            synced = await http.put(app.url)
            if synced.status_code != 200:
                raise RuntimeError(f"sync of {app.url}: {synced.status_code} {synced.text[:300]}")
            return await measure(send, seen, args)


async def measure_floor(target: str, args: argparse.Namespace) -> Figures:
    seen = StepsSeen()
    app_id = f"peer-{target}"
    # The app never reaches this engine URL: nothing syncs it, nothing is sent.
    client = make_client("http://127.0.0.1:9", app_id, **app_keys(target, args))
    with ServedApp(client, [steps_function(client, args.steps, seen)]) as app:
        floor = FloorClient(
            app.url,
            f"{app_id}-{STEPS_FN}",
            signing_key=args.signing_key if target in SIGNED else None,
            concurrency=args.floor_concurrency,
        )
        try:

            async def start(events: list[dict[str, Any]]) -> None:
                await asyncio.gather(*(floor.run(event) for event in events))

            return await measure(start, seen, args)
        finally:
            await floor.close()


def app_keys(target: str, args: argparse.Namespace) -> dict[str, str]:
    """A signed target's app runs in production mode: it checks every call's signature."""
    return {"signing_key": args.signing_key, "event_key": EVENT_KEY} if target in SIGNED else {}


async def measure_target(target: str, args: argparse.Namespace, logs: Path) -> Figures:
    if target.startswith("floor"):
        return await measure_floor(target, args)
    async with engine(target, args, logs) as running:
        return await measure_engine(running.url, target, args)


class LoadSamples:
    """The 1-minute load average every few seconds while the benchmark runs: other work on
    the machine shows in it."""

    def __init__(self) -> None:
        self.values: list[float] = []

    async def sample(self, every_s: float = 5.0) -> None:
        while True:
            self.values.append(os.getloadavg()[0])
            await asyncio.sleep(every_s)


def figures_table(results: dict[str, Figures]) -> str:
    rows = [
        ("step gap p50 (ms)", "step_gap_p50_ms", "{:.1f}"),
        ("step gap p99 (ms)", "step_gap_p99_ms", "{:.1f}"),
        ("event sent to first step p50 (ms)", "first_step_p50_ms", "{:.1f}"),
        ("burst runs/s", "burst_runs_per_s", "{:.1f}"),
    ]
    lines = [
        "| figure | " + " | ".join(results) + " |",
        "|---|" + "---|" * len(results),
    ]
    for name, field, fmt in rows:
        cells = [fmt.format(getattr(figures, field)) for figures in results.values()]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def comparison_table(comparisons: dict[str, Comparison]) -> str:
    rows = [
        ("step gap p50, headrace / peer", "gap_p50_ratio", "{:.2f}"),
        ("first step p50, headrace / peer", "first_step_ratio", "{:.2f}"),
        ("burst runs/s, headrace / peer", "throughput_ratio", "{:.2f}"),
        ("headrace runs/s, % of the floor", "headrace_percent_of_floor", "{:.0f} %"),
        ("peer runs/s, % of the floor", "peer_percent_of_floor", "{:.0f} %"),
        ("headrace step gap p50 over the floor's (ms)", "headrace_gap_over_floor_ms", "{:.1f}"),
        ("peer step gap p50 over the floor's (ms)", "peer_gap_over_floor_ms", "{:.1f}"),
    ]
    heads = [f"{mode} ({' vs '.join(MODES[mode][:2])})" for mode in comparisons]
    lines = ["| comparison | " + " | ".join(heads) + " |", "|---|" + "---|" * len(heads)]
    for name, field, fmt in rows:
        cells = [fmt.format(getattr(c, field)) for c in comparisons.values()]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def versions(args: argparse.Namespace) -> str:
    """headrace's commit and Inngest's version, for the table's heading."""
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    if not args.inngest_bin.is_file():
        return f"{commit or '?'}; no Inngest"
    inngest = subprocess.run(
        [str(args.inngest_bin), "version"], capture_output=True, text=True
    ).stdout.split()
    return f"{commit or '?'}; inngest {inngest[-1] if inngest else '?'}"


def chosen_targets(args: argparse.Namespace) -> list[str]:
    targets = [t for t in args.targets.split(",") if t]
    unknown = sorted(set(targets) - set(TARGETS))
    if unknown:
        raise SystemExit(f"unknown targets {unknown}; known: {', '.join(TARGETS)}")
    if not args.inngest_bin.is_file():
        skipped = [t for t in targets if t.startswith("inngest")]
        if skipped:
            log(
                f"skipping {', '.join(skipped)}: no Inngest binary at {args.inngest_bin} "
                "(build it as benchmarks/peer_comparison.md says, or give --inngest-bin)"
            )
        targets = [t for t in targets if not t.startswith("inngest")]
    return targets


def add_target_arguments(parser: argparse.ArgumentParser, targets: Sequence[str]) -> None:
    """The options of every command that measures the engines in turn (`--targets`, `--tick`,
    `--inngest-bin`)."""
    parser.add_argument("--targets", default=",".join(targets))
    parser.add_argument("--tick", type=int, default=10, help="Inngest's queue tick (ms)")
    parser.add_argument("--inngest-bin", type=Path, default=INNGEST_BIN)


def parse_target_arguments(parser: argparse.ArgumentParser) -> argparse.Namespace:
    args = parser.parse_args()
    # `inngest start` takes only an even-length hex signing key; headrace takes it too.
    args.signing_key = secrets.token_hex(32)
    return args


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--burst", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument(
        "--rounds", type=int, default=1, help="the targets in turn this many times: medians"
    )
    add_target_arguments(parser, TARGETS)
    parser.add_argument(
        "--floor-concurrency", type=int, default=SERVICE_SETTINGS.executor_concurrency
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parse_target_arguments(parser)
    targets = chosen_targets(args)
    measured = versions(args)  # before the run: the checkout may move meanwhile
    logs = Path(tempfile.mkdtemp(prefix="peer-comparison-"))
    log(f"engines' logs in {logs}")
    load = LoadSamples()
    sampling = asyncio.create_task(load.sample())
    rounds: dict[str, list[Figures]] = {target: [] for target in targets}
    failures: dict[str, str] = {}
    try:
        for round_ in range(1, args.rounds + 1):
            for target in targets:
                log(f"round {round_}: {target} ...")
                # One target that fails must not lose the others' figures, taken in the same run.
                try:
                    rounds[target].append(await measure_target(target, args, logs))
                except Exception as err:
                    failures[f"{target}, round {round_}"] = f"{type(err).__name__}: {err}"
                    log(f"{target} failed: {err!r}")
                    continue
                log(f"{target}: {rounds[target][-1]}")
    finally:
        sampling.cancel()
    results = {target: median_figures(each) for target, each in rounds.items() if each}
    print(
        f"headrace {measured}; {args.runs} runs x {args.steps} steps one at a time, then "
        f"{args.burst} runs at once; {args.rounds} round(s) of the targets in turn, each "
        f"figure the median of its rounds; Inngest --tick {args.tick}; load average (1 min) "
        f"{min(load.values):.1f}-{max(load.values):.1f} during the run\n"
    )
    print(figures_table(results))
    comparisons = {
        mode: compare(results[headrace], results[peer], results[floor])
        for mode, (headrace, peer, floor) in MODES.items()
        if {headrace, peer, floor} <= set(results)
    }
    if comparisons:
        print()
        print(comparison_table(comparisons))
    for target, failure in failures.items():
        print(f"\n{target} failed: {failure}")
    if args.json:
        args.json.write_bytes(
            msgspec.json.encode({"rounds": rounds, "figures": results, "comparisons": comparisons})
        )


if __name__ == "__main__":
    asyncio.run(main())
