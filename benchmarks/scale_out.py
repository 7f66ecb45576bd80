"""One account's runs over 8 partitions and 2 of each service, against 1 partition and the same
services (issue 18, "Show 6"): how each topic's records spread over its partitions, and how much
sooner a burst of runs whose steps wait on I/O ends.

    python benchmarks/scale_out.py [--runs 500] [--steps 10] [--wait-ms 50] [--functions 4] \\
        [--partitions 8] [--replicas 2] [--rounds 1] [--idle 10] [--app-concurrency N] \\
        [--executor-concurrency N] [--json PATH]

Each configuration, in turn in each round: (a) `--partitions` partitions, (b) 1 partition, both
with `--replicas` processes of each service (ingest, runner, scheduler, executor) on the local
Kafka and Cassandra (`headrace infra up`, started if needed; a lease on it is held meanwhile),
each on a fresh keyspace and topics (dropped and deleted afterwards). The app, served in this
process with the official Python `inngest` SDK in production mode (signed), has `--functions`
functions of `--steps` `step.run`s whose async bodies each `await asyncio.sleep(wait)`: the
step holds no thread while it waits, so the app takes many calls at once. One account sends
`--runs` events (one request, a JSON array), spread over the functions in turn, after 2
warm-up runs of each function and `--idle` seconds with nothing sent (CPU measured: what the
configuration costs doing nothing); the wall time runs from the send until the app has run the last
run's last line.

Per configuration it reports the runs per second, how many calls the app had in progress
(mean: the calls' summed time over the wall time; peak) and how long a call took there, the
time between the starts of a run's consecutive steps (the wait plus the engine's round trip), the
CPU time of each process (`/proc`), each topic's records per partition written during the burst
(end offsets after it minus before, the topics under the configuration's prefix), and
Cassandra's local reads, writes and scans per table (`system_views.local_*_latency`). The
topics' keys (docs/architecture.md, "Topics and their keys"): `events` by account, so one
account's events are on one partition by design; `schedule` by the run's flow key, here the
function (no limit is shared), so it uses at most `--functions` partitions; `work` by run, so
over all. The load average is printed: on a shared machine wall times follow it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from bench_cluster import (
    bench_settings,
    concurrency_env,
    cpu_s,
    delete_topics,
    drop,
    infra_lease,
    process_pids,
)
from peer_engines import EVENT_KEY
from steps_app import STEPS_EVENT, STEPS_FN, StepsSeen, ends, steps_function

from headrace.infra.cassandra import local_cluster
from headrace.runtime.settings import Settings
from headrace.testing.cluster import start_cluster
from headrace.testing.sdk_app import ServedApp, make_client
from headrace.testing.soak_stats import percentile

SERVICES = ("ingest", "runner", "scheduler", "executor")
WARMUP_PER_FUNCTION = 2
KINDS = ("read", "write", "scan")


class AppCalls:
    """When each call of a function arrived at the app and when it was answered, in the app's
    thread (`ServedApp`'s `on_answered`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: list[tuple[float, float]] = []

    def answered(self, arrived: float, answered: float) -> None:
        with self._lock:
            self.calls.append((arrived, answered))

    def between(self, began: float, ended: float) -> dict[str, float]:
        """The calls that arrived in [began, ended]: how many, their time at the app, and how
        many were in progress at once (mean over the interval, and peak)."""
        with self._lock:
            calls = [(a, b) for a, b in self.calls if began <= a <= ended]
        took = [(b - a) * 1000 for a, b in calls]
        edges = sorted([(a, 1) for a, _ in calls] + [(b, -1) for _, b in calls])
        peak = now = 0
        for _, step in edges:
            now += step
            peak = max(peak, now)
        return {
            "calls": len(calls),
            "call_p50_ms": statistics.median(took) if took else 0.0,
            "call_p99_ms": percentile(took, 99) if took else 0.0,
            "in_flight_mean": sum(took) / 1000 / (ended - began),
            "in_flight_peak": peak,
        }


@dataclass
class Result:
    name: str
    partitions: int
    round: int
    wall_s: float = 0.0
    send_s: float = 0.0
    runs_per_s: float = 0.0
    load_before: float = 0.0
    load_after: float = 0.0
    app: dict[str, float] = field(default_factory=dict)
    # Between the starts of a run's consecutive steps: the wait plus the engine's round trip.
    step_gap_ms: dict[str, float] = field(default_factory=dict)
    cpu_s: dict[str, float] = field(default_factory=dict)
    # Over `--idle` seconds with nothing sent, before the burst.
    idle_cpu_s: dict[str, float] = field(default_factory=dict)
    # Topic (without the prefix) -> records written per partition during the burst.
    records: dict[str, list[int]] = field(default_factory=dict)
    # Cassandra table -> its local reads, writes and scans during the burst (and 2 s after).
    table_ops: dict[str, dict[str, int]] = field(default_factory=dict)


async def end_offsets(settings: Settings) -> dict[str, list[int]]:
    """Each of the configuration's topics' end offset per partition (no transactions are used,
    so an offset is a record)."""
    prefix = settings.cluster.topic_prefix
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.cluster.kafka_bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        topics = sorted(t for t in await consumer.topics() if t.startswith(prefix))
        # Every topic has the settings' partitions (messages/topics.py).
        tps = [TopicPartition(topic, p) for topic in topics for p in range(settings.partitions)]
        ends_by_tp = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    offsets: dict[str, list[int]] = {t.removeprefix(prefix): [] for t in topics}
    for tp in tps:
        offsets[tp.topic.removeprefix(prefix)].append(ends_by_tp[tp])
    return offsets


def table_ops(settings: Settings) -> dict[str, dict[str, int]]:
    """Cassandra's local reads, writes and range scans so far of each table of the
    configuration's keyspace, and of `system.paxos` (the lightweight transactions' rounds; that
    one is shared with whatever else uses the node)."""
    cluster = local_cluster(settings.cluster.cassandra_hosts[0], settings.cluster.cassandra_port)
    try:
        session = cluster.connect()
        ops: dict[str, dict[str, int]] = {}
        for kind in KINDS:
            query = (
                f"SELECT keyspace_name, table_name, count FROM system_views.local_{kind}_latency"
            )
            for row in session.execute(query):
                if row.keyspace_name == settings.cluster.keyspace:
                    ops.setdefault(row.table_name, {})[kind] = row.count
                elif (row.keyspace_name, row.table_name) == ("system", "paxos"):
                    ops.setdefault("system.paxos", {})[kind] = row.count
        return ops
    finally:
        cluster.shutdown()


def function_event(i: int) -> tuple[str, str]:
    """The id and trigger of the benchmark's function number i."""
    return f"{STEPS_FN}-{i}", f"{STEPS_EVENT}-{i}"


async def one_configuration(
    args: argparse.Namespace, name: str, partitions: int, round_: int
) -> Result:
    result = Result(name, partitions, round_)
    signing_key = secrets.token_hex(32)
    settings = replace(bench_settings(f"scale{partitions}"), partitions=partitions)
    logs = Path(tempfile.mkdtemp(prefix=f"scale-out-{partitions}-"))
    print(f"{name}: services' logs in {logs}", file=sys.stderr, flush=True)
    env = {
        "HEADRACE_SIGNING_KEY": signing_key,
        **concurrency_env(args.executor_concurrency, args.app_concurrency),
    }
    try:
        cluster, engine = await start_cluster(
            settings, logs, counts=dict.fromkeys(SERVICES, args.replicas), env=env
        )
        try:
            pids = process_pids(cluster)
            seen, calls = StepsSeen(), AppCalls()
            client = make_client(engine.url, f"scale-{partitions}", signing_key=signing_key)
            functions = [
                steps_function(
                    client, args.steps, seen, wait_s=args.wait_ms / 1000, fn_id=fn_id, event=event
                )
                for fn_id, event in map(function_event, range(args.functions))
            ]
            async with httpx.AsyncClient(timeout=120) as http:
                with ServedApp(client, functions, on_answered=calls.answered) as app:
                    (await http.put(app.url)).raise_for_status()

                    async def burst(keys: list[str]) -> tuple[float, float, float]:
                        """Send one event per key (function by function in turn); the send's
                        start, its answer, and the last run's end."""
                        futures = seen.expect(keys)
                        events = [
                            {"name": function_event(i % args.functions)[1], "data": {"k": k}}
                            for i, k in enumerate(keys)
                        ]
                        began = time.perf_counter()
                        sent = await http.post(f"{engine.url}/e/{EVENT_KEY}", json=events)
                        sent.raise_for_status()
                        answered = time.perf_counter()
                        ended = await ends(futures, 60 + 2 * len(keys), f"{name}: {len(keys)}")
                        return began, answered, max(ended)

                    warmup = WARMUP_PER_FUNCTION * args.functions
                    await burst([f"warm-{i}" for i in range(warmup)])
                    idle_before = {n: cpu_s(pid) for n, pid in pids.items()}
                    await asyncio.sleep(args.idle)
                    result.idle_cpu_s = {n: cpu_s(pid) - idle_before[n] for n, pid in pids.items()}
                    result.load_before = os.getloadavg()[0]
                    offsets_before = await end_offsets(settings)
                    ops_before = await asyncio.to_thread(table_ops, settings)
                    cpu_before = {n: cpu_s(pid) for n, pid in pids.items()}
                    began, answered, ended = await burst([f"b-{i}" for i in range(args.runs)])
                    cpu_after = {n: cpu_s(pid) for n, pid in pids.items()}
                    result.load_after = os.getloadavg()[0]
                    # The records that follow a run's end (its lease released, history).
                    await asyncio.sleep(2)
                    offsets_after = await end_offsets(settings)
                    ops_after = await asyncio.to_thread(table_ops, settings)
        finally:
            await engine.stop()
    finally:
        drop(settings)
        await delete_topics(settings.cluster.kafka_bootstrap, settings.cluster.topic_prefix)
    result.table_ops = {
        table: {k: n - ops_before.get(table, {}).get(k, 0) for k, n in kinds.items()}
        for table, kinds in ops_after.items()
    }
    result.wall_s = ended - began
    result.send_s = answered - began
    result.runs_per_s = args.runs / result.wall_s
    gaps = [gap for i in range(args.runs) for gap in seen.gaps_ms(f"b-{i}")]
    result.step_gap_ms = {"p50": statistics.median(gaps), "p99": percentile(gaps, 99)}
    result.app = calls.between(began, ended)
    result.cpu_s = {n: cpu_after[n] - cpu_before[n] for n in pids}
    result.records = {
        topic: [
            b - a for a, b in zip(offsets_before.get(topic, [0] * len(after)), after, strict=True)
        ]
        for topic, after in offsets_after.items()
    }
    return result


def report(args: argparse.Namespace, results: list[Result]) -> None:
    print(
        f"\n{args.runs} runs of {args.steps} steps waiting {args.wait_ms} ms each, "
        f"one account, {args.functions} function(s), {args.replicas} of each service"
        + (f", --app-concurrency {args.app_concurrency}" if args.app_concurrency else "")
        + (
            f", --executor-concurrency {args.executor_concurrency}"
            if args.executor_concurrency
            else ""
        )
        + "\n"
    )
    print(
        "| round | configuration | wall (s) | runs/s | send (s) | app calls in flight, mean / "
        "peak | app call p50 / p99 (ms) | step gap p50 / p99 (ms) | CPU, all (s) | "
        "cores busy, burst / idle | load avg before / after |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r.round} | {r.name} | {r.wall_s:.1f} | {r.runs_per_s:.1f} | {r.send_s:.2f} | "
            f"{r.app['in_flight_mean']:.1f} / {r.app['in_flight_peak']:.0f} | "
            f"{r.app['call_p50_ms']:.0f} / {r.app['call_p99_ms']:.0f} | "
            f"{r.step_gap_ms['p50']:.0f} / {r.step_gap_ms['p99']:.0f} | "
            f"{sum(r.cpu_s.values()):.1f} | {sum(r.cpu_s.values()) / r.wall_s:.2f} / "
            f"{sum(r.idle_cpu_s.values()) / args.idle:.2f} | "
            f"{r.load_before:.1f} / {r.load_after:.1f} |"
        )
    for round_ in sorted({r.round for r in results}):
        pair = [r for r in results if r.round == round_]
        if len(pair) == 2:
            print(
                f"\nround {round_}: runs/s {pair[0].name} / {pair[1].name} = "
                f"{pair[0].runs_per_s / pair[1].runs_per_s:.2f}"
            )
    print("\nRecords written during the burst, per partition:\n")
    print("| round | configuration | topic | records per partition | partitions used |")
    print("|---|---|---|---|---|")
    for r in results:
        for topic, counts in r.records.items():
            used = sum(1 for c in counts if c)
            print(
                f"| {r.round} | {r.name} | {topic} | {' '.join(map(str, counts))} | "
                f"{used} of {len(counts)} |"
            )
    print("\nCassandra's local reads / writes / range scans per run, by table, during the burst:\n")
    tables = sorted({t for r in results for t, kinds in r.table_ops.items() if any(kinds.values())})
    print("| table | " + " | ".join(f"{r.round}: {r.name}" for r in results) + " |")
    print("|---|" + "---|" * len(results))
    for t in tables:
        cells = []
        for r in results:
            kinds = r.table_ops.get(t, {})
            cells.append(" / ".join(f"{kinds.get(k, 0) / args.runs:.1f}" for k in KINDS))
        print(f"| {t} | {' | '.join(cells)} |")
    print(f"\nCPU seconds per process during the burst (and in {args.idle:g} s idle before it):\n")
    names = sorted({n for r in results for n in r.cpu_s}, key=lambda n: (n.split(" ")[0], n))
    print("| process | " + " | ".join(f"{r.round}: {r.name}" for r in results) + " |")
    print("|---|" + "---|" * len(results))
    for n in names:
        cells = " | ".join(
            f"{r.cpu_s[n]:.1f} ({r.idle_cpu_s[n]:.1f})" if n in r.cpu_s else "" for r in results
        )
        print(f"| {n} | {cells} |")


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--wait-ms", type=float, default=50.0, help="each step's I/O wait")
    parser.add_argument("--functions", type=int, default=4, help="the runs spread over them")
    parser.add_argument("--partitions", type=int, default=8, help="configuration (a)")
    parser.add_argument("--replicas", type=int, default=2, help="of each service, both")
    parser.add_argument("--rounds", type=int, default=1, help="(a) then (b), this many times")
    parser.add_argument("--executor-concurrency", type=int, help="the executor's default if unset")
    parser.add_argument("--app-concurrency", type=int, help="unset: learnt per app")
    parser.add_argument("--idle", type=float, default=10.0, help="s measured idle, before")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} at the start", file=sys.stderr, flush=True)
    configurations = [
        (f"(a) {args.partitions} partitions", args.partitions),
        ("(b) 1 partition", 1),
    ]
    results = []
    with infra_lease():
        for round_ in range(1, args.rounds + 1):
            for name, partitions in configurations:
                result = await one_configuration(args, name, partitions, round_)
                print(
                    f"{name}: {result.runs_per_s:.1f} runs/s, load {result.load_after:.1f}",
                    file=sys.stderr,
                    flush=True,
                )
                results.append(result)
    report(args, results)
    if args.json:
        out: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}}
        out["results"] = [vars(r) for r in results]
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
