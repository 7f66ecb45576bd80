"""The stores on Cassandra (see headrace.ports.stores for the guarantees, and each table
module here for how its queries stay within a partition)."""

from __future__ import annotations

import time
from collections.abc import Callable

from cassandra.cluster import Session

from headrace.adapters.cassandra.apps import AppTables
from headrace.adapters.cassandra.consistency import DEFAULT_CONSISTENCY, CassandraConsistency
from headrace.adapters.cassandra.events import EventTables
from headrace.adapters.cassandra.flow import FlowTables
from headrace.adapters.cassandra.keys import KeyTables
from headrace.adapters.cassandra.pauses import BatchTables, PauseTables
from headrace.adapters.cassandra.runs import RunTables
from headrace.adapters.cassandra.session import Cql
from headrace.adapters.cassandra.timers import TimerTables
from headrace.core.retention import DEFAULT_RETENTION_S


class CassandraStores(
    AppTables,
    RunTables,
    EventTables,
    KeyTables,
    TimerTables,
    PauseTables,
    BatchTables,
    FlowTables,
):
    """All the stores over one driver session and a keyspace that `migrate` has prepared.

    `retention_s` is how long ended runs (with their memos and history) and accepted events are
    kept; `monotonic` is the clock of what a process remembers writing (events.py). Construct it
    at startup: it prepares every statement (blocking, a round trip each).
    """

    def __init__(
        self,
        session: Session,
        keyspace: str,
        *,
        retention_s: int = DEFAULT_RETENTION_S,
        consistency: CassandraConsistency = DEFAULT_CONSISTENCY,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        cql = Cql(session, keyspace, consistency=consistency)
        self._cql = cql
        self._ping = cql.prepare("SELECT release_version FROM system.local")
        AppTables.__init__(self, cql)
        RunTables.__init__(self, cql, retention_s)
        EventTables.__init__(self, cql, retention_s, monotonic)
        KeyTables.__init__(self, cql)
        TimerTables.__init__(self, cql)
        PauseTables.__init__(self, cql)
        BatchTables.__init__(self, cql)
        FlowTables.__init__(self, cql)

    async def ping(self) -> None:
        """Raise unless a Cassandra node answers now (a readiness probe)."""
        await self._cql.rows(self._ping)

    async def close(self) -> None:
        """The session belongs to whoever opened it."""
