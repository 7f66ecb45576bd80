"""How late sleeps wake, with many runs asleep at once (issue 18, Show 5), on every engine the
peer comparison starts.

    python benchmarks/sleep_lateness.py [--runs 1000] [--lead 60] [--spread 60] \\
        [--targets headrace-dev,headrace-distributed,inngest-dev,inngest-start] [--tick 10]

Each run of the app's function (official `inngest` SDK, served in this process) marks that it
reached its sleep, sleeps until the time its event names (`step.sleep_until`, milliseconds),
and then runs one step whose body notes the wall clock. The runs' wake times are spread evenly
over `--spread` seconds, starting `--lead` seconds after the events are sent, so that every run
is asleep before the first wakes (the command says how many were) and the app is asked for at
most runs/spread calls a second. A run's lateness is when its step after the sleep began, at
the app, less the time it asked to wake: the engine's timer, its queue and one call to the app.
A negative lateness is a sleep that woke early: on headrace it fails the command (Inngest's are
counted and shown).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import inngest
from peer_comparison import (
    LoadSamples,
    add_target_arguments,
    app_keys,
    chosen_targets,
    log,
    parse_target_arguments,
    versions,
)
from peer_engines import EVENT_KEY, engine
from prometheus_client.parser import text_string_to_metric_families

from headrace.testing.sdk_app import ServedApp, make_client
from headrace.testing.soak_stats import percentile

TARGETS = ("headrace-dev", "headrace-distributed", "inngest-dev", "inngest-start")
SLEEP_EVENT = "bench/sleep"


class Wakes:
    """What the app saw, from its own thread: runs that reached their sleep, and when each
    one's step after the sleep began (the first time: a step run again is not a later wake)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.asleep: set[str] = set()
        self.woke_ms: dict[str, float] = {}

    def reached(self, key: str) -> None:
        with self._lock:
            self.asleep.add(key)

    def woke(self, key: str) -> None:
        now_ms = time.time() * 1000
        with self._lock:
            self.woke_ms.setdefault(key, now_ms)


def sleeper_function(client: inngest.Inngest, wakes: Wakes) -> inngest.Function[Any]:
    @client.create_function(fn_id="sleeper", trigger=inngest.TriggerEvent(event=SLEEP_EVENT))
    async def sleeper(ctx: inngest.Context) -> None:
        key = str(ctx.event.data["k"])
        wakes.reached(key)
        until = datetime.datetime.fromtimestamp(ctx.event.data["wake_ms"] / 1000, datetime.UTC)
        await ctx.step.sleep_until("nap", until)
        await ctx.step.run("woke", lambda: wakes.woke(key))

    return sleeper


async def measure(url: str, target: str, args: argparse.Namespace) -> dict[str, Any]:
    wakes = Wakes()
    client = make_client(url, f"sleep-{target}", **app_keys(target, args))
    async with httpx.AsyncClient(timeout=60) as http:
        with ServedApp(client, [sleeper_function(client, wakes)]) as app:
            synced = await http.put(app.url)
            if synced.status_code != 200:
                raise RuntimeError(f"sync of {app.url}: {synced.status_code} {synced.text[:300]}")
            first_ms = time.time() * 1000 + args.lead * 1000
            step_ms = args.spread * 1000 / args.runs
            wake_at = {f"r{i}": round(first_ms + i * step_ms) for i in range(args.runs)}
            events = [
                {"name": SLEEP_EVENT, "data": {"k": key, "wake_ms": at}}
                for key, at in wake_at.items()
            ]
            for chunk in range(0, len(events), 500):
                sent = await http.post(f"{url}/e/{EVENT_KEY}", json=events[chunk : chunk + 500])
                sent.raise_for_status()
            await asyncio.sleep(max(0.0, first_ms / 1000 - time.time()))
            asleep_at_first_wake = len(wakes.asleep)
            deadline = time.monotonic() + args.lead + args.spread + 120
            while len(wakes.woke_ms) < args.runs and time.monotonic() < deadline:
                await asyncio.sleep(0.5)
    late = [wakes.woke_ms[key] - wake_at[key] for key in wakes.woke_ms]
    return {
        "runs": args.runs,
        "asleep_at_first_wake": asleep_at_first_wake,
        "woke": len(late),
        "early": sum(1 for ms in late if ms < 0),
        "min_ms": round(min(late), 1) if late else None,
        "p50_ms": round(statistics.median(late), 1) if late else None,
        "p99_ms": round(percentile(late, 99), 1) if late else None,
        "max_ms": round(max(late), 1) if late else None,
    }


async def full_collections(metrics: dict[str, str]) -> str:
    """Per headrace process, the full passes of Python's cycle collector in its life
    (`headrace_gc_pause_seconds`, generation 2): how many, their total, the longest's bucket."""
    found = []
    async with httpx.AsyncClient(timeout=10) as http:
        for name, url in sorted(metrics.items()):
            answer = await http.get(url)
            if answer.status_code != 200:
                continue  # the ingest's asks for the dashboard token where keys are set
            full = [
                sample
                for family in text_string_to_metric_families(answer.text)
                if family.name == "headrace_gc_pause_seconds"
                for sample in family.samples
                if sample.labels.get("generation") == "2"
            ]
            count = next((s.value for s in full if s.name.endswith("_count")), 0.0)
            total = next((s.value for s in full if s.name.endswith("_sum")), 0.0)
            bounds = [
                s.labels["le"] for s in full if s.name.endswith("_bucket") and s.value >= count
            ]
            longest = min(bounds, key=float) if count and bounds else "0"
            found.append(
                f"{name.split(':')[0]} {count:.0f} in {total * 1000:.0f} ms (<= {longest} s)"
            )
    return "; ".join(found)


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--lead", type=float, default=60.0, help="s from the send to 1st wake")
    parser.add_argument("--spread", type=float, default=60.0, help="s over which runs wake")
    add_target_arguments(parser, TARGETS)
    args = parse_target_arguments(parser)
    measured = versions(args)
    logs = Path(tempfile.mkdtemp(prefix="sleep-lateness-"))
    log(f"engines' logs in {logs}")
    load = LoadSamples()
    sampling = asyncio.create_task(load.sample())
    results: dict[str, dict[str, Any]] = {}
    try:
        for target in chosen_targets(args):
            log(f"{target} ...")
            try:
                async with engine(target, args, logs) as running:
                    results[target] = await measure(running.url, target, args)
                    results[target]["gc_full"] = await full_collections(running.metrics)
            except Exception as err:
                log(f"{target} failed: {err!r}")
                continue
            log(f"{target}: {results[target]}")
    finally:
        sampling.cancel()
    print(
        f"headrace {measured}; {args.runs} runs asleep, waking evenly over {args.spread:g} s "
        f"from {args.lead:g} s after the send; Inngest --tick {args.tick}; load average "
        f"(1 min) {min(load.values):.1f}-{max(load.values):.1f} during the run\n"
    )
    columns = [
        *("asleep_at_first_wake", "woke", "early", "min_ms", "p50_ms", "p99_ms", "max_ms"),
        "gc_full",
    ]
    print("| target | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for target, row in results.items():
        print(f"| {target} | " + " | ".join(str(row[c]) for c in columns) + " |")
    ours = [row for target, row in results.items() if target.startswith("headrace")]
    if any(row["early"] or row["woke"] < row["runs"] for row in ours):
        sys.exit("a sleep on headrace woke early or never woke")


if __name__ == "__main__":
    asyncio.run(main())
