"""How a step's cost grows along one long run (issue 18, Show 4), on every engine the peer
comparison starts, timed at the app.

    python benchmarks/long_runs.py [--cases 1000x16,20x1048576] [--runs 1] \\
        [--targets headrace-dev,headrace-distributed,inngest-dev,inngest-start] [--tick 10]

For each case STEPSxBYTES the app (official `inngest` SDK, FastAPI, uvicorn, served in this
process; each engine in its own, peer_engines.py) has a function of STEPS `step.run`s, each
returning BYTES bytes. After a warm-up run of 5 steps, `--runs` runs of each case go one at a
time, and the app notes on one clock when each step body began and when each call arrived and
was answered. Per case, the medians over the runs' first tenths (at least two values each)
against their last tenths of:

- step gap: between the starts of consecutive step bodies (what issue 18's Show bounds);
- engine between calls: from the app's answer to one call to the next call's arrival, which is
  the engine's own part of a step (the outcome stored, the next call's body built and sent);
- app per call: from a call's arrival to its answer. Every call carries every memo so far, and
  the SDK replays each earlier step from them before it runs the next, as the protocol has it,
  so this part grows along the run on any engine.

headrace's step limit is raised to STEPS + 1 for the run (its last call comes after its last
step); Inngest keeps its own limit of 1,000 steps, so give it at most 999.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import tempfile
import threading
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
from steps_app import StepsSeen, ends

from headrace.testing.sdk_app import ServedApp, make_client

TARGETS = ("headrace-dev", "headrace-distributed", "inngest-dev", "inngest-start")
WARM_UP = (5, 16)
PARTS = ("gap", "engine", "app")


class Calls:
    """(arrived, answered) of every call the app got, in order, from the app's thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.times: list[tuple[float, float]] = []

    def answered(self, arrived: float, answered: float) -> None:
        with self._lock:
            self.times.append((arrived, answered))

    @property
    def count(self) -> int:
        return len(self.times)

    def since(self, index: int) -> list[tuple[float, float]]:
        with self._lock:
            return self.times[index:]


def event_name(steps: int, size: int) -> str:
    return f"bench/long-{steps}x{size}"


def long_function(
    client: inngest.Inngest, steps: int, size: int, seen: StepsSeen
) -> inngest.Function[Any]:
    @client.create_function(
        fn_id=f"long-{steps}x{size}",
        trigger=inngest.TriggerEvent(event=event_name(steps, size)),
        retries=0,
    )
    async def long_fn(ctx: inngest.Context) -> int:
        key = str(ctx.event.data["k"])

        async def step() -> str:
            seen.step_started(key)
            return "x" * size

        for i in range(steps):
            await ctx.step.run(f"s{i}", step)
        seen.ended(key)
        return steps

    return long_fn


def tenths(values: list[float]) -> tuple[list[float], list[float]]:
    tenth = max(2, len(values) // 10)
    return values[:tenth], values[-tenth:]


async def measure(
    url: str, target: str, cases: list[tuple[int, int]], args: argparse.Namespace
) -> dict[str, dict[str, float]]:
    seen, calls = StepsSeen(), Calls()
    client = make_client(url, f"long-{target}", **app_keys(target, args))
    functions = [long_function(client, steps, size, seen) for steps, size in [WARM_UP, *cases]]
    results: dict[str, dict[str, float]] = {}
    async with httpx.AsyncClient(timeout=60) as http:

        async def run(steps: int, size: int, key: str) -> list[tuple[float, float]]:
            """The calls of one run, sent alone."""
            first_call = calls.count
            futures = seen.expect([key])
            sent = await http.post(
                f"{url}/e/{EVENT_KEY}", json={"name": event_name(steps, size), "data": {"k": key}}
            )
            sent.raise_for_status()
            await ends(futures, args.run_timeout, f"{steps}x{size}")
            return calls.since(first_call)

        with ServedApp(client, functions, on_answered=calls.answered) as app:
            synced = await http.put(app.url)
            if synced.status_code != 200:
                raise RuntimeError(f"sync of {app.url}: {synced.status_code} {synced.text[:300]}")
            await run(*WARM_UP, "warm-up")
            for steps, size in cases:
                first: dict[str, list[float]] = {part: [] for part in PARTS}
                last: dict[str, list[float]] = {part: [] for part in PARTS}
                took: list[float] = []
                for i in range(args.runs):
                    key = f"{steps}x{size}-{i}"
                    timed = await run(steps, size, key)
                    took.append(timed[-1][1] - timed[0][0])
                    parts = {
                        "gap": seen.gaps_ms(key),
                        "engine": [
                            (arrived - answered) * 1000
                            for (_, answered), (arrived, _) in itertools.pairwise(timed)
                        ],
                        "app": [(answered - arrived) * 1000 for arrived, answered in timed],
                    }
                    for part, values in parts.items():
                        head, tail = tenths(values)
                        first[part] += head
                        last[part] += tail
                row = {}
                for part in PARTS:
                    row[f"{part}_first_ms"] = statistics.median(first[part])
                    row[f"{part}_last_ms"] = statistics.median(last[part])
                    row[f"{part}_ratio"] = row[f"{part}_last_ms"] / row[f"{part}_first_ms"]
                row["run_s"] = max(took)
                results[f"{steps}x{size}"] = row
                log(f"{target} {steps}x{size}: {row}")
    return results


def cases_of(spec: str) -> list[tuple[int, int]]:
    """`1000x16,20x1048576` -> [(1000, 16), (20, 1048576)]: steps x output bytes."""
    cases = []
    for case in spec.split(","):
        steps, size = case.split("x")
        cases.append((int(steps), int(size)))
    return cases


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", default="1000x16,20x1048576")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--run-timeout", type=float, default=1800.0, help="s for one run")
    add_target_arguments(parser, TARGETS)
    args = parse_target_arguments(parser)
    cases = cases_of(args.cases)
    measured = versions(args)
    logs = Path(tempfile.mkdtemp(prefix="long-runs-"))
    log(f"engines' logs in {logs}")
    load = LoadSamples()
    sampling = asyncio.create_task(load.sample())
    results: dict[str, dict[str, dict[str, float]]] = {}
    max_steps = max(steps for steps, _ in cases) + 1
    try:
        for target in chosen_targets(args):
            log(f"{target} ...")
            try:
                async with engine(target, args, logs, max_steps=max_steps) as running:
                    results[target] = await measure(running.url, target, cases, args)
            except Exception as err:
                log(f"{target} failed: {err!r}")
    finally:
        sampling.cancel()
    print(
        f"headrace {measured}; {args.runs} run(s) of each case, one at a time; medians of the "
        f"first and last tenth of each run; Inngest --tick {args.tick}; load average (1 min) "
        f"{min(load.values):.1f}-{max(load.values):.1f} during the run\n"
    )
    print(
        "| target | steps x bytes | step gap first / last (ms) | last/first | engine between "
        "calls first / last (ms) | last/first | app per call first / last (ms) | run (s) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for target, rows in results.items():
        for case, r in rows.items():
            print(
                f"| {target} | {case} | {r['gap_first_ms']:.1f} / {r['gap_last_ms']:.1f} | "
                f"{r['gap_ratio']:.2f} | {r['engine_first_ms']:.1f} / {r['engine_last_ms']:.1f}"
                f" | {r['engine_ratio']:.2f} | {r['app_first_ms']:.1f} / {r['app_last_ms']:.1f}"
                f" | {r['run_s']:.1f} |"
            )


if __name__ == "__main__":
    asyncio.run(main())
