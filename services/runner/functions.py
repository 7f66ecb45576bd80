"""The functions of each account, as last synced: read from the stores once and kept until a sync
changes them (FunctionsChanged) or the runner loses partitions."""

from __future__ import annotations

from headrace.messages.state import FunctionRecord
from headrace.ports.stores import Stores


class AccountFunctions:
    def __init__(self, stores: Stores) -> None:
        self._stores = stores
        self._functions: dict[str, list[FunctionRecord]] = {}

    async def of(self, account_id: str) -> list[FunctionRecord]:
        functions = self._functions.get(account_id)
        if functions is None:
            functions = await self._stores.list_functions(account_id)
            self._functions[account_id] = functions
        return functions

    async def find(self, account_id: str, fn_id: str) -> FunctionRecord | None:
        return next((f for f in await self.of(account_id) if f.fn_id == fn_id), None)

    def forget(self, account_id: str) -> None:
        self._functions.pop(account_id, None)

    def clear(self) -> None:
        self._functions.clear()
