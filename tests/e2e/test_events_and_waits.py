"""waitForEvent, cancelOn, invoke, failure handlers and retries, end to end with the SDK."""

from __future__ import annotations

import asyncio
import collections
import datetime
import threading

import inngest
import pytest

from headrace.testing.dev import DevHandle, eventually
from headrace.testing.sdk_app import ServedApp, make_client


async def test_wait_for_event_is_fulfilled_by_a_matching_event_only(dev: DevHandle) -> None:
    client = make_client(dev.url, "wait-app")

    @client.create_function(fn_id="approval", trigger=inngest.TriggerEvent(event="test/order"))
    async def approval(ctx: inngest.Context) -> object:
        approved = await ctx.step.wait_for_event(
            "approved",
            event="test/approved",
            if_exp="async.data.order == event.data.order",
            timeout=datetime.timedelta(seconds=30),
        )
        return None if approved is None else approved.data

    with ServedApp(client, [approval]) as app:
        await dev.sync(app.url, "wait-app")
        [event_id] = await dev.send({"name": "test/order", "data": {"order": "o-1"}})
        run_id = await dev.run_of_event(event_id)
        await eventually(
            lambda: _has_kind(dev, run_id, "step.waiting"), what="the run to start waiting"
        )
        await dev.send({"name": "test/approved", "data": {"order": "o-2", "who": "wrong"}})
        await dev.send({"name": "test/approved", "data": {"order": "o-1", "who": "ann"}})
        run = await dev.finished(run_id)

    assert run.status == "completed"
    assert run.output == {"order": "o-1", "who": "ann"}


async def test_an_event_sent_while_the_call_declaring_the_wait_runs_fulfils_it(
    dev: DevHandle,
) -> None:
    """The wait began when the call that reaches it was sent: an event the engine handles
    before the app has even answered with the wait still matches it (docs/waits.md). The app
    holds that call until the event is stored, so the event always comes first."""
    client = make_client(dev.url, "early-app")
    in_call, event_stored = threading.Event(), threading.Event()

    @client.create_function(fn_id="early", trigger=inngest.TriggerEvent(event="test/early"))
    async def early(ctx: inngest.Context) -> object:
        in_call.set()
        await asyncio.to_thread(event_stored.wait, 30)
        got = await ctx.step.wait_for_event(
            "approved",
            event="test/early.approved",
            if_exp="async.data.order == event.data.order",
            timeout=datetime.timedelta(seconds=30),
        )
        return None if got is None else got.data

    with ServedApp(client, [early]) as app:
        await dev.sync(app.url, "early-app")
        # An approval from before the run began is never taken.
        await dev.send({"name": "test/early.approved", "data": {"order": "o-3"}})
        [event_id] = await dev.send({"name": "test/early", "data": {"order": "o-3"}})
        await asyncio.to_thread(in_call.wait, 30)
        [approval] = await dev.send(
            {"name": "test/early.approved", "data": {"order": "o-3", "who": "ann"}}
        )
        await eventually(lambda: dev.stores.get_event(approval), what="the approval stored")
        event_stored.set()
        run = await dev.finished(await dev.run_of_event(event_id))

    assert run.status == "completed"
    assert run.output == {"order": "o-3", "who": "ann"}


@pytest.mark.fake_clock
async def test_wait_for_event_times_out_with_none(dev: DevHandle) -> None:
    client = make_client(dev.url, "timeout-app")

    @client.create_function(fn_id="lonely", trigger=inngest.TriggerEvent(event="test/lonely"))
    async def lonely(ctx: inngest.Context) -> str:
        got = await ctx.step.wait_for_event(
            "never", event="test/never", timeout=datetime.timedelta(seconds=1)
        )
        return "timed out" if got is None else "got it"

    with ServedApp(client, [lonely]) as app:
        await dev.sync(app.url, "timeout-app")
        [event_id] = await dev.send({"name": "test/lonely"})
        run = await dev.finished(await dev.run_of_event(event_id), step_s=0.25)

    assert run.status == "completed"
    assert run.output == "timed out"
    assert run.ended_ms - run.started_ms >= 1000


async def test_cancel_on_a_matching_event_cancels_a_sleeping_run(dev: DevHandle) -> None:
    client = make_client(dev.url, "cancel-app")
    after_sleep = collections.Counter[str]()

    @client.create_function(
        fn_id="cancellable",
        trigger=inngest.TriggerEvent(event="test/job"),
        cancel=[inngest.Cancel(event="test/job.cancel", if_exp="async.data.id == event.data.id")],
    )
    async def cancellable(ctx: inngest.Context) -> str:
        await ctx.step.sleep("long", datetime.timedelta(minutes=10))

        async def never() -> str:
            after_sleep["ran"] += 1
            return "nope"

        return await ctx.step.run("after", never)

    with ServedApp(client, [cancellable]) as app:
        await dev.sync(app.url, "cancel-app")
        [keep_event, cancel_event] = await dev.send(
            {"name": "test/job", "data": {"id": "keep"}},
            {"name": "test/job", "data": {"id": "drop"}},
        )
        keep = await dev.run_of_event(keep_event)
        drop = await dev.run_of_event(cancel_event)
        for run_id in (keep, drop):
            await eventually(lambda r=run_id: _has_kind(dev, r, "step.sleeping"), what="sleep")
        await dev.send({"name": "test/job.cancel", "data": {"id": "drop"}})
        cancelled = await dev.finished(drop)
        kept = await dev.stores.get_run(keep)

    assert cancelled.status == "cancelled"
    assert kept is not None and kept.status == "running"
    assert await dev.stores.pauses_for_run(drop) == []
    assert [p.kind for p in await dev.stores.pauses_for_run(keep)] == ["cancel"]
    assert after_sleep["ran"] == 0
    # Other tests' runs share the account in distributed mode: only this function's count.
    events = await dev.stores.list_events(dev.account, name="inngest/function.cancelled")
    cancellations = [e.payload["data"] for e in events]
    mine = [c["run_id"] for c in cancellations if c["function_id"] == "cancel-app-cancellable"]
    assert mine == [drop]


async def test_invoke_returns_the_result_of_the_invoked_function(dev: DevHandle) -> None:
    client = make_client(dev.url, "invoke-app")

    @client.create_function(fn_id="adder", trigger=inngest.TriggerEvent(event="test/never"))
    async def adder(ctx: inngest.Context) -> int:
        return int(ctx.event.data["a"]) + int(ctx.event.data["b"])

    @client.create_function(fn_id="caller", trigger=inngest.TriggerEvent(event="test/invoke"))
    async def caller(ctx: inngest.Context) -> object:
        return await ctx.step.invoke("add", function=adder, data={"a": 2, "b": 3})

    with ServedApp(client, [adder, caller]) as app:
        await dev.sync(app.url, "invoke-app")
        [event_id] = await dev.send({"name": "test/invoke"})
        run = await dev.finished(await dev.run_of_event(event_id))

    assert run.status == "completed"
    assert run.output == 5


async def test_invoke_of_a_failing_function_raises_its_error(dev: DevHandle) -> None:
    client = make_client(dev.url, "invoke-fail-app")
    seen: dict[str, object] = {}

    @client.create_function(
        fn_id="broken", retries=0, trigger=inngest.TriggerEvent(event="test/never")
    )
    async def broken(ctx: inngest.Context) -> None:
        raise ValueError("callee exploded")

    @client.create_function(
        fn_id="caller", retries=0, trigger=inngest.TriggerEvent(event="test/invoke-fail")
    )
    async def caller(ctx: inngest.Context) -> str:
        try:
            await ctx.step.invoke("call-broken", function=broken)
        except inngest.StepError as err:
            seen["name"], seen["message"] = err.name, err.message
            return "handled"
        return "unexpected"

    with ServedApp(client, [broken, caller]) as app:
        await dev.sync(app.url, "invoke-fail-app")
        [event_id] = await dev.send({"name": "test/invoke-fail"})
        run = await dev.finished(await dev.run_of_event(event_id))

    assert run.status == "completed"
    assert run.output == "handled"
    assert seen == {"name": "ValueError", "message": "callee exploded"}


@pytest.mark.fake_clock
async def test_invoke_times_out(dev: DevHandle) -> None:
    client = make_client(dev.url, "invoke-timeout-app")

    @client.create_function(fn_id="slowpoke", trigger=inngest.TriggerEvent(event="test/never"))
    async def slowpoke(ctx: inngest.Context) -> str:
        await ctx.step.sleep("zzz", datetime.timedelta(minutes=5))
        return "late"

    @client.create_function(
        fn_id="impatient", retries=0, trigger=inngest.TriggerEvent(event="test/impatient")
    )
    async def impatient(ctx: inngest.Context) -> str:
        try:
            await ctx.step.invoke(
                "call-slow", function=slowpoke, timeout=datetime.timedelta(seconds=1)
            )
        except inngest.StepError as err:
            return err.name
        return "no timeout"

    with ServedApp(client, [slowpoke, impatient]) as app:
        await dev.sync(app.url, "invoke-timeout-app")
        [event_id] = await dev.send({"name": "test/impatient"})
        run = await dev.finished(await dev.run_of_event(event_id), step_s=0.25)

    assert run.status == "completed"
    assert run.output == "InngestInvokeTimeoutError"
    assert run.ended_ms - run.started_ms >= 1000


@pytest.mark.fake_clock
async def test_failure_handler_runs_with_the_failed_run_and_error(dev: DevHandle) -> None:
    client = make_client(dev.url, "failure-app")
    handled: dict[str, object] = {}

    def on_failure(ctx: inngest.ContextSync) -> None:
        handled["event"] = ctx.event.name
        handled["error"] = ctx.event.data["error"]["message"]
        handled["original"] = ctx.event.data["event"]["data"]

    @client.create_function(
        fn_id="doomed",
        retries=1,
        on_failure=on_failure,
        trigger=inngest.TriggerEvent(event="test/doomed"),
    )
    def doomed(ctx: inngest.ContextSync) -> None:
        # Retried a second later: the engine's own backoff (15 s and more) would pass in real
        # time in distributed mode.
        raise inngest.RetryAfterError("always fails", datetime.timedelta(seconds=1))

    with ServedApp(client, [doomed]) as app:
        await dev.sync(app.url, "failure-app")
        [event_id] = await dev.send({"name": "test/doomed", "data": {"order": 9}})
        run = await dev.finished(await dev.run_of_event(event_id), step_s=0.5)
        await eventually(lambda: _value(bool(handled)), what="the failure handler")

    assert run.status == "failed"
    assert run.output["message"] == "always fails"
    assert [h.kind for h in await dev.history(run.run_id)].count("run.errored") == 1
    assert handled == {
        "event": "inngest/function.failed",
        "error": "always fails",
        "original": {"order": 9},
    }


async def test_non_retriable_error_fails_without_retrying(dev: DevHandle) -> None:
    client = make_client(dev.url, "nonretry-app")
    attempts: list[int] = []

    @client.create_function(fn_id="strict", trigger=inngest.TriggerEvent(event="test/strict"))
    async def strict(ctx: inngest.Context) -> None:
        async def step() -> None:
            attempts.append(ctx.attempt)
            raise inngest.NonRetriableError("bad input, do not retry")

        await ctx.step.run("validate", step)

    with ServedApp(client, [strict]) as app:
        await dev.sync(app.url, "nonretry-app")
        [event_id] = await dev.send({"name": "test/strict"})
        run = await dev.finished(await dev.run_of_event(event_id))

    assert run.status == "failed"
    assert run.output["name"] == "NonRetriableError"
    assert run.output["message"] == "bad input, do not retry"
    assert attempts == [0]


@pytest.mark.fake_clock
async def test_retry_after_is_honoured(dev: DevHandle) -> None:
    client = make_client(dev.url, "retry-after-app")
    seen: list[int] = []

    @client.create_function(fn_id="later", trigger=inngest.TriggerEvent(event="test/later"))
    async def later(ctx: inngest.Context) -> str:
        async def step() -> str:
            seen.append(dev.now_ms())
            if len(seen) == 1:
                # On the engine's clock: the SDK would count a timedelta from the real time,
                # which a fake clock is behind by as long as the test has run.
                until = datetime.datetime.fromtimestamp(dev.now_ms() / 1000 + 2, datetime.UTC)
                raise inngest.RetryAfterError("busy", retry_after=until)
            return "done"

        return await ctx.step.run("busy", step)

    with ServedApp(client, [later]) as app:
        await dev.sync(app.url, "retry-after-app")
        [event_id] = await dev.send({"name": "test/later"})
        run = await dev.finished(await dev.run_of_event(event_id), step_s=0.25)

    assert run.status == "completed"
    assert len(seen) == 2
    # Inngest's backoff is 15 s at least; only Retry-After can explain this gap.
    assert 2_000 <= seen[1] - seen[0] <= 4_000


async def _has_kind(dev: DevHandle, run_id: str, kind: str) -> bool:
    return any(h.kind == kind for h in await dev.history(run_id))


async def _value(value: bool) -> bool:
    return value
