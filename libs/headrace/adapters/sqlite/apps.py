"""Apps and functions, keyed by account."""

from __future__ import annotations

import msgspec

from headrace.adapters.sqlite.database import Database
from headrace.messages.state import AppRecord, FunctionRecord

_enc = msgspec.msgpack.Encoder()
_app = msgspec.msgpack.Decoder(AppRecord)
_fn = msgspec.msgpack.Decoder(FunctionRecord)


class AppTables:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def put_app(self, app: AppRecord) -> None:
        await self._db.execute(
            "INSERT OR REPLACE INTO apps VALUES (?, ?, ?)",
            (app.account_id, app.app_id, _enc.encode(app)),
        )

    async def get_app(self, account_id: str, app_id: str) -> AppRecord | None:
        rows = await self._db.execute(
            "SELECT body FROM apps WHERE account_id = ? AND app_id = ?", (account_id, app_id)
        )
        return _app.decode(rows[0][0]) if rows else None

    async def list_apps(self, account_id: str) -> list[AppRecord]:
        rows = await self._db.execute(
            "SELECT body FROM apps WHERE account_id = ? ORDER BY app_id", (account_id,)
        )
        return [_app.decode(r[0]) for r in rows]

    async def put_function(self, fn: FunctionRecord) -> None:
        await self._db.execute(
            "INSERT OR REPLACE INTO functions VALUES (?, ?, ?)",
            (fn.account_id, fn.fn_id, _enc.encode(fn)),
        )

    async def get_function(self, account_id: str, fn_id: str) -> FunctionRecord | None:
        rows = await self._db.execute(
            "SELECT body FROM functions WHERE account_id = ? AND fn_id = ?", (account_id, fn_id)
        )
        return _fn.decode(rows[0][0]) if rows else None

    async def list_functions(self, account_id: str) -> list[FunctionRecord]:
        rows = await self._db.execute(
            "SELECT body FROM functions WHERE account_id = ? ORDER BY fn_id", (account_id,)
        )
        return [_fn.decode(r[0]) for r in rows]
