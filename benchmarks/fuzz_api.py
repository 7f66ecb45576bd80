"""Fuzz every route of the HTTP API (api/openapi.json) on `headrace dev` in this process, as
tests/e2e/test_fuzz_api.py does but with as many requests per route as asked and a fresh seed:
prints each route's status histogram, how many requests got past validation (2xx), and every
problem found (a 5xx, no answer within the bound, something stored from a refused request, a
protected route answering a stranger).

Run from the repository root: .venv/bin/python benchmarks/fuzz_api.py [N] [--seed S]
[--only open|keyed] [--route TEXT]; N requests per route on an open server and N on one with
keys configured (default 10000). Exits 1 when anything was found.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

# Runnable from a checkout without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "libs"))

from hypothesis import HealthCheck, Phase, given, seed, settings

from headrace.api.openapi import document
from headrace.obs.logging import configure_logging
from headrace.testing.api_bodies import fuzz_requests
from headrace.testing.api_fuzz import Target, problems
from headrace.testing.api_requests import ApiRequest, Operation, operations

SHOWN_PER_ROUTE = 3


@dataclass
class RouteResult:
    statuses: Counter[int] = field(default_factory=Counter)
    found: list[tuple[ApiRequest, list[str]]] = field(default_factory=list)
    seconds: float = 0.0


def fuzz_route(
    loop: asyncio.AbstractEventLoop, target: Target, op: Operation, count: int, run_seed: int
) -> RouteResult:
    result = RouteResult()
    doc = document()

    # Generation only: a problem is recorded and the run goes on (no shrinking).
    @seed(run_seed)
    @settings(
        max_examples=count,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(fuzz_requests(doc, op, target.known, target.held))
    def one(request: ApiRequest) -> None:
        outcome = loop.run_until_complete(target.send(request))
        result.statuses[outcome.status] += 1
        found = problems(op, outcome, keyed=target.keyed)
        if found:
            result.found.append((request, found))

    started = time.monotonic()
    one()
    result.seconds = time.monotonic() - started
    return result


def report(server: str, op: Operation, result: RouteResult) -> None:
    total = sum(result.statuses.values())
    passed = sum(n for status, n in result.statuses.items() if 200 <= status < 300)
    histogram = "  ".join(f"{status}:{n}" for status, n in sorted(result.statuses.items()))
    print(
        f"{server:5}  {op.name:42}  {total:6}  {passed:6}  {len(result.found):4}  "
        f"{result.seconds:6.1f}s  {histogram}",
        flush=True,
    )
    for request, found in result.found[:SHOWN_PER_ROUTE]:
        print(f"         ! {'; '.join(found)}")
        print(f"           {request.method} {request.target[:200]} body={request.body[:200]!r}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("count", nargs="?", type=int, default=10_000, help="requests per route")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--only", choices=["open", "keyed"], default=None)
    parser.add_argument("--route", default="", help="only routes whose name contains this")
    args = parser.parse_args()
    run_seed = args.seed if args.seed is not None else random.randrange(2**32)
    # Refusals are logged at info; a warning or an error is worth seeing among the results.
    configure_logging(level="warning")
    print(f"seed {run_seed}, {args.count} requests per route and server", flush=True)
    print(f"{'server':5}  {'route':42}  {'sent':>6}  {'2xx':>6}  {'bad':>4}  {'time':>7}  statuses")
    ops = [op for op in operations(document()) if not op.websocket and args.route in op.name]
    bad = 0
    sent = 0
    for keyed in (False, True):
        server = "keyed" if keyed else "open"
        if args.only not in (None, server):
            continue
        loop = asyncio.new_event_loop()
        target = loop.run_until_complete(_target(keyed))
        for op in ops:
            result = fuzz_route(loop, target, op, args.count, run_seed)
            report(server, op, result)
            bad += len(result.found)
            sent += sum(result.statuses.values())
        loop.run_until_complete(target.close())
        loop.close()
    print(f"{sent} requests, {bad} with a problem (seed {run_seed})")
    return 1 if bad else 0


async def _target(keyed: bool) -> Target:
    return await Target.start(keyed=keyed)


if __name__ == "__main__":
    sys.exit(main())
