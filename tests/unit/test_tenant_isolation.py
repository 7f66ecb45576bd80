"""Tenant isolation over the whole HTTP API of an ingest (services/ingest/http.py), property-based
over ids: with its own signing key, one account asks every `/v0` and `/v1` route that takes an
id (runs, events, cancellations, signals, checkpoints, GraphQL) about the other account's real
ids and about ids of any shape, and is never shown, nor lets it change, anything of the other's.

The other account ("globex") deploys the same app, function and signal names as the asking one
("acme"), so a route that forgot the account would find globex's records by their names."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from headrace.services.executor.outbox import Outbox
from headrace.services.ingest.events import EventIngest
from headrace.services.ingest.http import build_app
from headrace.services.ingest.sync import AppSync
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from headrace.adapters.inproc.log import InProcLog
from headrace.adapters.sqlite.database import Database
from headrace.adapters.sqlite.stores import SqliteStores
from headrace.api.context import ApiContext
from headrace.api.controls import RunControls
from headrace.api.realtime import realtime_routes
from headrace.core.clock import FakeClock
from headrace.engine import signals
from headrace.messages.model import Event, Pause
from headrace.messages.records import Call
from headrace.messages.state import AppRecord, FunctionRecord, RunState
from headrace.messages.topics import Topics
from headrace.protocol.accounts import AccountKeys
from headrace.protocol.checkpoint import queue_item_id
from headrace.protocol.signing import hashed_signing_key
from headrace.realtime.bus import LocalBus
from headrace.realtime.hub import Hub, Subscription
from headrace.realtime.tokens import TokenIssuer

ACME_KEY = "signkey-prod-" + "a1" * 32
GLOBEX_KEY = "signkey-prod-" + "b2" * 32
TOPICS = Topics(prefix="t.")
NOW = 1_700_000_000_000
# In every record of globex's, so that any answer showing one is caught.
MARK = "globex-private-7c41"
RUN_ID = "01HZZZ0000000000000000000A"
EVENT_ID = "01HZZY0000000000000000000A"
ENDED_ID = "01HZZZ0000000000000000000B"
SIGNAL = "order-approved"


@dataclass
class Api:
    http: httpx.AsyncClient
    stores: SqliteStores
    log: InProcLog
    # globex's realtime subscriber, on channels named as acme's could be.
    globex_sub: Subscription
    tokens: TokenIssuer


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    db = Database(":memory:")
    stores = SqliteStores(db)
    log = InProcLog(partitions=1)
    clock = FakeClock(NOW)
    keys = AccountKeys.of(
        [("acme-key", "acme"), ("globex-key", "globex")],
        signing_keys=[("acme", ACME_KEY), ("globex", GLOBEX_KEY)],
    )
    ingest = EventIngest(log, TOPICS, clock)
    ctx = ApiContext(
        stores=stores,
        clock=clock,
        keys=keys,
        controls=RunControls(log, TOPICS, stores, clock, ingest.send),
        outbox=Outbox(log, TOPICS, stores),
    )
    hub = Hub()
    tokens = TokenIssuer(keys)
    app = build_app(
        ctx,
        ingest,
        AppSync(log, TOPICS, stores, clock),
        extra_routes=realtime_routes(ctx, LocalBus(hub), tokens),
    )
    globex_sub = hub.subscribe("globex", [(name, "status") for name in GLOBEX_NAMES])
    for account in ("acme", "globex"):
        await stores.put_app(
            AppRecord(app_id="shop", account_id=account, url="http://a/", function_ids=["shop-pay"])
        )
        await stores.put_function(
            FunctionRecord(
                fn_id="shop-pay", account_id=account, app_id="shop", name="pay", config={}
            )
        )
    event = {"name": "shop/paid", "data": {"order": MARK}, "id": MARK, "ts": NOW}
    await stores.put_event(
        Event(
            internal_id=EVENT_ID,
            account_id="globex",
            name="shop/paid",
            payload=event,
            received_ms=NOW,
        )
    )
    run = RunState(
        run_id=RUN_ID,
        account_id="globex",
        fn_id="shop-pay",
        app_id="shop",
        events=[event],
        event_ids=[EVENT_ID],
        started_ms=NOW,
        status="running",
        output_token=MARK,
        stack=["h0"],
        discover_seq=1,
        discover_pending=True,
        attempts={"": 0},
    )
    await stores.create_run(run, {"h0": b'{"data":"' + MARK.encode() + b'"}'})
    await stores.link_run(EVENT_ID, RUN_ID)
    ended = RunState(
        run_id=ENDED_ID,
        account_id="globex",
        fn_id="shop-pay",
        app_id="shop",
        started_ms=NOW,
        ended_ms=NOW + 1,
        status="completed",
        output={"secret": MARK},
    )
    await stores.create_run(ended)
    # globex's run waits for a signal named as acme's would be.
    pause = Pause(
        pause_id=signals.pause_id(RUN_ID, "h1"),
        account_id="globex",
        run_id=RUN_ID,
        fn_id="shop-pay",
        kind="signal",
        event_name=SIGNAL,
        step_hash="h1",
        expires_ms=NOW + 3_600_000,
        since_ms=NOW,
    )
    await stores.put_pause(pause, 0)
    key = signals.signal_key("globex", SIGNAL)
    await stores.claim(key, pause.pause_id, 3_600_000, NOW)
    assert await stores.holder(key, NOW) == pause.pause_id
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://headrace") as http:
        yield Api(http, stores, log, globex_sub, tokens)
    db.close()


GLOBEX_NAMES = [RUN_ID, ENDED_ID, EVENT_ID, SIGNAL, "shop", "shop-pay"]
# Ids of every shape, and globex's own.
IDS = st.one_of(
    st.sampled_from(GLOBEX_NAMES),
    # What can stand in a URL path segment as a client sends it.
    st.text(
        st.characters(codec="utf-8", min_codepoint=0x21, exclude_characters="/?#%\x7f"),
        min_size=1,
        max_size=40,
    ),
)


def _requests(some_id: str) -> list[tuple[str, str, Any]]:
    qi_id = queue_item_id(Call(account_id="globex", run_id=some_id, seq=1), 0, 0)
    step = {"op": "StepRun", "id": "h9", "name": "x", "displayName": "x", "data": 1}
    gql = [
        ("String!", "run(runID: $id) { id status output }"),
        ("String!", "runTrigger(runID: $id) { eventName payloads }"),
        ("ID!", "event(query: {eventId: $id}) { name }"),
        ("ULID!", "cancelRun(runID: $id) { id }"),
        ("ULID!", "rerun(runID: $id)"),
        ("ULID!", "replayRun(runID: $id)"),
    ]
    return [
        ("GET", f"/v1/runs/{some_id}", None),
        ("DELETE", f"/v1/runs/{some_id}", None),
        ("GET", f"/v1/events/{some_id}", None),
        ("GET", f"/v1/events/{some_id}/runs", None),
        ("GET", f"/v0/runs/{some_id}/batch", None),
        ("GET", f"/v0/runs/{some_id}/actions", None),
        ("GET", f"/v1/checkpoint/{some_id}/output?token=guessed", None),
        (
            "POST",
            f"/v1/checkpoint/{some_id}/async",
            {
                "run_id": some_id,
                "fn_id": "shop-pay",
                "qi_id": qi_id,
                "request_id": "r",
                "request_started_at": 1,
                "steps": [step],
                "ts": 1,
            },
        ),
        (
            "POST",
            f"/v1/checkpoint/{some_id}/steps",
            {"run_id": some_id, "fn_id": "shop-pay", "app_id": "shop", "steps": [step]},
        ),
        ("POST", "/v1/signals", {"signal": some_id, "data": {"by": "acme"}}),
        (
            "POST",
            f"/v1/realtime/publish?channel={quote(some_id, safe='')}&topic=status",
            {"by": "acme"},
        ),
        ("POST", "/v1/realtime/token", [{"channel": some_id, "name": "status"}]),
        (
            "POST",
            "/v1/cancellations",
            {"app_id": "shop", "function_id": some_id, "started_before": "2100-01-01T00:00:00Z"},
        ),
        *(
            (
                "POST",
                "/v0/gql",
                {
                    "query": f"{'mutation' if kind == 'ULID!' else 'query'}($id: {kind}) {{ {f} }}",
                    "variables": {"id": some_id},
                },
            )
            for kind, f in gql
        ),
    ]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(some_id=IDS)
async def test_one_account_s_key_never_sees_nor_changes_another_account_s_records(
    api: Api, some_id: str
) -> None:
    auth = {"Authorization": f"Bearer {hashed_signing_key(ACME_KEY)}"}
    for method, path, body in _requests(some_id):
        answer = await api.http.request(method, path, json=body, headers=auth)
        assert answer.status_code < 500, (method, path, answer.text)
        # Refusals may quote the id asked about; nothing else of globex's may show.
        shown = answer.text.replace(some_id, "")
        if path == "/v0/gql" and some_id in (RUN_ID, ENDED_ID, EVENT_ID):
            # Refused for the account, not for the query's shape.
            assert "not found" in answer.text, (body, answer.text)
        assert MARK not in shown and RUN_ID not in shown, (method, path, answer.text)
        if path == "/v1/realtime/token" and answer.status_code == 201:
            # A token for acme's channel of that name: it grants nothing of globex's.
            assert api.tokens.verify(answer.json()["jwt"], NOW).account == "acme"

    assert api.globex_sub.frames.empty()
    # globex's run, its memos, its signal wait are as they were; no record was published
    # for it (a cancellation, a resume, a rerun's start).
    found = await api.stores.get_run_and_memos(RUN_ID)
    assert found is not None
    run, memos = found
    assert (run.status, run.stack, set(memos)) == ("running", ["h0"], {"h0"})
    assert await api.stores.holder(signals.signal_key("globex", SIGNAL), NOW) is not None
    assert await api.stores.runs_for_event(EVENT_ID) == [RUN_ID]
    # No rerun or replay started, in either account.
    assert {r.run_id for r in await api.stores.list_runs("globex", limit=10)} == {RUN_ID, ENDED_ID}
    assert await api.stores.list_runs("acme", limit=10) == []
    for topic in (TOPICS.schedule, TOPICS.events, TOPICS.work):
        published = api.log.newest(topic, 1000)
        assert [r for r in published if r.key == "globex" or RUN_ID.encode() in r.value] == []
