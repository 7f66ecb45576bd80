"""Benchmark headrace.expressions: compile, evaluate, and pause matching (index vs. full scan).

Run from the repository root: python benchmarks/expressions.py [--quick]
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

# Runnable from a checkout without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "libs"))

import cel

from headrace.expressions import EvaluationError, PauseIndex, compile_expression, evaluate_bool
from headrace.expressions.program import context

TRIGGER_EXPRESSION = "event.data.amount > 100 && lowercase(event.data.plan) == 'pro'"
WAIT_EXPRESSION = "event.data.userId == async.data.userId && async.data.amount > 100"


def event(user: str, amount: float = 150.5, order: str = "", padding: int = 0) -> dict[str, object]:
    data: dict[str, object] = {
        "userId": user,
        "orderId": order,
        "amount": amount,
        "plan": "PRO",
        "email": f"{user}@example.com",
        "items": [{"sku": f"sku-{n}", "qty": n} for n in range(5)],
        "address": {"city": "Oslo", "zip": "0150", "country": "NO"},
    }
    if padding:  # many small values: what makes converting an event to CEL expensive
        data["lines"] = [{"sku": f"sku-{n}", "qty": n, "note": "x" * 40} for n in range(padding)]
    return {"name": "shop/order.paid", "id": f"evt-{user}", "ts": 1_700_000_000_000, "data": data}


def percentiles(samples_s: list[float]) -> tuple[float, float]:
    """p50 and p99 in microseconds."""
    ordered = sorted(samples_s)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered) * 1e6, p99 * 1e6


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def row(name: str, samples: list[float]) -> str:
    p50, p99 = percentiles(samples)
    return f"| {name} | {p50:,.1f} us | {p99:,.1f} us | {len(samples):,} |"


def mean_row(name: str, total_s: float, count: int) -> str:
    return f"| {name} | {total_s / count * 1e6:,.1f} us (mean) | | {count:,} |"


def rss_bytes() -> int:
    """Resident memory now (Linux): cel-rust's allocations are invisible to tracemalloc."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def bench_compile(repeat: int) -> list[str]:
    counter = iter(range(10**9))
    cold = timed(
        lambda: compile_expression(f"{WAIT_EXPRESSION} && async.data.n == {next(counter)}"), repeat
    )
    compile_expression(WAIT_EXPRESSION)
    cached = timed(lambda: compile_expression(WAIT_EXPRESSION), repeat)
    return [row("compile, new source", cold), row("compile, cached source", cached)]


def bench_evaluate(repeat: int) -> list[str]:
    small = {"event": event("u1")}
    large = {"event": event("u1", padding=10_000)}
    both = {"event": event("u1"), "async": event("u1")}
    # cel-rust alone converts the whole event on every evaluation; Program converts what it reads.
    unpruned = cel.compile(TRIGGER_EXPRESSION)
    return [
        row(
            "evaluate_bool trigger, 400 B event",
            timed(lambda: evaluate_bool(TRIGGER_EXPRESSION, small), repeat),
        ),
        row(
            "evaluate_bool trigger, 860 KB event (10,000 items)",
            timed(lambda: evaluate_bool(TRIGGER_EXPRESSION, large), repeat),
        ),
        row(
            "cel-rust alone, 860 KB event (10,000 items), no pruning",
            timed(lambda: unpruned.execute(context(large)), 20),
        ),
        row(
            "evaluate_bool wait (event + async)",
            timed(lambda: evaluate_bool(WAIT_EXPRESSION, both), repeat),
        ),
    ]


def bench_matching(pending: int, events: int, scans: int, memory: bool) -> list[str]:
    """Index vs. scan; with `memory`, also the RSS growth per pause (only meaningful for the
    largest run: smaller ones reuse memory that earlier stages freed)."""
    rng = random.Random(7)
    index = PauseIndex()
    programs = []
    gc.collect()
    memory_before = rss_bytes()
    start = time.perf_counter()
    for n in range(pending):
        # What a wait looks like once substitute_event has put the trigger's order id in.
        source = f'"o{n}" == async.data.orderId && async.data.amount > 100'
        programs.append(compile_expression(source))  # add() below finds it in the cache
        index.add(f"run{n}:wait", "shop/order.paid", source)
    adding = time.perf_counter() - start
    per_pause = (rss_bytes() - memory_before) / pending
    # Half of the events complete a wait, half match none.
    incoming = [event("u1", order=f"o{rng.randrange(pending * 2)}") for _ in range(events)]
    indexed = timed(lambda: index.match(incoming[rng.randrange(events)]), events)

    def full_scan() -> list[bool]:
        # The best case for a scan: one shared context, every program evaluated once.
        shared = context({"async": incoming[0]})
        results = []
        for program in programs:
            try:
                results.append(program.run(shared) is True)
            except EvaluationError:
                results.append(False)
        return results

    scanned = timed(full_scan, scans)
    rows = [mean_row(f"compile + add a pause (to {pending:,})", adding, pending)]
    if memory:
        rows.append(f"| memory per pending pause ({pending:,}) | {per_pause / 1024:,.1f} KiB | | |")
    rows.append(row(f"match with index, {pending:,} pending", indexed))
    rows.append(row(f"match by full scan, {pending:,} pending", scanned))
    return rows


def bench_fallback(pending: int, fallback: int, events: int) -> list[str]:
    rng = random.Random(11)
    index = PauseIndex()
    for n in range(pending - fallback):
        index.add(f"run{n}:wait", "shop/order.paid", f'async.data.orderId == "o{n}"')
    for n in range(fallback):
        index.add(f"scan{n}:wait", "shop/order.paid", f"async.data.amount > {n}")
    incoming = [
        event("u1", order=f"o{rng.randrange(pending)}", amount=rng.randrange(fallback))
        for _ in range(events)
    ]
    samples = timed(lambda: index.match(incoming[rng.randrange(events)]), events)
    return [row(f"match, {pending:,} pending of which {fallback:,} without equality", samples)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer iterations and pauses")
    quick = parser.parse_args().quick
    repeat = 2_000 if quick else 20_000
    print(f"Python {sys.version.split()[0]}; {'quick' if quick else 'full'} run\n")
    print("| what | p50 | p99 | samples |")
    print("|---|---|---|---|")
    for line in bench_compile(repeat) + bench_evaluate(repeat):
        print(line, flush=True)
    sizes = (1_000,) if quick else (10_000, 100_000)
    for pending in sizes:
        rows = bench_matching(pending, 1_000, scans=3 if quick else 10, memory=pending == sizes[-1])
        for line in rows:
            print(line, flush=True)
    for line in bench_fallback(10_000 if quick else 100_000, fallback=100, events=1_000):
        print(line, flush=True)


if __name__ == "__main__":
    main()
