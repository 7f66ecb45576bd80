"""The test's own connection to a distributed engine's Cassandra, retrying what the services
retry: a query no replica answered in time (`CassandraUnavailable`).

On a machine loaded by the tests themselves, a replica can be slow to answer a read a test
polls; that says nothing about the engine, whose services retry the same errors. Every store
write is idempotent (see `CassandraUnavailable`), so writes a test makes are retried alike.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import time
from typing import Any, cast

from headrace.adapters.cassandra.session import CassandraUnavailable
from headrace.ports.stores import Stores

# As long as any wait of the harness (`eventually` waits 20 s by default) and a little more.
PATIENCE_S = 30.0
_PAUSE_S = 0.2


def patient(stores: Stores) -> Stores:
    """`stores`, whose calls are retried for up to PATIENCE_S while Cassandra is unavailable."""
    return cast(Stores, _Patient(stores))


class _Patient:
    def __init__(self, stores: Stores) -> None:
        self._stores = stores

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._stores, name)
        if not inspect.iscoroutinefunction(method):
            return method

        @functools.wraps(method)
        async def retried(*args: Any, **kwargs: Any) -> Any:
            deadline = time.monotonic() + PATIENCE_S
            while True:
                try:
                    return await method(*args, **kwargs)
                except CassandraUnavailable:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(_PAUSE_S)

        return retried
