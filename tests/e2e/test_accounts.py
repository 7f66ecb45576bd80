"""Accounts and signing keys, with production-mode apps of the official SDK (which refuse any
call whose signature does not verify with their key).

In distributed mode, two accounts run an app with the same id and the same event name side by
side: each account's events start only its own functions, each call is signed with its own key,
and no key reads or syncs into another account. In dev mode, a signing key makes the dev server
a "cloud" server whose calls production apps accept."""

from __future__ import annotations

import dataclasses
import datetime
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import inngest
import pytest

from headrace.messages.records import Call
from headrace.protocol.checkpoint import queue_item_id
from headrace.protocol.signing import hashed_signing_key
from headrace.testing.cluster import TEST_DASHBOARD_TOKEN, cluster_test_settings, start_cluster
from headrace.testing.dev import TEST_RETRY_INTERVAL_S, EngineHandle, eventually, start_dev
from headrace.testing.sdk_app import ServedApp, make_client

ACME_KEY = "signkey-prod-" + "a1" * 32
GLOBEX_KEY = "signkey-prod-" + "b2" * 32
STRANGER_KEY = "signkey-prod-" + "c3" * 32


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {hashed_signing_key(key)}"}


def _shop(
    engine: EngineHandle, signing_key: str, owner: str
) -> tuple[inngest.Inngest, inngest.Function[Any]]:
    """The same app (id "shop", one function on "shop/order.placed") as each account deploys it;
    its step says whose app ran it."""
    client = make_client(engine.url, "shop", signing_key=signing_key)

    @client.create_function(
        fn_id="confirm", trigger=inngest.TriggerEvent(event="shop/order.placed")
    )
    async def confirm(ctx: inngest.Context) -> str:
        order = ctx.event.data["order"]
        return await ctx.step.run("confirm", lambda: f"{owner} confirmed {order}")

    return client, confirm


@pytest.fixture
async def two_accounts(
    kafka_bootstrap: str,
    cassandra_contact: tuple[str, int],
    drop_keyspace: Callable[[str], None],
    tmp_path: Path,
) -> AsyncIterator[EngineHandle]:
    name = f"accounts_{uuid.uuid4().hex[:8]}"
    settings = cluster_test_settings(
        kafka_bootstrap,
        cassandra_contact,
        keyspace=name,
        partitions=2,
        retry_interval_s=TEST_RETRY_INTERVAL_S,
    )
    env = {
        "HEADRACE_EVENT_KEYS": "acme-key=acme,globex-key=globex",
        "HEADRACE_SIGNING_KEYS": f"acme={ACME_KEY},globex={GLOBEX_KEY}",
    }
    counts = {"ingest": 1, "runner": 1, "scheduler": 1, "executor": 1}
    _, engine = await start_cluster(settings, tmp_path / "logs", counts=counts, env=env)
    try:
        yield engine
    finally:
        await engine.stop()
        drop_keyspace(name)


@pytest.mark.kafka
@pytest.mark.cassandra
async def test_two_accounts_run_the_same_app_apart(two_accounts: EngineHandle) -> None:
    engine = two_accounts
    acme_client, acme_fn = _shop(engine, ACME_KEY, "acme")
    globex_client, globex_fn = _shop(engine, GLOBEX_KEY, "globex")
    stranger_client, stranger_fn = _shop(engine, STRANGER_KEY, "stranger")
    with (
        ServedApp(acme_client, [acme_fn]) as acme_app,
        ServedApp(globex_client, [globex_fn]) as globex_app,
        ServedApp(stranger_client, [stranger_fn]) as stranger_app,
    ):
        await engine.sync(acme_app.url, "shop", server_kind="cloud", account="acme")
        await engine.sync(globex_app.url, "shop", server_kind="cloud", account="globex")
        async with httpx.AsyncClient() as http:
            # A key no account has: the SDK's registration is refused, and so its sync.
            refused = await http.put(stranger_app.url, headers={"x-inngest-server-kind": "cloud"})
            unknown_key = await http.post(f"{engine.url}/e/no-such-key", json={"name": "x"})
        [acme_event] = await engine.send(
            {"name": "shop/order.placed", "data": {"order": "A-1"}}, key="acme-key"
        )
        [globex_event] = await engine.send(
            {"name": "shop/order.placed", "data": {"order": "G-1"}}, key="globex-key"
        )
        acme_run = await engine.finished(await engine.run_of_event(acme_event), timeout=30)
        globex_run = await engine.finished(await engine.run_of_event(globex_event), timeout=30)

    # The SDK answers the PUT itself and logs the refusal; what matters is that no account got
    # the stranger's app.
    assert "signing key" in refused.text, refused.text
    assert await engine.stores.get_app("default", "shop") is None
    assert unknown_key.status_code == 401
    app = await engine.stores.get_app("acme", "shop")
    assert app is not None and app.url.startswith(acme_app.url)
    app = await engine.stores.get_app("globex", "shop")
    assert app is not None and app.url.startswith(globex_app.url)
    # Each event started one run, in its own account, on its own app, signed with its own key.
    assert (acme_run.account_id, acme_run.status, acme_run.output) == (
        "acme",
        "completed",
        "acme confirmed A-1",
    )
    assert (globex_run.account_id, globex_run.status, globex_run.output) == (
        "globex",
        "completed",
        "globex confirmed G-1",
    )
    assert await engine.stores.runs_for_event(acme_event) == [acme_run.run_id]
    async with httpx.AsyncClient(base_url=engine.url) as http:
        own = await http.get(f"/v1/runs/{acme_run.run_id}", headers=_bearer(ACME_KEY))
        foreign = await http.get(f"/v1/runs/{acme_run.run_id}", headers=_bearer(GLOBEX_KEY))
        anonymous = await http.get(f"/v1/runs/{acme_run.run_id}")
        cancel = await http.delete(f"/v1/runs/{acme_run.run_id}", headers=_bearer(GLOBEX_KEY))
        register = await http.post(f"{engine.url}/fn/register", json={})
    assert own.status_code == 200 and own.json()["data"]["output"] == "acme confirmed A-1"
    assert foreign.status_code == 404
    assert anonymous.status_code == 401 and register.status_code == 401
    assert cancel.status_code == 404

    # The operator's dashboard shows one account at a time, picked from those with keys.
    async with httpx.AsyncClient(base_url=f"{engine.url}/dashboard") as dash:
        await dash.post("/login", data={"token": TEST_DASHBOARD_TOKEN, "next": "/dashboard"})
        before = await dash.get("/runs")
        picked = await dash.post("/account", data={"account": "acme"}, follow_redirects=True)
        acme_page = await dash.get(f"/runs/{acme_run.run_id}")
        globex_page = await dash.get(f"/runs/{globex_run.run_id}")
        bogus = await dash.post("/account", data={"account": "nobody"}, follow_redirects=True)
    assert acme_run.run_id not in before.text and "globex" in before.text
    assert acme_run.run_id in picked.text and globex_run.run_id not in picked.text
    assert acme_page.status_code == 200 and "acme confirmed A-1" in acme_page.text
    assert globex_page.status_code == 404
    assert "no such account: nobody" in bogus.text


async def test_a_dev_server_with_a_signing_key_serves_production_apps(tmp_path: Path) -> None:
    engine = await start_dev(tmp_path / "state", signing_key=ACME_KEY)
    try:
        client, fn = _shop(engine, ACME_KEY, "acme")
        with ServedApp(client, [fn], keep_request_headers=True) as app:
            await engine.sync(app.url, "shop", server_kind="cloud")
            [event] = await engine.send({"name": "shop/order.placed", "data": {"order": "D-1"}})
            run = await engine.finished(await engine.run_of_event(event))
            calls = [h for h in app.request_headers if "x-run-id" in h]
            signatures = [h.get("x-inngest-signature") for h in calls]
        async with httpx.AsyncClient(base_url=engine.url) as http:
            anonymous = await http.get(f"/v1/runs/{run.run_id}")
            signed = await http.get(f"/v1/runs/{run.run_id}", headers=_bearer(ACME_KEY))
    finally:
        await engine.stop()

    assert (run.status, run.output) == ("completed", "acme confirmed D-1")
    assert signatures and all(signatures)
    assert anonymous.status_code == 401 and signed.status_code == 200


def _depot(
    engine: EngineHandle, signing_key: str, owner: str
) -> tuple[inngest.Inngest, inngest.Function[Any]]:
    """The same app (id "depot") in each account: its run waits for "depot/release" of its
    order and returns who released it."""
    client = make_client(engine.url, "depot", signing_key=signing_key)

    @client.create_function(fn_id="hold", trigger=inngest.TriggerEvent(event="depot/held"))
    async def hold(ctx: inngest.Context) -> object:
        await ctx.step.run("note", lambda: f"{owner} holds {ctx.event.data['order']}")
        release = await ctx.step.wait_for_event(
            "release",
            event="depot/release",
            if_exp="async.data.order == event.data.order",
            timeout=datetime.timedelta(minutes=5),
        )
        return None if release is None else release.data["by"]

    return client, hold


@dataclasses.dataclass(frozen=True)
class Tenant:
    name: str
    signing_key: str
    event_key: str
    order: str
    event_id: str = ""
    run_id: str = ""


async def _foreign_attempts(http: httpx.AsyncClient, me: Tenant, other: Tenant) -> list[str]:
    """Every route that takes an id, with my key on the other account's ids: what each
    answered, where it did not refuse."""
    auth = _bearer(me.signing_key)
    run, event = other.run_id, other.event_id
    qi_id = queue_item_id(Call(account_id=other.name, run_id=run, seq=1), 0, 0)
    step = {"op": "StepRun", "id": "h1", "name": "x", "displayName": "x", "data": 1}
    checkpoint = {
        "run_id": run,
        "fn_id": "depot-hold",
        "qi_id": qi_id,
        "request_id": "r",
        "request_started_at": 1,
        "steps": [step],
        "ts": 1,
    }
    endpoint_steps = {"run_id": run, "fn_id": "depot-hold", "app_id": "depot", "steps": [step]}
    gql = [
        ("query($id: String!) { run(runID: $id) { id status output } }", run),
        ("query($id: String!) { runTrigger(runID: $id) { payloads } }", run),
        ("query($id: ID!) { event(query: {eventId: $id}) { name } }", event),
        ("mutation($id: ULID!) { cancelRun(runID: $id) { id } }", run),
        ("mutation($id: ULID!) { rerun(runID: $id) }", run),
        ("mutation($id: ULID!) { replayRun(runID: $id) }", run),
    ]
    answers = {
        "GET run": await http.get(f"/v1/runs/{run}", headers=auth),
        "GET event": await http.get(f"/v1/events/{event}", headers=auth),
        "GET event runs": await http.get(f"/v1/events/{event}/runs", headers=auth),
        "GET batch": await http.get(f"/v0/runs/{run}/batch", headers=auth),
        "GET actions": await http.get(f"/v0/runs/{run}/actions", headers=auth),
        "DELETE run": await http.delete(f"/v1/runs/{run}", headers=auth),
        "async checkpoint": await http.post(
            f"/v1/checkpoint/{run}/async", json=checkpoint, headers=auth
        ),
        "endpoint steps": await http.post(
            f"/v1/checkpoint/{run}/steps", json=endpoint_steps, headers=auth
        ),
        "endpoint output": await http.get(f"/v1/http/runs/{run}/output?token=x", headers=auth),
    }
    problems = [
        f"{name}: {a.status_code} {a.text}"
        for name, a in answers.items()
        if a.status_code not in (401, 404)
    ]
    for query, some_id in gql:
        answer = await http.post(
            "/v0/gql", json={"query": query, "variables": {"id": some_id}}, headers=auth
        )
        body = answer.json()
        # Refused for the account ("not found"), not for the query's shape.
        refused = body.get("errors") and "not found" in body["errors"][0]["message"]
        if not refused or any((body.get("data") or {}).values()):
            problems.append(f"gql {query}: {answer.text}")
    # My cancellation of the function both accounts have, aimed by its expression at the
    # other's run: it cancels none of theirs.
    cancellation = await http.post(
        "/v1/cancellations",
        json={
            "app_id": "depot",
            "function_id": "hold",
            "started_before": "2100-01-01T00:00:00Z",
            "if": f"event.data.order == '{other.order}'",
        },
        headers=auth,
    )
    if cancellation.json()["data"]["cancelled_run_ids"] != []:
        problems.append(f"cancellation: {cancellation.text}")
    return problems


@pytest.mark.kafka
@pytest.mark.cassandra
async def test_no_key_reads_cancels_reruns_or_resumes_another_account_s_runs(
    two_accounts: EngineHandle,
) -> None:
    engine = two_accounts
    acme = Tenant("acme", ACME_KEY, "acme-key", "A-7")
    globex = Tenant("globex", GLOBEX_KEY, "globex-key", "G-7")
    acme_client, acme_fn = _depot(engine, ACME_KEY, "acme")
    globex_client, globex_fn = _depot(engine, GLOBEX_KEY, "globex")
    with (
        ServedApp(acme_client, [acme_fn]) as acme_app,
        ServedApp(globex_client, [globex_fn]) as globex_app,
    ):
        await engine.sync(acme_app.url, "depot", server_kind="cloud", account="acme")
        await engine.sync(globex_app.url, "depot", server_kind="cloud", account="globex")
        tenants = []
        for tenant in (acme, globex):
            [event_id] = await engine.send(
                {"name": "depot/held", "data": {"order": tenant.order}}, key=tenant.event_key
            )
            run_id = await engine.run_of_event(event_id, timeout=30)
            tenants.append(dataclasses.replace(tenant, event_id=event_id, run_id=run_id))
        acme, globex = tenants
        for tenant in tenants:

            async def waiting(run_id: str = tenant.run_id) -> bool:
                return "step.waiting" in [h.kind for h in await engine.history(run_id)]

            await eventually(waiting, timeout=30, what=f"{tenant.name}'s run to wait")

        async with httpx.AsyncClient(base_url=engine.url) as http:
            problems = await _foreign_attempts(http, acme, globex)
            problems += await _foreign_attempts(http, globex, acme)
        # Each sends the release the other's run waits for, with its own event key: an event
        # reaches its own account's waits only.
        for me, other in ((acme, globex), (globex, acme)):
            [crossed] = await engine.send(
                {"name": "depot/release", "data": {"order": other.order, "by": me.name}},
                key=me.event_key,
            )
            await eventually(lambda c=crossed: engine.stores.get_event(c), what="the release")
        for tenant in tenants:
            await engine.send(
                {"name": "depot/release", "data": {"order": tenant.order, "by": tenant.name}},
                key=tenant.event_key,
            )
        ended = {t.name: await engine.finished(t.run_id, timeout=30) for t in tenants}

    assert problems == []
    assert {name: (run.status, run.output) for name, run in ended.items()} == {
        "acme": ("completed", "acme"),
        "globex": ("completed", "globex"),
    }
    # No rerun or replay of another account's run started one.
    for tenant in tenants:
        assert await engine.stores.runs_for_event(tenant.event_id) == [tenant.run_id]
