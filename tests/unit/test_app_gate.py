"""The executor's gate of calls to each app (`services/executor/app_gate.py`), on a fake clock:
calls beyond an app's limit wait their turn in order, one that waits too long fails without
reaching the app, a call abandoned on the way gives its slot back, an app that does not answer
has its limit halved, and apps have limits of their own."""

from __future__ import annotations

import asyncio

import pytest
from headrace.services.executor.app_gate import AppGate

from headrace.core.clock import FakeClock
from headrace.protocol.ops import Outcome
from headrace.protocol.response import transport_error

APP = "http://127.0.0.1:3000/api/inngest?fnId=f"
OTHER_APP = "http://127.0.0.1:4000/api/inngest"


class App:
    """Calls held open until the test answers them."""

    def __init__(self) -> None:
        self.received: list[str] = []
        self._answers: dict[str, asyncio.Future[Outcome]] = {}

    def send(self, name: str):
        async def send() -> Outcome:
            self.received.append(name)
            answer = self._answers[name] = asyncio.get_running_loop().create_future()
            return await answer

        return send

    def answer(self, name: str, outcome: Outcome | None = None) -> None:
        self._answers[name].set_result(outcome or Outcome(done=True, status=200))


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_calls_beyond_the_limit_wait_their_turn_in_order() -> None:
    gate, app = AppGate(FakeClock(), maximum=2), App()
    assert gate.allowed(APP) == 2
    calls = [asyncio.create_task(gate.call(APP, "k", app.send(f"c{i}"))) for i in range(4)]
    await _settle()
    assert app.received == ["c0", "c1"]
    app.answer("c1")
    await _settle()
    assert app.received == ["c0", "c1", "c2"]
    app.answer("c0")
    await _settle()
    assert app.received == ["c0", "c1", "c2", "c3"]
    app.answer("c2")
    app.answer("c3")
    assert all(o.status == 200 for o in await asyncio.gather(*calls))


async def test_a_call_that_waits_longer_than_the_bound_fails_without_reaching_the_app() -> None:
    clock = FakeClock()
    gate, app = AppGate(clock, maximum=2, max_wait_ms=60_000), App()
    held = [asyncio.create_task(gate.call(APP, "k", app.send(f"c{i}"))) for i in range(2)]
    late = asyncio.create_task(gate.call(APP, "k", app.send("late")))
    await _settle()
    await clock.advance(59_999)
    await _settle()
    assert not late.done()
    await clock.advance(1)
    outcome = await late
    assert outcome.status == 0 and outcome.error is not None
    assert "had 2 calls in progress" in outcome.error["message"]
    assert "waited 60 s" in outcome.error["message"]
    assert app.received == ["c0", "c1"]
    for name in ("c0", "c1"):
        app.answer(name)
    await asyncio.gather(*held)


async def test_a_call_abandoned_on_the_way_gives_its_slot_back_and_teaches_nothing() -> None:
    gate, app = AppGate(FakeClock()), App()
    before = gate.allowed(APP)

    async def abandoned() -> Outcome:
        raise LookupError("the run changed")

    with pytest.raises(LookupError):
        await gate.call(APP, "k", abandoned)
    assert gate.allowed(APP) == before
    calls = [asyncio.create_task(gate.call(APP, "k", app.send(f"c{i}"))) for i in range(before)]
    await _settle()
    assert len(app.received) == before
    for name in app.received:
        app.answer(name)
    await asyncio.gather(*calls)


async def test_an_app_that_does_not_answer_is_sent_fewer_calls_and_others_are_not() -> None:
    gate = AppGate(FakeClock())

    async def answered() -> Outcome:
        await asyncio.sleep(0)  # the others are sent meanwhile
        return Outcome(done=True, status=200)

    async def timed_out() -> Outcome:
        return transport_error("the app did not answer within 300 s")

    for _ in range(20):
        await asyncio.gather(
            *(gate.call(url, "k", answered) for url in (APP, OTHER_APP) for _ in range(16))
        )
    # Apps that answer as fast with more calls in flight have room: the limits grow.
    grown = gate.allowed(APP)
    assert grown == gate.allowed(OTHER_APP) >= 16
    await gate.call(APP, "k", timed_out)
    assert gate.allowed(APP) == grown // 2
    assert gate.allowed(OTHER_APP) == grown


async def test_a_fixed_limit_holds_whatever_the_app_does() -> None:
    gate = AppGate(FakeClock(), fixed=3)

    async def answered() -> Outcome:
        await asyncio.sleep(0)
        return Outcome(done=True, status=200)

    for _ in range(10):
        await asyncio.gather(*(gate.call(APP, "k", answered) for _ in range(8)))
    await gate.call(APP, "k", lambda: asyncio.sleep(0, transport_error("no answer")))
    assert gate.allowed(APP) == 3


async def test_only_a_call_that_waited_its_turn_is_checked_again_and_may_be_abandoned() -> None:
    gate, app = AppGate(FakeClock(), maximum=1), App()
    checked: list[str] = []

    def check(name: str, stale: bool = False):
        async def after_wait() -> None:
            checked.append(name)
            if stale:
                raise LookupError(f"{name}'s run changed while it waited")

        return after_wait

    first = asyncio.create_task(gate.call(APP, "k", app.send("c0"), after_wait=check("c0")))
    stale = asyncio.create_task(gate.call(APP, "k", app.send("c1"), after_wait=check("c1", True)))
    last = asyncio.create_task(gate.call(APP, "k", app.send("c2"), after_wait=check("c2")))
    await _settle()
    assert checked == [] and app.received == ["c0"]
    app.answer("c0")
    await _settle()
    assert checked == ["c1", "c2"] and app.received == ["c0", "c2"]
    with pytest.raises(LookupError):
        await stale
    app.answer("c2")
    await asyncio.gather(first, last)
