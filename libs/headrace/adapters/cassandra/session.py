"""The driver's callback futures as asyncio awaitables, and which driver errors are retryable.

cassandra-driver runs its I/O on its own thread and completes a `ResponseFuture` there; the
callbacks below hand each result to the event loop with `call_soon_threadsafe`, so nothing here
ever blocks the loop.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from typing import Any

from cassandra import OperationTimedOut, RequestExecutionException
from cassandra.cluster import EXEC_PROFILE_DEFAULT, ExecutionProfile, NoHostAvailable, Session
from cassandra.query import (
    BatchStatement,
    BatchType,
    PreparedStatement,
    dict_factory,
    tuple_factory,
)

from headrace.adapters.cassandra.consistency import DEFAULT_CONSISTENCY, CassandraConsistency
from headrace.core.errors import TransientError

Params = Sequence[Any]
Bound = tuple[PreparedStatement, Params]

# Queries one call keeps in flight at once (slots of a timer wheel, runs of a listing).
_CONCURRENCY = 32

_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,47}")

# No replica answered in time, too few were alive, or a replica failed to execute (the whole
# "could not execute" family: Unavailable, timeouts, read/write failures): trying again later
# can work. A query Cassandra refuses (RequestValidationException: a schema not migrated, say)
# is not among them.
RETRYABLE_ERRORS = (RequestExecutionException, OperationTimedOut, NoHostAvailable)


class CassandraUnavailable(TransientError):
    """Cassandra failed to answer in time or lacked live replicas.

    A write that timed out may still have been applied, a lightweight transaction included:
    retry it with the same natural keys (every store write is idempotent). Errors not listed
    as retryable (invalid queries, ...) pass through as the driver raised them.
    """


def check_identifier(name: str) -> str:
    """A keyspace name is spliced into CQL text, so accept plain identifiers only."""
    if not _IDENTIFIER.fullmatch(name):
        raise ValueError(f"not a valid keyspace name: {name!r}")
    return name


class Cql:
    """One driver session bound to a keyspace, with async execution and prepared statements.

    The session must be configured with execution profiles (as `local_cluster` builds it): the
    default profile's load balancing, retry policy and timeout are kept, with the given
    quorum-class consistency so that a read sees every acknowledged write (see
    headrace.adapters.cassandra.consistency), and with rows as tuples (or dicts for the results
    of lightweight transactions, whose columns vary).
    """

    def __init__(
        self,
        session: Session,
        keyspace: str,
        *,
        consistency: CassandraConsistency = DEFAULT_CONSISTENCY,
    ) -> None:
        self.session = session
        self.keyspace = check_identifier(keyspace)
        # Statements and batches carry no level of their own: they run at their profile's.
        levels = consistency.driver_options()
        self._tuples = session.execution_profile_clone_update(
            EXEC_PROFILE_DEFAULT, row_factory=tuple_factory, **levels
        )
        self._dicts = session.execution_profile_clone_update(
            EXEC_PROFILE_DEFAULT, row_factory=dict_factory, **levels
        )

    def prepare(self, cql: str) -> PreparedStatement:
        """Prepare once, at startup; `{ks}` in the text stands for the keyspace."""
        return self.session.prepare(cql.replace("{ks}", self.keyspace))

    def timestamp(self) -> int:
        """A write timestamp (microseconds) from the generator the driver stamps writes with."""
        return int(self.session.cluster.timestamp_generator())

    async def rows(
        self, statement: PreparedStatement, params: Params = ()
    ) -> list[tuple[Any, ...]]:
        """Every row of the result, all pages fetched."""
        return await self._execute(statement.bind(params), self._tuples)

    async def rows_each(
        self, statement: PreparedStatement, params: Sequence[Params]
    ) -> list[list[tuple[Any, ...]]]:
        """The same query for each parameter set, a bounded number at a time; results in order."""
        results: list[list[tuple[Any, ...]]] = []
        for start in range(0, len(params), _CONCURRENCY):
            chunk = params[start : start + _CONCURRENCY]
            results += await asyncio.gather(*(self.rows(statement, p) for p in chunk))
        return results

    async def write(self, statement: PreparedStatement, params: Params = ()) -> None:
        await self._execute(statement.bind(params), self._tuples)

    async def applied(
        self, statement: PreparedStatement, params: Params = ()
    ) -> tuple[bool, dict[str, Any]]:
        """Run a lightweight transaction: whether it applied, and the row it found otherwise."""
        [row] = await self._execute(statement.bind(params), self._dicts)
        return bool(row["[applied]"]), row

    async def batch(self, statements: Sequence[Bound], *, logged: bool) -> None:
        """One batch. Unlogged is for statements on a single partition: that is one mutation,
        atomic and isolated by itself; logged makes a multi-partition batch all-or-nothing."""
        if statements:
            await self._execute(self._batch(statements, logged=logged), self._tuples)

    async def applied_batch(self, statements: Sequence[Bound]) -> tuple[bool, dict[str, Any]]:
        """A conditional batch on one partition (one lightweight transaction): whether it
        applied, and the row its condition found otherwise."""
        rows = await self._execute(self._batch(statements, logged=False), self._dicts)
        return bool(rows[0]["[applied]"]), rows[0]

    def _batch(self, statements: Sequence[Bound], *, logged: bool) -> BatchStatement:
        batch = BatchStatement(batch_type=BatchType.LOGGED if logged else BatchType.UNLOGGED)
        for statement, params in statements:
            batch.add(statement, params)
        return batch

    async def _execute(self, statement: Any, profile: ExecutionProfile) -> list[Any]:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[list[Any]] = loop.create_future()
        rows: list[Any] = []
        response = self.session.execute_async(statement, execution_profile=profile)

        def settle(result: list[Any] | BaseException) -> None:
            # On the loop's thread. The caller may have given up (cancelled) meanwhile.
            if done.done():
                return
            if isinstance(result, BaseException):
                done.set_exception(result)
            else:
                done.set_result(result)

        def to_loop(result: list[Any] | BaseException) -> None:
            try:
                loop.call_soon_threadsafe(settle, result)
            except RuntimeError:
                pass  # the loop is closed: nobody is waiting any more

        def on_page(page: list[Any] | None) -> None:
            # On the driver's thread; the driver calls back once per page.
            rows.extend(page or ())
            if response.has_more_pages and not done.cancelled():
                response.start_fetching_next_page()
            else:
                to_loop(rows)

        def on_error(error: BaseException) -> None:
            to_loop(translate(error))

        response.add_callbacks(on_page, on_error)
        return await done


def translate(error: BaseException) -> BaseException:
    """A `CassandraUnavailable` for the driver's retryable errors; any other error as it is."""
    if isinstance(error, RETRYABLE_ERRORS):
        retryable = CassandraUnavailable(f"{type(error).__name__}: {error}")
        retryable.__cause__ = error
        return retryable
    return error
