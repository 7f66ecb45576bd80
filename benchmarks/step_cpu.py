"""Where a distributed step's CPU goes (issue 18): the CPU time each process spends while a
burst of runs goes through one ingest, runner, scheduler and executor on the local Kafka and
Cassandra, per step the app ran.

    python benchmarks/step_cpu.py [--burst 200] [--steps 10] [--executor-concurrency N] \
        [--app-concurrency N] [--executors 1] [--partitions 4]

The app is steps_app.py's function of `--steps` trivial `step.run`s (official `inngest` SDK in
production mode, served in this process, so this process's CPU is the app's and the sender's).
Each process's user and system time is read from /proc before and after the burst (after
3 warm-up runs); Kafka and Cassandra are `headrace infra up`'s, shared with anything else that
uses them at the time, so run it on a quiet machine. CPU time, unlike wall time, hardly depends
on what else runs: it says what a step costs each part, and so which part bounds throughput
when they all share a machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import httpx
from bench_cluster import bench_settings, concurrency_env, cpu_s, drop, process_pids
from peer_engines import EVENT_KEY
from steps_app import STEPS_EVENT, StepsSeen, ends, steps_function

from headrace.testing.cluster import start_cluster
from headrace.testing.sdk_app import ServedApp, make_client


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--executor-concurrency", type=int, help="the executor's default if unset")
    parser.add_argument("--app-concurrency", type=int, help="unset: learnt per app")
    parser.add_argument("--executors", type=int, default=1, help="one account's runs spread")
    parser.add_argument("--partitions", type=int, default=4)
    args = parser.parse_args()
    signing_key = secrets.token_hex(32)
    settings = replace(bench_settings("cpu"), partitions=args.partitions)
    logs = Path(tempfile.mkdtemp(prefix="step-cpu-"))
    print(f"services' logs in {logs}", file=sys.stderr, flush=True)
    counts = {"ingest": 1, "runner": 1, "scheduler": 1, "executor": args.executors}
    cluster, engine = await start_cluster(
        settings,
        logs,
        counts=counts,
        env={
            "HEADRACE_SIGNING_KEY": signing_key,
            **concurrency_env(args.executor_concurrency, args.app_concurrency),
        },
    )
    try:
        pids = process_pids(cluster)
        # For a profiler to attach to (e.g. `py-spy record --pid`).
        print(f"pids: {pids}", file=sys.stderr, flush=True)
        seen = StepsSeen()
        client = make_client(engine.url, "cpu-app", signing_key=signing_key)
        async with httpx.AsyncClient(timeout=60) as http:
            with ServedApp(client, [steps_function(client, args.steps, seen)]) as app:
                (await http.put(app.url)).raise_for_status()

                async def burst(keys: list[str]) -> float:
                    futures = seen.expect(keys)
                    began = time.perf_counter()
                    events = [{"name": STEPS_EVENT, "data": {"k": k}} for k in keys]
                    sent = await http.post(f"{engine.url}/e/{EVENT_KEY}", json=events)
                    sent.raise_for_status()
                    await ends(futures, 60 + 2 * len(keys), f"{len(keys)} runs")
                    return time.perf_counter() - began

                await burst([f"warm-{i}" for i in range(3)])
                before = {name: cpu_s(pid) for name, pid in pids.items()}
                wall = await burst([f"b-{i}" for i in range(args.burst)])
                after = {name: cpu_s(pid) for name, pid in pids.items()}
    finally:
        await engine.stop()
        drop(settings)
    steps = args.burst * args.steps
    spent = {name: after[name] - before[name] for name in pids}
    total = sum(spent.values())
    print(
        f"{args.burst} runs x {args.steps} steps in {wall:.1f} s ({args.burst / wall:.1f} runs/s); "
        f"CPU {total:.1f} s in all, {total / wall:.2f} cores busy on average; "
        f"load average {os.getloadavg()[0]:.1f} at the end\n"
    )
    print("| process | CPU (s) | per step (ms) | share |")
    print("|---|---|---|---|")
    for name, seconds in sorted(spent.items(), key=lambda item: -item[1]):
        print(f"| {name} | {seconds:.2f} | {seconds / steps * 1000:.2f} | {seconds / total:.0%} |")
    print(f"| all | {total:.2f} | {total / steps * 1000:.2f} | 100% |")


if __name__ == "__main__":
    asyncio.run(main())
