"""A soak: a steady mixed load on distributed mode for a given time, measured every minute.

    scripts/soak [--duration 60m] [--rate 2] [--warmup 10m] [--out /tmp/soak]

Starts one process per service (ingest, runner, scheduler, executor) on `headrace infra up`'s
Kafka and Cassandra (a keyspace, topics and consumer groups of its own, dropped at the end),
with a short retention (`--retention`, 5 min) so expiry runs during the soak, and serves an
app with the official Python SDK in this process. Each second it sends `--rate` events, in turn
to: steps (three, with a sleep), a step failing once then retried (1 in 10 fail for good), a
wait for an event (offered twice, 3 and 8 s after the trigger), an invoke of a child, and a
function with concurrency 2. Every `--interval` it records each service's RSS and open fds,
the consumer lag per group and the runs from `/metrics`, the p99 of the step handoff latency
seen by the app (from one step's end to the next step's start: a round trip through the
engine), and the soak keyspace's table sizes and largest partitions. Writes soak.json,
soak.csv and soak.png to `--out` and prints the summary.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import dataclasses
import datetime
import json
import math
import os
import shlex
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import httpx
import inngest
import msgspec
from bench_cluster import bench_settings, delete_topics, drop, infra_lease
from soak_plot import plot
from soak_probe import (
    clustered_tables,
    lag_by_group,
    largest_partition_rows,
    open_by_function,
    open_fds,
    rss_mib,
    runs,
    table_bytes,
    tombstones_per_read,
)

from headrace.infra import InfraConfig
from headrace.infra.cassandra import Cassandra, local_cluster
from headrace.testing.cluster import Cluster, start_cluster
from headrace.testing.sdk_app import ServedApp, make_client
from headrace.testing.soak_stats import Series, percentile, render, summarize

COUNTS = {"ingest": 1, "runner": 1, "scheduler": 1, "executor": 1}
KINDS = ("steps", "retry", "wait", "invoke", "limited")
GO_OFFERS_S = (3.0, 8.0)
DRAIN_S = 300.0


def minutes(text: str) -> float:
    """`60m`, `90s`, `1h` or a bare number of minutes."""
    units = {"s": 1 / 60, "m": 1.0, "h": 60.0}
    if text and text[-1] in units:
        return float(text[:-1]) * units[text[-1]]
    return float(text)


class Handoffs:
    """Step handoff latencies (seconds) measured in the app's thread, taken each minute."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: list[float] = []

    def add(self, seconds: float) -> float:
        with self._lock:
            self._values.append(seconds)
        return time.time()

    def take(self) -> list[float]:
        with self._lock:
            values, self._values = self._values, []
        return values


def functions(client: inngest.Inngest, handoffs: Handoffs) -> list[inngest.Function[Any]]:
    def trigger(kind: str) -> inngest.TriggerEvent:
        return inngest.TriggerEvent(event=f"soak/{kind}")

    @client.create_function(fn_id="steps", trigger=trigger("steps"))
    async def steps(ctx: inngest.Context) -> float:
        a = await ctx.step.run("a", time.time)
        b = await ctx.step.run("b", lambda: handoffs.add(time.time() - a))
        await ctx.step.sleep("nap", datetime.timedelta(seconds=2))
        return await ctx.step.run("c", lambda: time.time() - b)

    @client.create_function(fn_id="retry", trigger=trigger("retry"), retries=2)
    async def retry(ctx: inngest.Context) -> str:
        def flaky() -> str:
            if ctx.attempt == 0 or ctx.event.data["n"] // len(KINDS) % 10 == 0:
                raise RuntimeError(f"attempt {ctx.attempt} fails")
            return "ok"

        return await ctx.step.run("flaky", flaky)

    @client.create_function(fn_id="wait", trigger=trigger("wait"))
    async def wait(ctx: inngest.Context) -> bool:
        n = ctx.event.data["n"]
        go = await ctx.step.wait_for_event(
            "go",
            event="soak/go",
            if_exp=f"async.data.n == {n}",
            timeout=datetime.timedelta(seconds=30),
        )
        return go is not None

    @client.create_function(fn_id="child", trigger=trigger("child"))
    async def child(ctx: inngest.Context) -> int:
        return await ctx.step.run("double", lambda: 2 * int(ctx.event.data["n"]))

    @client.create_function(fn_id="invoke", trigger=trigger("invoke"))
    async def invoke(ctx: inngest.Context) -> object:
        return await ctx.step.invoke("call", function=child, data={"n": ctx.event.data["n"]})

    @client.create_function(
        fn_id="limited", trigger=trigger("limited"), concurrency=[inngest.Concurrency(limit=2)]
    )
    async def limited(ctx: inngest.Context) -> str:
        async def work() -> str:
            await asyncio.sleep(0.2)
            return "done"

        return await ctx.step.run("work", work)

    return [steps, retry, wait, child, invoke, limited]


class Load:
    """`rate` events a second, the kinds in turn; each wait's GO offered after it starts."""

    def __init__(self, url: str, rate: float) -> None:
        self.url, self.rate = url, rate
        self.sent = 0
        self.errors = 0
        self._go: deque[tuple[float, int]] = deque()

    async def run(self, until: float) -> None:
        owed = 0.0
        async with httpx.AsyncClient(timeout=30) as http:
            while (now := time.monotonic()) < until:
                owed += self.rate
                events = []
                while owed >= 1:
                    owed -= 1
                    n, kind = self.sent, KINDS[self.sent % len(KINDS)]
                    self.sent += 1
                    events.append({"name": f"soak/{kind}", "data": {"n": n}})
                    if kind == "wait":
                        self._go.extend((now + offer, n) for offer in GO_OFFERS_S)
                while self._go and self._go[0][0] <= now:
                    events.append({"name": "soak/go", "data": {"n": self._go.popleft()[1]}})
                if events:
                    try:
                        response = await http.post(f"{self.url}/e/k", json=events)
                        self.errors += response.status_code != 200
                    except httpx.HTTPError:
                        self.errors += 1
                self._go = deque(sorted(self._go))
                await asyncio.sleep(max(0.0, now + 1 - time.monotonic()))


class Recorder:
    """Every sample of every measure, aligned on `minutes` (a line missing in a sample: NaN)."""

    def __init__(self) -> None:
        self.minutes: list[float] = []
        self.series: Series = {}

    def add(self, minute: float, values: dict[str, dict[str, float]]) -> None:
        self.minutes.append(round(minute, 2))
        for measure, lines in values.items():
            known = self.series.setdefault(measure, {})
            for line in lines:
                known.setdefault(line, [math.nan] * (len(self.minutes) - 1))
        for measure, known in self.series.items():
            for line, points in known.items():
                points.append(values.get(measure, {}).get(line, math.nan))


async def sample(
    cluster: Cluster, handoffs: Handoffs, session: Any, tables: dict[str, list[str]], data: Path
) -> dict[str, dict[str, float]]:
    pids = {p.name: p.process.pid for p in cluster.procs if p.process is not None}
    pids["app+load"] = os.getpid()
    async with httpx.AsyncClient(timeout=30) as http:
        texts = [(await http.get(f"http://127.0.0.1:{p.port}/metrics")).text for p in cluster.procs]
    ks = cluster.settings.cluster.keyspace
    partitions = {}
    for table, key in tables.items():
        partitions[table] = float(
            await asyncio.to_thread(largest_partition_rows, session, ks, table, key)
        )
    latencies = handoffs.take()
    return {
        "rss_mib": {name: rss_mib(pid) for name, pid in pids.items()},
        "fds": {name: float(open_fds(pid)) for name, pid in pids.items()},
        "lag": lag_by_group(texts, cluster.group("")),
        "step_p99_ms": {"app": percentile(latencies, 99) * 1000},
        "runs": runs(texts),
        "table_mib": table_bytes(data, ks),
        "partition_rows": partitions,
        "tombstones": await asyncio.to_thread(tombstones_per_read, session, ks),
    }


def _no_nan(value: Any) -> Any:
    """NaN (not measured) as null: JSON has no NaN."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _no_nan(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_no_nan(v) for v in value]
    return value


def write(out: Path, recorder: Recorder, report: dict[str, Any]) -> None:
    (out / "soak.json").write_text(json.dumps(_no_nan(report), indent=1))
    with (out / "soak.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["minute", "measure", "line", "value"])
        for measure, lines in recorder.series.items():
            for line, values in lines.items():
                for minute, value in zip(recorder.minutes, values, strict=True):
                    writer.writerow([minute, measure, line, value])


async def soak(args: argparse.Namespace) -> None:
    """Set up, soak, report; whatever was set up is taken down, even after a failure."""
    # Every retry a second later: the soak measures the engine, not Inngest's backoff (15 s+).
    settings = dataclasses.replace(bench_settings("soak"), retry_interval_s=1.0)
    config = InfraConfig()
    env = {
        "HEADRACE_RETENTION": str(args.retention),
        "HEADRACE_DEAD_LETTER_RETENTION": str(args.retention),
    }
    logs = Path(tempfile.mkdtemp(prefix="soak-logs-", dir=args.out))
    async with contextlib.AsyncExitStack() as stack:
        stack.enter_context(infra_lease())
        stack.push_async_callback(
            delete_topics, settings.cluster.kafka_bootstrap, settings.cluster.topic_prefix
        )
        stack.callback(drop, settings)
        cluster, engine = await start_cluster(settings, logs, counts=COUNTS, env=env)
        stack.push_async_callback(engine.stop)
        handoffs = Handoffs()
        client = make_client(engine.url, "soak")
        app = ServedApp(client, functions(client, handoffs)).start()
        stack.callback(app.stop)
        await engine.sync(app.url, "soak")
        cassandra = local_cluster(
            settings.cluster.cassandra_hosts[0], settings.cluster.cassandra_port
        )
        stack.callback(cassandra.shutdown)
        session = cassandra.connect()
        data = Cassandra(config).layout.data / "data"
        await measure(args, cluster, Load(engine.url, args.rate), handoffs, session, data)
        print(f"service logs in {logs}")


async def metrics_texts(cluster: Cluster) -> list[str]:
    async with httpx.AsyncClient(timeout=30) as http:
        return [(await http.get(f"http://127.0.0.1:{p.port}/metrics")).text for p in cluster.procs]


async def measure(
    args: argparse.Namespace,
    cluster: Cluster,
    load: Load,
    handoffs: Handoffs,
    session: Any,
    data: Path,
) -> None:
    tables = clustered_tables(session, cluster.settings.cluster.keyspace)
    recorder = Recorder()
    t0 = time.monotonic()
    end = t0 + args.duration * 60
    loading = asyncio.create_task(load.run(end))
    tick = t0
    while tick < end:
        # On a fixed schedule: a slow sample (a busy Cassandra) does not shift the next ones.
        tick = min(tick + args.interval, end)
        await asyncio.sleep(max(0.0, tick - time.monotonic()))
        values = await sample(cluster, handoffs, session, tables, data)
        recorder.add((time.monotonic() - t0) / 60, values)
        print(f"{recorder.minutes[-1]:6.1f} min {json.dumps(values)}", flush=True)
    await loading
    # Let the runs in flight end, so that completed can be compared with started.
    drain_end = time.monotonic() + DRAIN_S
    while True:
        texts = await metrics_texts(cluster)
        totals = runs(texts)
        ended = totals["completed"] + totals["failed"] + totals["cancelled"]
        if totals["started"] == ended or time.monotonic() > drain_end:
            break
        await asyncio.sleep(2)
    summary = summarize(recorder.minutes, recorder.series, args.warmup)
    text = render(summary) + (
        f"\nafter a drain of up to {DRAIN_S:.0f} s: started {totals['started']:.0f}, "
        f"completed {totals['completed']:.0f}, failed {totals['failed']:.0f}, "
        f"cancelled {totals['cancelled']:.0f}; events sent {load.sent}, "
        f"send errors {load.errors}; still open by function: {open_by_function(texts)}; "
        f"load average {os.getloadavg()}"
    )
    print(text, flush=True)
    out: Path = args.out
    (out / "summary.txt").write_text(text + "\n")
    command = "scripts/soak " + shlex.join(sys.argv[1:])
    report = {
        "command": command,
        "minutes": recorder.minutes,
        "series": recorder.series,
        "summary": msgspec.to_builtins(summary),
        "after_drain": totals,
        "open_after_drain": open_by_function(texts),
        "events_sent": load.sent,
        "send_errors": load.errors,
        "load_average": os.getloadavg(),
    }
    write(out, recorder, report)
    title = f"headrace soak: {command} ({args.rate} runs/s, retention {args.retention} s)"
    plot(recorder.minutes, recorder.series, args.warmup, out / "soak.png", title)
    print(f"results in {out}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--duration", type=minutes, default=60.0, help="e.g. 60m, 5m, 1h")
    parser.add_argument("--rate", type=float, default=2.0, help="runs started per second")
    parser.add_argument("--warmup", type=minutes, default=10.0, help="excluded from growth")
    parser.add_argument("--interval", type=float, default=60.0, help="seconds between samples")
    parser.add_argument("--retention", type=int, default=300, help="seconds (runs, dead letters)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/soak"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    asyncio.run(soak(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
