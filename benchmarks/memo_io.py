"""What a step's memo I/O costs in the stores as a run grows: one run written step by step as
the executor writes it (each save with its one new memo, the state carrying the step's history
entry with its output), timing at every step the read of the run with its memos' values (to
build a call's body), the read with their keys only (to apply an outcome) and the save.

    python benchmarks/memo_io.py [--cases 1000x16,20x1048576] [--adapters sqlite,cassandra]

SQLite is a file in a temporary directory, as `headrace dev` keeps it; Cassandra the local node
of `headrace infra up` (started if needed), in a keyspace of its own, dropped at the end. Run
with the code of an older commit (its venv's python, this file), the keys read it lacks is left
out.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any

from headrace.adapters.cassandra import CassandraStores, migrate
from headrace.adapters.sqlite.database import Database
from headrace.adapters.sqlite.stores import SqliteStores
from headrace.infra import up
from headrace.infra.cassandra import drop_keyspace, local_cluster
from headrace.messages.state import HistoryEntry, RunState
from headrace.ports.stores import Stores


@contextlib.asynccontextmanager
async def stores_on(adapter: str) -> AsyncIterator[Stores]:
    if adapter == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            db = Database(str(Path(tmp) / "state.db"))
            try:
                yield SqliteStores(db)
            finally:
                db.close()
        return
    endpoints = up()
    assert endpoints.cassandra_contact
    cluster = local_cluster(*endpoints.cassandra_contact)
    session = cluster.connect()
    keyspace = "bench_memo_io_" + uuid.uuid4().hex[:12]
    migrate(session, keyspace, {"class": "SimpleStrategy", "replication_factor": 1})
    try:
        yield await asyncio.to_thread(CassandraStores, session, keyspace)
    finally:
        drop_keyspace(session, keyspace)
        cluster.shutdown()


async def timed(op: Awaitable[Any]) -> float:
    """How long awaiting `op` (a coroutine not started yet) takes, in ms."""
    began = time.perf_counter()
    await op
    return (time.perf_counter() - began) * 1000


async def measure(stores: Stores, steps: int, output_bytes: int) -> dict[str, tuple[float, float]]:
    run = RunState(run_id=uuid.uuid4().hex, account_id="acct", fn_id="fn", app_id="app")
    await stores.create_run(run)
    output = "x" * output_bytes
    memo = b'{"data":"' + output.encode() + b'"}'
    times: dict[str, list[float]] = {"values": [], "keys": [], "save": []}
    for i in range(steps):
        step_hash = f"{i:040x}"
        times["values"].append(await timed(stores.get_run_and_memos(run.run_id)))
        if hasattr(stores, "get_run_and_memo_keys"):  # not on code before it existed
            times["keys"].append(await timed(stores.get_run_and_memo_keys(run.run_id)))
        run.stack.append(step_hash)
        run.step_names[step_hash] = f"s{i}"
        run.outbox_history = [
            HistoryEntry(
                entry_id=f"{i:026d}",
                run_id=run.run_id,
                ts_ms=i,
                kind="step.completed",
                step_hash=step_hash,
                output=output,
            )
        ]
        times["save"].append(await timed(stores.save_run(run, {step_hash: memo})))
    tenth = max(2, steps // 10)
    return {
        op: (statistics.median(values[:tenth]), statistics.median(values[-tenth:]))
        for op, values in times.items()
        if values
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", default="1000x16,20x1048576")
    parser.add_argument("--adapters", default="sqlite,cassandra")
    args = parser.parse_args()
    print("median ms, first tenth -> last tenth of the run's steps")
    print("| adapter | steps | output bytes | read with values | read with keys | save |")
    print("|---|---|---|---|---|---|")
    for adapter in args.adapters.split(","):
        async with stores_on(adapter) as stores:
            for case in args.cases.split(","):
                steps, output_bytes = (int(n) for n in case.split("x"))
                r = await measure(stores, steps, output_bytes)
                cells = " | ".join(
                    f"{r[op][0]:.2f} -> {r[op][1]:.2f}" if op in r else "-"
                    for op in ("values", "keys", "save")
                )
                print(f"| {adapter} | {steps} | {output_bytes} | {cells} |")


if __name__ == "__main__":
    asyncio.run(main())
