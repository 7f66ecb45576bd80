"""The 4.x TypeScript SDK with checkpointing on (its default) and off, in dev mode and in
distributed mode: the same function of trivial steps, the same app, the same engine.

    python benchmarks/ts_checkpointing.py [--runs 20] [--steps 10] [--burst 100] \\
        [--rounds 2] [--modes dev,distributed]

Needs Node 20+ (the app of tests/ts, installed with `npm ci` into ~/.cache/headrace/ts-apps on
first use). Distributed mode uses `headrace infra up` (Kafka and Cassandra on loopback; started
if needed) and runs ingest, two runners, a scheduler and two executors as processes.

- Step gap: `runs` runs of a function of `steps` steps, one run at a time; each step returns
  when its body started, and the gaps between consecutive steps of a run are what one step
  costs: with checkpointing on, the SDK's POST of the step to the engine; off, the 206 answer,
  the memo stored and the engine's next call.
- Throughput: `burst` runs sent at once; runs per second from the send to the last run's end.
Checkpointing on and off alternate, `rounds` times each, on one engine per mode.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import time

from bench_cluster import engine_in

from headrace.testing.dev import EngineHandle
from headrace.testing.ts_app import TsApp


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(
    engine: EngineHandle, checkpointing: str, round_no: int, runs: int, steps: int, burst: int
) -> dict[str, float]:
    app_id = f"bench-ts-{engine.mode}-{checkpointing}-{round_no}"
    event = {"name": f"{app_id}/timed-steps", "data": {"steps": steps}}
    env = {"HEADRACE_TS_CHECKPOINTING": checkpointing}
    with TsApp(engine.url, app_id, ["timed-steps"], major="4", env=env) as app:
        await engine.sync(app.url, app_id)
        gaps: list[float] = []
        for _ in range(runs):
            [event_id] = await engine.send(event)
            run = await engine.finished(await engine.run_of_event(event_id), timeout=60)
            assert run.status == "completed", app.log()
            gaps += [b - a for a, b in itertools.pairwise(run.output)]
        calls = len(app.calls())
        began = time.perf_counter()
        ids = await engine.send(*(event for _ in range(burst)))
        for event_id in ids:
            run = await engine.finished(
                await engine.run_of_event(event_id, timeout=300), timeout=300
            )
            assert run.status == "completed", app.log()
        elapsed = time.perf_counter() - began
    return {
        "step_p50_ms": statistics.median(gaps),
        "step_p99_ms": percentile(gaps, 0.99),
        "runs_per_s": burst / elapsed,
        "calls_per_run": calls / runs,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--burst", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--modes", default="dev,distributed")
    args = parser.parse_args()
    rows: list[tuple[str, str, int, dict[str, float], str]] = []
    for mode in args.modes.split(","):
        async with engine_in(mode, "tsckpt") as engine:
            for round_no in range(1, args.rounds + 1):
                for checkpointing in ("on", "off"):
                    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
                    result = await measure(
                        engine, checkpointing, round_no, args.runs, args.steps, args.burst
                    )
                    rows.append((mode, checkpointing, round_no, result, load))
    print(f"{args.runs} runs x {args.steps} steps one at a time; then {args.burst} runs at once")
    print(
        "| mode | checkpointing | round | step p50 (ms) | step p99 (ms) | runs/s "
        "| calls/run | load before |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for mode, checkpointing, round_no, r, load in rows:
        print(
            f"| {mode} | {checkpointing} | {round_no} | {r['step_p50_ms']:.1f} | "
            f"{r['step_p99_ms']:.1f} | {r['runs_per_s']:.1f} | {r['calls_per_run']:.1f} "
            f"| {load} |"
        )


if __name__ == "__main__":
    asyncio.run(main())
