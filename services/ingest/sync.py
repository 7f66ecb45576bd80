"""App sync: store what an app registers, archive what it no longer has, tell the runners."""

from __future__ import annotations

from headrace.core.clock import Clock
from headrace.messages.records import EVENTS_CODEC, FunctionsChanged
from headrace.messages.state import AppRecord, FunctionRecord
from headrace.messages.topics import Topics
from headrace.ports.log import Log
from headrace.ports.stores import Stores
from headrace.protocol.registration import SyncRequest


class AppSync:
    def __init__(self, log_port: Log, topics: Topics, stores: Stores, clock: Clock) -> None:
        self._log = log_port
        self._topics = topics
        self._stores = stores
        self._clock = clock

    async def register(self, account_id: str, request: SyncRequest) -> tuple[AppRecord, bool]:
        """Apps are keyed by id: a sync from a new URL moves the app and its runs there.

        Returns the app and whether anything changed (URL or functions).
        """
        now = self._clock.now_ms()
        previous = await self._stores.get_app(account_id, request.app_id)
        modified = previous is None or previous.url != request.url
        fn_ids = []
        for config in request.functions:
            fn_id = str(config["id"])
            fn_ids.append(fn_id)
            known = await self._stores.get_function(account_id, fn_id)
            if known is not None and known.config == config and not known.archived:
                continue
            modified = True
            await self._stores.put_function(
                FunctionRecord(
                    fn_id=fn_id,
                    account_id=account_id,
                    app_id=request.app_id,
                    name=str(config.get("name") or fn_id),
                    config=config,
                    updated_ms=now,
                )
            )
        if previous is not None:
            for gone in set(previous.function_ids) - set(fn_ids):
                fn = await self._stores.get_function(account_id, gone)
                if fn is not None and not fn.archived:
                    modified = True
                    fn.archived = True
                    fn.updated_ms = now
                    await self._stores.put_function(fn)
        app = AppRecord(
            app_id=request.app_id,
            account_id=account_id,
            url=request.url,
            sdk=request.sdk,
            framework=request.framework,
            synced_ms=now,
            function_ids=sorted(set(fn_ids) | set(previous.function_ids if previous else [])),
        )
        await self._stores.put_app(app)
        if modified:
            await self._log.publish(
                self._topics.events,
                account_id,
                EVENTS_CODEC.encode(FunctionsChanged(account_id=account_id)),
            )
        return app, modified
