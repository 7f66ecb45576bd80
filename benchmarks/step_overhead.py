"""Per-step overhead and run throughput, in dev mode and in distributed mode, on the same app
(how the step gap grows along one long run: long_runs.py).

    python benchmarks/step_overhead.py [--runs 20] [--steps 10] [--burst 100] \\
        [--modes dev,distributed]

Distributed mode uses `headrace infra up` (Kafka and Cassandra on loopback; started if needed)
and runs ingest, two runners, a scheduler and two executors as processes.

- Per-step overhead: `runs` runs of a function of `steps` trivial steps, one run at a time. The
  app records when each step body starts; the gaps between consecutive steps of a run are what
  the engine adds per step (a response, the memo stored, the next call) plus the SDK's own work.
- Throughput: `burst` runs of the same function sent at once; runs per second from the send to
  the last run's end.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from bench_cluster import engine_in
from steps_app import STEPS_EVENT, StepsSeen, steps_function

from headrace.testing.dev import EngineHandle
from headrace.testing.sdk_app import ServedApp, make_client
from headrace.testing.soak_stats import percentile


async def measure(engine: EngineHandle, runs: int, steps: int, burst: int) -> dict[str, float]:
    client = make_client(engine.url, f"bench-{engine.mode}")
    seen = StepsSeen()
    with ServedApp(client, [steps_function(client, steps, seen)]) as app:
        await engine.sync(app.url, f"bench-{engine.mode}")
        gaps: list[float] = []
        for k in range(runs):
            [event_id] = await engine.send({"name": STEPS_EVENT, "data": {"k": k}})
            await engine.finished(await engine.run_of_event(event_id), timeout=60)
            gaps += seen.gaps_ms(str(k))
        began = time.perf_counter()
        ids = await engine.send(
            *({"name": STEPS_EVENT, "data": {"k": f"burst-{i}"}} for i in range(burst))
        )
        for event_id in ids:
            await engine.finished(await engine.run_of_event(event_id, timeout=300), timeout=300)
        elapsed = time.perf_counter() - began
    return {
        "step_p50_ms": statistics.median(gaps),
        "step_p99_ms": percentile(gaps, 99),
        "runs_per_s": burst / elapsed,
        "steps_per_s": burst * steps / elapsed,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--burst", type=int, default=100)
    parser.add_argument("--modes", default="dev,distributed")
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    for mode in args.modes.split(","):
        async with engine_in(mode, "steps") as engine:
            results[mode] = await measure(engine, args.runs, args.steps, args.burst)
    print(f"{args.runs} runs x {args.steps} steps one at a time; then {args.burst} runs at once")
    print("| mode | step p50 (ms) | step p99 (ms) | runs/s | steps/s |")
    print("|---|---|---|---|---|")
    for mode, r in results.items():
        print(
            f"| {mode} | {r['step_p50_ms']:.1f} | {r['step_p99_ms']:.1f} | "
            f"{r['runs_per_s']:.1f} | {r['steps_per_s']:.0f} |"
        )


if __name__ == "__main__":
    asyncio.run(main())
