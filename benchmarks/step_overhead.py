"""Per-step overhead and run throughput, in dev mode and in distributed mode, on the same app;
or, with `--growth`, how the step gap grows along one long run.

    python benchmarks/step_overhead.py [--runs 20] [--steps 10] [--burst 100] \\
        [--modes dev,distributed]
    python benchmarks/step_overhead.py --growth 1000x16,20x1048576 [--runs 1] [--modes dev]

Distributed mode uses `headrace infra up` (Kafka and Cassandra on loopback; started if needed)
and runs ingest, two runners, a scheduler and two executors as processes.

- Per-step overhead: `runs` runs of a function of `steps` trivial steps, one run at a time. The
  app records when each step body starts; the gaps between consecutive steps of a run are what
  the engine adds per step (a response, the memo stored, the next call) plus the SDK's own work.
- Throughput: `burst` runs of the same function sent at once; runs per second from the send to
  the last run's end.
- Growth (`--growth STEPSxBYTES,...`): `runs` runs, one at a time, of `STEPS` steps each
  returning a string of `BYTES` bytes, after a short warm-up run; the median step gap of the
  runs' last tenths (at least two gaps each) against their first tenths (each call
  carries every memo so far, as the protocol wants; what the engine adds besides should not
  grow with the run).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import math
import statistics
import time
from collections.abc import Iterator
from typing import Any

import inngest
from bench_cluster import engine_in
from steps_app import STEPS_EVENT, StepsSeen, steps_function

from headrace.protocol.driver import AppDriver
from headrace.protocol.ops import Outcome
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


@contextlib.contextmanager
def calls_timed(
    engine: EngineHandle, calls: dict[str, list[tuple[float, float]]]
) -> Iterator[None]:
    """In dev mode (the engine in this process), when each call of a run to the app began and
    ended: between the end of one and the start of the next is the engine's own part of a step
    (storing the outcome, the records to the next call, building its body), apart from the
    SDK's. Distributed mode's engine is out of reach: nothing is recorded."""
    if engine.mode != "dev":
        yield
        return
    original = AppDriver.call

    async def call(
        self: AppDriver, url: str, body: bytes, headers: dict[str, str], **kw: Any
    ) -> Outcome:
        began = time.perf_counter()
        try:
            return await original(self, url, body, headers, **kw)
        finally:
            calls.setdefault(headers.get("x-run-id", ""), []).append((began, time.perf_counter()))

    AppDriver.call = call
    try:
        yield
    finally:
        AppDriver.call = original


async def measure_growth(
    engine: EngineHandle, steps: int, output_bytes: int, runs: int
) -> dict[str, float]:
    client = make_client(engine.url, f"bench-growth-{engine.mode}")
    starts: dict[str, list[float]] = {}
    name = f"bench/long-{steps}x{output_bytes}"

    @client.create_function(
        fn_id=f"long-{steps}x{output_bytes}", trigger=inngest.TriggerEvent(event=name)
    )
    async def long_fn(ctx: inngest.Context) -> int:
        async def step() -> str:
            starts.setdefault(ctx.run_id, []).append(time.perf_counter())
            return "x" * output_bytes

        for i in range(steps):
            await ctx.step.run(f"s{i}", step)
        return steps

    @client.create_function(fn_id="warm-up", trigger=inngest.TriggerEvent(event="bench/warm-up"))
    async def warm_up(ctx: inngest.Context) -> None:
        async def nothing() -> None:
            return None

        for i in range(5):
            await ctx.step.run(f"w{i}", nothing)

    tenths: dict[str, list[float]] = {
        "first": [],
        "last": [],
        "engine_first": [],
        "engine_last": [],
    }
    took: list[float] = []
    calls: dict[str, list[tuple[float, float]]] = {}
    with ServedApp(client, [long_fn, warm_up]) as app, calls_timed(engine, calls):
        await engine.sync(app.url, f"bench-growth-{engine.mode}")
        # Connections, the SDK and the engine's code paths warmed up first: the first gaps of
        # the measured run are then its own.
        [event_id] = await engine.send({"name": "bench/warm-up"})
        await engine.finished(await engine.run_of_event(event_id), timeout=60)
        for _ in range(runs):
            began = time.perf_counter()
            [event_id] = await engine.send({"name": name})
            run = await engine.finished(await engine.run_of_event(event_id), timeout=1800)
            took.append(time.perf_counter() - began)
            assert run.status == "completed", run.status
            gaps = [(b - a) * 1000 for a, b in itertools.pairwise(starts[run.run_id])]
            engine_parts = [
                (began - ended) * 1000
                for (_, ended), (began, _) in itertools.pairwise(calls.get(run.run_id, []))
            ] or [math.nan] * len(gaps)
            tenth = max(2, len(gaps) // 10)
            tenths["first"] += gaps[:tenth]
            tenths["last"] += gaps[-tenth:]
            tenths["engine_first"] += engine_parts[:tenth]
            tenths["engine_last"] += engine_parts[-tenth:]
    # Medians: on a shared machine a few gaps stretched by other work would swing a mean.
    result = {f"{key}_ms": statistics.median(values) for key, values in tenths.items()}
    return {**result, "ratio": result["last_ms"] / result["first_ms"], "run_s": max(took)}


def growth_cases(spec: str) -> list[tuple[int, int]]:
    """`1000x16,20x1048576` -> [(1000, 16), (20, 1048576)]: steps x output bytes."""
    cases = []
    for case in spec.split(","):
        steps, output_bytes = case.split("x")
        cases.append((int(steps), int(output_bytes)))
    return cases


async def main_growth(spec: str, modes: list[str], runs: int) -> None:
    cases = growth_cases(spec)
    rows: list[tuple[str, int, int, dict[str, float]]] = []
    for mode in modes:
        for steps, output_bytes in cases:
            # The run's last call comes after its last step: the limit must pass it.
            async with engine_in(mode, "growth", max_steps=steps + 1) as engine:
                rows.append(
                    (
                        mode,
                        steps,
                        output_bytes,
                        await measure_growth(engine, steps, output_bytes, runs),
                    )
                )
    print(
        "| mode | steps | output bytes | gap, first tenth (ms) | gap, last tenth (ms) | last/first"
        " | engine between calls, first / last tenth (ms) | run (s) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for mode, steps, output_bytes, r in rows:
        print(
            f"| {mode} | {steps} | {output_bytes} | {r['first_ms']:.1f} | {r['last_ms']:.1f} | "
            f"{r['ratio']:.2f} | {r['engine_first_ms']:.1f} / {r['engine_last_ms']:.1f} | "
            f"{r['run_s']:.1f} |"
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--burst", type=int, default=100)
    parser.add_argument("--modes", default="dev,distributed")
    parser.add_argument("--growth", help="STEPSxBYTES,...: measure long runs instead")
    args = parser.parse_args()
    if args.growth:
        await main_growth(args.growth, args.modes.split(","), args.runs)
        return
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
