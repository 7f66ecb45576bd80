"""The SDK floor: an app's function driven to its end by a bare client that calls it exactly as
headrace's executor does (the same request body, headers and signature, built by the same
code: call 1 with no memos, call k with the k-1 step results memoized) and nothing else: no
log, no store, no queue between the calls. What an engine adds shows against it."""

from __future__ import annotations

import asyncio
from typing import Any

from headrace.core.clock import SystemClock
from headrace.core.ids import new_ulid
from headrace.core.jsonutil import canonical
from headrace.engine.steps import step_memo
from headrace.protocol.accounts import DEFAULT_ACCOUNT, AccountKeys
from headrace.protocol.driver import AppDriver
from headrace.protocol.ops import StepRun
from headrace.protocol.registration import DEFAULT_RETRIES
from headrace.protocol.request import build_body, call_url


class FloorClient:
    """Calls one function of the app at `app_url` (its serve route), at most `concurrency`
    calls at once, as an executor handles at most that many."""

    def __init__(
        self, app_url: str, fn_id: str, *, signing_key: str | None, concurrency: int
    ) -> None:
        self._url = call_url(app_url, fn_id, None)
        self._fn_id = fn_id
        self._clock = SystemClock()
        keys = AccountKeys.of(None, signing_key)
        self._server_kind = keys.server_kind
        self._driver = AppDriver(self._clock, keys=keys)
        self._slots = asyncio.Semaphore(concurrency)

    async def run(self, event: dict[str, Any]) -> None:
        """One run of `event`, call after call until the function returns; a step that fails
        or any answer but a step's result or the end is an error (the benchmark's function
        has neither)."""
        now_ms = self._clock.now_ms()
        run_id = new_ulid(now_ms)
        events = [{"id": new_ulid(now_ms), "ts": now_ms, **event}]
        memos: dict[str, bytes] = {}
        stack: list[str] = []
        version = -1
        while True:
            body = build_body(
                run_id=run_id,
                fn_id=self._fn_id,
                events=events,
                memos=memos,
                stack=stack,
                attempt=0,
                max_attempts=DEFAULT_RETRIES + 1,
                target=None,
                disable_immediate=False,
                version=version,
            )
            headers = {
                "x-run-id": run_id,
                "x-inngest-server-kind": self._server_kind,
                "x-inngest-req-version": str(version),
                "x-inngest-step-id": "step",
            }
            async with self._slots:
                outcome = await self._driver.call(
                    self._url, body, headers, account_id=DEFAULT_ACCOUNT
                )
            if outcome.request_version is not None:
                version = outcome.request_version
            if outcome.done:
                return
            ops = outcome.ops or []
            done_steps = [op for op in ops if isinstance(op, StepRun)]
            if outcome.error is not None or not ops or len(done_steps) != len(ops):
                raise RuntimeError(f"run {run_id}: unexpected answer {outcome}")
            for op in done_steps:
                memos[op.id] = canonical(step_memo(op))
                stack.append(op.id)

    async def close(self) -> None:
        await self._driver.close()
