"""One SQLite connection driven from a single worker thread, so the event loop never blocks on
disk and every statement sees the writes before it."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class Database:
    def __init__(self, path: str) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        self._conn = self._pool.submit(self._open, path).result()

    @staticmethod
    def _open(path: str) -> sqlite3.Connection:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives a process crash; only a power loss can drop the last commits.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=5000")
        return conn

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, self._conn)

    def run_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return self._pool.submit(fn, self._conn).result()

    async def execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return await self.run(lambda conn: conn.execute(sql, params).fetchall())

    async def transaction(self, statements: list[tuple[str, tuple[Any, ...]]]) -> None:
        def apply(conn: sqlite3.Connection) -> None:
            for sql, params in statements:
                conn.execute(sql, params)

        await self.atomically(apply)

    async def atomically(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn` in one transaction: all of its writes, or (when it raises) none."""

        def apply(conn: sqlite3.Connection) -> T:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

        return await self.run(apply)

    def close(self) -> None:
        self._pool.submit(self._conn.close).result()
        self._pool.shutdown()
