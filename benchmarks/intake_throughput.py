"""Events forwarded per second by one ingest process, from the Kafka intake topic to `events`,
validation and id assignment included.

    python benchmarks/intake_throughput.py [--events 100000] [--per-record 1]

Uses `headrace infra up` (Kafka and Cassandra on loopback; started if needed). The events are
produced into the intake topic first, with no ingest running; then one ingest starts, and the
clock runs from its first forwarded event to its last, read from its `/metrics`
(`headrace_intake_events_total`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

import httpx
from aiokafka import AIOKafkaProducer
from bench_cluster import bench_settings, drop

from headrace.testing.cluster import Cluster
from headrace.testing.metrics import samples

SAMPLE_S = 0.25


async def produce(bootstrap: str, topic: str, events: int, per_record: int) -> float:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, acks=1)
    await producer.start()
    started = time.monotonic()
    try:
        pending = []
        for first in range(0, events, per_record):
            batch = [
                {"name": "bench/intake", "data": {"n": n, "note": "x" * 64}}
                for n in range(first, min(first + per_record, events))
            ]
            value = json.dumps(batch if per_record > 1 else batch[0]).encode()
            pending.append(await producer.send(topic, value, headers=[("event-key", b"k")]))
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return time.monotonic() - started


async def forwarded(url: str, topic: str) -> float:
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"{url}/metrics")).text
    return sum(
        value
        for labels, value in samples(text, "headrace_intake_events_total")
        if labels.get("topic") == topic
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--per-record", type=int, default=1)
    parser.add_argument("--logs", type=Path, help="keep the ingest's log here (default: discarded)")
    args = parser.parse_args()
    settings = bench_settings("intake")
    topic = f"{settings.cluster.topic_prefix}intake"
    with tempfile.TemporaryDirectory() as tmp:
        logs = args.logs or Path(tmp)
        cluster = Cluster(settings, logs, counts={}, env={"HEADRACE_EVENT_KEYS": "k=acct"})
        try:
            await cluster.start()  # migrates; starts no service yet
            produce_s = await produce(
                settings.cluster.kafka_bootstrap, topic, args.events, args.per_record
            )
            ingest = await cluster.add("ingest")
            url = f"http://127.0.0.1:{ingest.port}"
            progress: list[tuple[float, float]] = []  # (seconds, events forwarded so far)
            while not progress or progress[-1][1] < args.events:
                done = await forwarded(url, topic)
                if done > 0:
                    progress.append((time.monotonic(), done))
                await asyncio.sleep(SAMPLE_S)
        finally:
            await cluster.stop()
            drop(settings)
    (first_at, first_count), (last_at, _) = progress[0], progress[-1]
    rate = (args.events - first_count) / (last_at - first_at)
    # Rates over whole seconds of the run, to show how steady it is.
    per_second = [
        (later[1] - earlier[1]) / (later[0] - earlier[0])
        for earlier, later in zip(progress, progress[int(1 / SAMPLE_S) :], strict=False)
    ][:: int(1 / SAMPLE_S)]
    spread = ""
    if per_second:
        per_second.sort()
        spread = (
            f" (per second: min {per_second[0]:,.0f}, "
            f"p50 {per_second[len(per_second) // 2]:,.0f}, max {per_second[-1]:,.0f})"
        )
    print(
        f"{args.events} events, {args.per_record} per record: produced in {produce_s:.1f} s; "
        f"one ingest forwarded {rate:,.0f} events/s{spread}"
    )


if __name__ == "__main__":
    asyncio.run(main())
