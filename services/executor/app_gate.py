"""The calls to each app that may be in flight at once (`flow.app_limit`): a call waits here for
its app's turn, in arrival order, and its answer teaches the app's limit.

Apps are told apart by origin (scheme, host and port). The wait is bounded: a call that finds no
slot within `max_wait_ms` (the call timeout: as long as an app that does not answer would have
held it anyway) is not sent, and fails its attempt as a call the app did not answer would, to be
retried by the function's rules; so an app that stops answering holds the executor's records no
longer than it did without a limit, and other apps' calls go on.
"""

from __future__ import annotations

import asyncio
import collections
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from headrace.core.clock import Clock
from headrace.flow.app_limit import OVERLOADED, AppLimit
from headrace.protocol.ops import Outcome
from headrace.protocol.response import transport_error


@dataclass
class _App:
    limit: AppLimit
    in_flight: int = 0
    waiting: collections.deque[asyncio.Future[None]] = field(default_factory=collections.deque)


class AppGate:
    def __init__(
        self,
        clock: Clock,
        *,
        maximum: int = 200,
        fixed: int | None = None,
        max_wait_ms: int = 300_000,
    ) -> None:
        """`maximum`: the most calls one app is ever sent at once; `fixed`: send each app this
        many at once, whatever it does (`--app-concurrency`), instead of learning its limit."""
        self._clock = clock
        self._maximum = maximum
        self._fixed = fixed
        self._max_wait_ms = max_wait_ms
        self._apps: dict[str, _App] = {}

    def allowed(self, url: str) -> int:
        """The calls the app at `url` may have in flight now."""
        return self._app(_origin(url)).limit.allowed

    async def call(
        self,
        url: str,
        kind: str,
        send: Callable[[], Awaitable[Outcome]],
        *,
        after_wait: Callable[[], Awaitable[None]] | None = None,
    ) -> Outcome:
        """`send()` once the app at `url` has room for the call, which is of `kind` (calls of
        one kind do about the same work); a failed Outcome if it found none in time. A call
        that had to wait for its turn first awaits `after_wait()` (which may raise to abandon
        it): what it was built from may have changed meanwhile."""
        origin = _origin(url)
        app = self._app(origin)
        waited = await self._enter(app)
        if waited is None:
            return transport_error(
                f"the app at {origin} had {app.in_flight} calls in progress, as many as it"
                f" is sent at once now, and this call waited {self._max_wait_ms / 1000:g} s for"
                " its turn"
            )
        began, sent_with, epoch = self._clock.now_ms(), app.in_flight, app.limit.epoch
        try:
            if waited and after_wait is not None:
                await after_wait()
            outcome = await send()
        except BaseException:
            # Not sent, or the call was abandoned (a stale body, a shutdown): nothing learnt.
            self._leave(app)
            raise
        if outcome.status == 0 or outcome.status in OVERLOADED:
            app.limit.failed()
        else:
            now = self._clock.now_ms()
            app.limit.answered(kind, now - began, sent_with, now, epoch)
        self._leave(app)
        return outcome

    def _app(self, origin: str) -> _App:
        app = self._apps.get(origin)
        if app is None:
            fixed = self._fixed
            limit = (
                AppLimit(fixed, initial=fixed, minimum=fixed) if fixed else AppLimit(self._maximum)
            )
            app = self._apps[origin] = _App(limit)
        return app

    async def _enter(self, app: _App) -> bool | None:
        """Take a slot: whether the call had to wait for it; None when none came in time."""
        if app.in_flight < app.limit.allowed and not app.waiting:
            app.in_flight += 1
            return False
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        app.waiting.append(turn)
        timeout = asyncio.ensure_future(
            self._clock.sleep_until(self._clock.now_ms() + self._max_wait_ms)
        )
        try:
            await asyncio.wait([turn, timeout], return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            if turn.done() and not turn.cancelled():
                self._leave(app)  # given a slot just as the wait was cancelled
            raise
        finally:
            timeout.cancel()
            if not turn.done():
                turn.cancel()
                app.waiting.remove(turn)
        return None if turn.cancelled() else True

    def _leave(self, app: _App) -> None:
        app.in_flight -= 1
        self._wake(app)

    def _wake(self, app: _App) -> None:
        """Hand the free slots to the calls waiting longest (each counted in as it is woken)."""
        while app.waiting and app.in_flight < app.limit.allowed:
            turn = app.waiting.popleft()
            if not turn.done():
                app.in_flight += 1
                turn.set_result(None)


def _origin(url: str) -> str:
    """Scheme, host and port, without credentials (the name shows in errors); cheap, as it
    runs for every call. A URL that does not parse is its own app: the driver refuses it."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return url
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
