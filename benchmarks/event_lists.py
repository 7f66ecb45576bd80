"""How long the event lists take with a few multi-MB events among the newest, in dev mode and in
distributed mode: `GET /v1/events` (20 newest), the dashboard's `/dashboard/events` (50 newest)
and, for scale, `GET /v1/events/{id}` of one large event (which returns it whole).

    python benchmarks/event_lists.py [--large 5] [--mb 2.5] [--small 40] [--rounds 5] \\
        [--modes dev,distributed]

Distributed mode uses `headrace infra up` (Kafka and Cassandra on loopback; started if needed).
Each figure is the median of `rounds` requests, after one unmeasured request.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import httpx
from bench_cluster import engine_in

from headrace.testing.cluster import TEST_DASHBOARD_TOKEN
from headrace.testing.dev import EngineHandle, eventually


async def _median_ms(http: httpx.AsyncClient, path: str, rounds: int) -> tuple[float, int]:
    """The median time of GET `path`, and the size of its answer."""
    response = await http.get(path)
    response.raise_for_status()
    times = []
    for _ in range(rounds):
        began = time.perf_counter()
        response = await http.get(path)
        times.append((time.perf_counter() - began) * 1000)
        response.raise_for_status()
    return statistics.median(times), len(response.content)


async def measure(
    engine: EngineHandle, large: int, mb: float, small: int, rounds: int
) -> dict[str, tuple[float, int]]:
    blob = "x" * int(mb * 1024 * 1024)
    headers = {"authorization": f"Bearer {TEST_DASHBOARD_TOKEN}"}
    async with httpx.AsyncClient(base_url=engine.url, headers=headers, timeout=120) as http:
        for n in range(small):
            await engine.send({"name": "bench/small", "data": {"n": n}})
        large_ids = []
        for n in range(large):
            [event_id] = await engine.send({"name": "bench/large", "data": {"n": n, "blob": blob}})
            large_ids.append(event_id)

        async def stored() -> bool:
            heads = await engine.stores.list_event_heads(engine.account, limit=large + small)
            return len(heads) >= large + small

        await eventually(stored, timeout=120, what="the events stored")
        return {
            "GET /v1/events": await _median_ms(http, "/v1/events", rounds),
            "GET /dashboard/events": await _median_ms(http, "/dashboard/events", rounds),
            "GET /v1/events/{large id}": await _median_ms(
                http, f"/v1/events/{large_ids[0]}", rounds
            ),
        }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--large", type=int, default=5)
    parser.add_argument("--mb", type=float, default=2.5)
    parser.add_argument("--small", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--modes", default="dev,distributed")
    args = parser.parse_args()
    results: dict[str, dict[str, tuple[float, int]]] = {}
    for mode in args.modes.split(","):
        async with engine_in(mode, "event_lists") as engine:
            results[mode] = await measure(engine, args.large, args.mb, args.small, args.rounds)
    print(f"{args.large} events of {args.mb:g} MB among the newest, {args.small} small ones")
    print("| mode | request | median (ms) | answer (bytes) |")
    print("|---|---|---|---|")
    for mode, rows in results.items():
        for request, (ms, size) in rows.items():
            print(f"| {mode} | {request} | {ms:.0f} | {size:,} |")


if __name__ == "__main__":
    asyncio.run(main())
