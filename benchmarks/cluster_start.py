"""Measure what every test cluster pays to start: `headrace migrate` on a fresh keyspace, then
the six service processes (an ingest, two runners, a scheduler, two executors) from spawning
until each answers `/ready`, as `headrace.testing.cluster` starts them.

CPU seconds are the processes' own (user + system, from `/proc/<pid>/stat` at ready, and the
migrate child's rusage): on a shared 2-core machine the wall times follow the load, the CPU
much less. Needs a running Kafka and Cassandra:

    python benchmarks/cluster_start.py --kafka 127.0.0.1:29092 --cassandra 127.0.0.1:29042 \
        [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from bench_cluster import cpu_s

from headrace.infra.cassandra import drop_keyspace, local_cluster
from headrace.runtime.settings import Settings
from headrace.testing.cluster import Cluster, ServiceProc, cluster_test_settings
from headrace.testing.sdk_app import free_port


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def one_start(settings: Settings) -> dict[str, float]:
    cluster = Cluster(settings, Path(tempfile.mkdtemp(prefix="cluster-start-")))
    cluster.log_dir.mkdir(parents=True, exist_ok=True)
    cpu_before, began = children_cpu_s(), time.monotonic()
    cluster.migrate()
    result = {"migrate_s": time.monotonic() - began, "migrate_cpu_s": children_cpu_s() - cpu_before}
    return result | asyncio.run(start_services(cluster))


async def start_services(cluster: Cluster) -> dict[str, float]:
    spawned = time.monotonic()
    for name, count in cluster.counts.items():
        for _ in range(count):
            proc = ServiceProc(name, free_port())
            cluster.procs.append(proc)
            cluster.spawn(proc)

    async def ready(proc: ServiceProc) -> tuple[float, float]:
        await cluster.wait_ready(proc)
        assert proc.process is not None
        return time.monotonic() - spawned, cpu_s(proc.process.pid)

    try:
        readies = await asyncio.gather(*(ready(proc) for proc in cluster.procs))
    finally:
        await cluster.stop()
    return {
        "services_ready_s": max(wall for wall, _ in readies),
        "services_cpu_s": sum(cpu for _, cpu in readies),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kafka", required=True)
    parser.add_argument("--cassandra", required=True, help="host:port")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    host, port = args.cassandra.split(":")
    admin = local_cluster(host, int(port))
    session = admin.connect()
    runs = []
    try:
        for _ in range(args.repeats):
            name = "cs_" + uuid.uuid4().hex[:12]
            settings = cluster_test_settings(
                args.kafka, (host, int(port)), keyspace=name, partitions=4
            )
            try:
                runs.append(one_start(settings))
            finally:
                drop_keyspace(session, name)
    finally:
        admin.shutdown()
    load = os.getloadavg()[0]
    print(f"{args.repeats} starts, load average {load:.1f} at the end")
    for key in runs[0]:
        values = sorted(run[key] for run in runs)
        print(
            f"{key}: median {statistics.median(values):.2f} ({values[0]:.2f} to {values[-1]:.2f})"
        )


if __name__ == "__main__":
    main()
