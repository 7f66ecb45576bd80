"""Answer signatures, with production-mode apps of the official SDK, which sign every answer to
a call they verified (docs/answer-signatures.md). The engine here requires signed answers: the
SDK's answers are read; an answer changed on its way back (a proxy in the path,
testing/hostile_app.py `TamperingProxy`), or stripped of its signature, fails its run at once
with an error that says so, and the engine goes on serving the same app."""

from __future__ import annotations

import collections
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import inngest
import pytest
from own_engine import own_engine

from headrace.testing.dev import EngineHandle, start_dev
from headrace.testing.hostile_app import Tamper, TamperingProxy
from headrace.testing.sdk_app import ServedApp, free_port, make_client
from headrace.testing.ts_app import MAJORS, TsApp

SIGNING_KEY = "signkey-prod-" + "5e" * 32


@pytest.fixture(
    params=["dev", pytest.param("distributed", marks=[pytest.mark.kafka, pytest.mark.cassandra])]
)
async def signed(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[EngineHandle]:
    """An engine with a signing key that requires signed answers."""
    engine = await own_engine(
        request,
        tmp_path,
        "answers",
        dev={"signing_key": SIGNING_KEY, "require_signed_answers": True},
        env={"HEADRACE_SIGNING_KEY": SIGNING_KEY, "HEADRACE_REQUIRE_SIGNED_ANSWERS": "true"},
    )
    yield engine
    await engine.stop()


def _forge(headers: dict[str, str], body: bytes) -> tuple[dict[str, str], bytes]:
    return headers, body.replace(b'"real"', b'"forged"')


def _unsign(headers: dict[str, str], body: bytes) -> tuple[dict[str, str], bytes]:
    return {k: v for k, v in headers.items() if k != "x-inngest-signature"}, body


class _App:
    """A production-mode app of the official SDK whose calls go through a proxy; its step
    returns "real" and counts its runs."""

    def __init__(self, engine: EngineHandle) -> None:
        self.ran: collections.Counter[str] = collections.Counter()
        self.client = make_client(engine.url, "signed-app", signing_key=SIGNING_KEY)

        @self.client.create_function(fn_id="pay", trigger=inngest.TriggerEvent(event="signed/pay"))
        async def pay(ctx: inngest.Context) -> dict[str, Any]:
            async def charge() -> str:
                self.ran[ctx.event.data["order"]] += 1
                return "real"

            charged = await ctx.step.run("charge", charge)
            receipt = await ctx.step.run("receipt", lambda: f"receipt for {charged}")
            return {"charged": charged, "receipt": receipt}

        self.fn = pay


async def _run(engine: EngineHandle, order: str) -> Any:
    [event_id] = await engine.send({"name": "signed/pay", "data": {"order": order}})
    return await engine.finished(await engine.run_of_event(event_id), timeout=30)


async def _runs_through_proxy(
    engine: EngineHandle, app: _App, tampers: dict[str, Tamper | None]
) -> dict[str, Any]:
    """One run per order, each with its answers passed through `tampers[order]`."""
    port = free_port()
    proxy = TamperingProxy(f"http://127.0.0.1:{port}")
    runs = {}
    async with proxy.serving():
        # The app says it is reached at the proxy: it is synced and called there.
        with ServedApp(app.client, [app.fn], port=port, serve_origin=proxy.origin):
            await engine.sync(f"{proxy.origin}/api/inngest", "signed-app", server_kind="cloud")
            for order, tamper in tampers.items():
                proxy.tamper = tamper
                runs[order] = await _run(engine, order)
    return runs


async def test_signed_answers_are_read_and_a_changed_or_unsigned_one_fails_its_run(
    signed: EngineHandle,
) -> None:
    app = _App(signed)
    runs = await _runs_through_proxy(
        signed, app, {"clean": None, "forged": _forge, "unsigned": _unsign, "after": None}
    )

    assert runs["clean"].status == "completed"
    assert runs["clean"].output == {"charged": "real", "receipt": "receipt for real"}

    forged = runs["forged"]
    assert forged.status == "failed"
    assert forged.output["name"] == "InvalidAnswerSignature"
    assert "does not match its body" in forged.output["message"]
    # Refused at once, not retried: the step ran once, and nothing forged was stored.
    assert app.ran["forged"] == 1
    assert not any("forged" in str(h.output) for h in await signed.history(forged.run_id))

    unsigned = runs["unsigned"]
    assert unsigned.status == "failed"
    assert unsigned.output["name"] == "InvalidAnswerSignature"
    assert "without an X-Inngest-Signature" in unsigned.output["message"]

    assert runs["after"].status == "completed"
    assert runs["after"].output == runs["clean"].output


async def test_without_the_requirement_an_unsigned_answer_is_read_and_a_changed_one_is_not() -> (
    None
):
    """The default: an answer without a signature (as a dev-mode app's, which signs nothing)
    is read; one that has a signature has it checked, by the same code in both modes."""
    engine = await start_dev(None, signing_key=SIGNING_KEY)
    try:
        app = _App(engine)
        runs = await _runs_through_proxy(engine, app, {"unsigned": _unsign, "forged": _forge})
    finally:
        await engine.stop()

    assert runs["unsigned"].status == "completed"
    assert runs["unsigned"].output == {"charged": "real", "receipt": "receipt for real"}
    assert runs["forged"].status == "failed"
    assert runs["forged"].output["name"] == "InvalidAnswerSignature"


@pytest.mark.parametrize("major", MAJORS)
async def test_the_typescript_sdk_s_signed_answers_are_read(major: str) -> None:
    """The JS SDK signs its answer's body as a string (4.x: with checkpointing, as by default);
    with signed answers required, a run of three steps completes only if each answer
    verifies. The engine-side check is the one the test above runs in both modes."""
    engine = await start_dev(None, signing_key=SIGNING_KEY, require_signed_answers=True)
    app = TsApp(
        engine.url,
        f"signed-ts-v{major}",
        ["steps"],
        major=major,
        env={"INNGEST_SIGNING_KEY": SIGNING_KEY},
    )
    try:
        with app:
            await engine.sync(app.url, app.app_id, server_kind="cloud")
            [event_id] = await engine.send({"name": f"{app.app_id}/steps", "data": {"steps": 3}})
            run = await engine.finished(await engine.run_of_event(event_id), timeout=30)
            counts = app.counts()
            log = app.log()
    finally:
        await engine.stop()

    assert run.status == "completed", (run.output, log)
    assert run.output == {"total": 6}
    assert counts == {"step-1": 1, "step-2": 1, "step-3": 1}
