"""Apps and functions, one partition per account (an account has few of each)."""

from __future__ import annotations

import msgspec

from headrace.adapters.cassandra.session import Cql
from headrace.messages.state import AppRecord, FunctionRecord

_enc = msgspec.msgpack.Encoder()
_app = msgspec.msgpack.Decoder(AppRecord)
_fn = msgspec.msgpack.Decoder(FunctionRecord)


class AppTables:
    def __init__(self, cql: Cql) -> None:
        self._cql = cql
        self._put_app = cql.prepare(
            "INSERT INTO {ks}.apps (account_id, app_id, body) VALUES (?, ?, ?)"
        )
        self._get_app = cql.prepare(
            "SELECT body FROM {ks}.apps WHERE account_id = ? AND app_id = ?"
        )
        self._apps = cql.prepare("SELECT body FROM {ks}.apps WHERE account_id = ?")
        self._put_fn = cql.prepare(
            "INSERT INTO {ks}.functions (account_id, fn_id, body) VALUES (?, ?, ?)"
        )
        self._get_fn = cql.prepare(
            "SELECT body FROM {ks}.functions WHERE account_id = ? AND fn_id = ?"
        )
        self._fns = cql.prepare("SELECT body FROM {ks}.functions WHERE account_id = ?")

    async def put_app(self, app: AppRecord) -> None:
        await self._cql.write(self._put_app, (app.account_id, app.app_id, _enc.encode(app)))

    async def get_app(self, account_id: str, app_id: str) -> AppRecord | None:
        rows = await self._cql.rows(self._get_app, (account_id, app_id))
        return _app.decode(rows[0][0]) if rows else None

    async def list_apps(self, account_id: str) -> list[AppRecord]:
        return [_app.decode(body) for (body,) in await self._cql.rows(self._apps, (account_id,))]

    async def put_function(self, fn: FunctionRecord) -> None:
        await self._cql.write(self._put_fn, (fn.account_id, fn.fn_id, _enc.encode(fn)))

    async def get_function(self, account_id: str, fn_id: str) -> FunctionRecord | None:
        rows = await self._cql.rows(self._get_fn, (account_id, fn_id))
        return _fn.decode(rows[0][0]) if rows else None

    async def list_functions(self, account_id: str) -> list[FunctionRecord]:
        return [_fn.decode(body) for (body,) in await self._cql.rows(self._fns, (account_id,))]
