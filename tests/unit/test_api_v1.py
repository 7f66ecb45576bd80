"""The /v1 REST read API and the /v0/runs/{id}/batch and /actions endpoints the SDKs use."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from headrace.adapters.sqlite.stores import SqliteStores
from headrace.api.context import ApiContext
from headrace.api.sdk_data import sdk_data_routes
from headrace.api.v1 import v1_routes
from headrace.core.clock import FakeClock
from headrace.core.jsonutil import canonical
from headrace.messages.model import Event
from headrace.messages.state import RunState
from headrace.protocol.accounts import AccountKeys
from headrace.protocol.signing import hashed_signing_key

RUN_ID = "01JRUN0000000000000000000A"
SIGNING_KEY = "signkey-prod-123abc"


def _client(
    stores: SqliteStores, signing_key: str | None = None, **other_accounts: str
) -> httpx.AsyncClient:
    keys = AccountKeys.of(None, signing_key, other_accounts.items())
    ctx = ApiContext(stores=stores, clock=FakeClock(), keys=keys)
    app = Starlette(routes=v1_routes(ctx) + sdk_data_routes(ctx))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://headrace")


@pytest.fixture
async def client(stores: SqliteStores) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(stores) as http:
        yield http


def _event(n: int, name: str = "app/a", account: str = "default", **payload: Any) -> Event:
    return Event(
        internal_id=f"01JEVT{n:020d}",
        account_id=account,
        name=name,
        payload={"name": name, "data": {"n": n}, "ts": 1_700_000_000_000 + n, **payload},
        received_ms=1_700_000_000_500 + n,
    )


async def _put_run(stores: SqliteStores, **fields: Any) -> RunState:
    values: dict[str, Any] = {
        "run_id": RUN_ID,
        "account_id": "default",
        "fn_id": "app-fn",
        "app_id": "app",
        "events": [{"name": "app/a", "data": {"n": 0}, "id": "", "ts": 1}],
        "event_ids": [f"01JEVT{0:020d}"],
        "started_ms": 1_700_000_000_100,
    }
    values.update(fields)
    run = RunState(**values)
    await stores.create_run(run)
    return run


# --- /v1/events ---


async def test_list_events_by_name_newest_first(
    client: httpx.AsyncClient, stores: SqliteStores
) -> None:
    await stores.put_event(_event(1, id="user-id-1", user={"u": 1}, v="2024-01-01"))
    await stores.put_event(_event(2))
    await stores.put_event(_event(3, name="app/other"))
    await stores.put_event(_event(4, account="other"))

    response = await client.get("/v1/events", params={"name": "app/a"})

    assert response.status_code == 200
    body = response.json()
    assert [e["internal_id"] for e in body["data"]] == [
        _event(2).internal_id,
        _event(1).internal_id,
    ]
    assert body["data"][1] == {
        "internal_id": _event(1).internal_id,
        "id": "user-id-1",
        "name": "app/a",
        "data": {"n": 1},
        "user": {"u": 1},
        "ts": 1_700_000_000_001,
        "v": "2024-01-01",
        "received_at": "2023-11-14T22:13:20.501Z",
    }
    assert body["data"][0]["id"] == ""
    assert body["metadata"]["fetched_at"].endswith("Z")


async def test_list_events_without_name_and_with_limit(
    client: httpx.AsyncClient, stores: SqliteStores
) -> None:
    for n in range(5):
        await stores.put_event(_event(n, name=f"app/{n}"))

    everything = (await client.get("/v1/events")).json()["data"]
    limited = (await client.get("/v1/events", params={"limit": "2"})).json()["data"]

    assert len(everything) == 5
    assert [e["name"] for e in limited] == ["app/4", "app/3"]


async def test_list_events_rejects_a_bad_limit(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/events", params={"limit": "many"})

    assert response.status_code == 400
    assert response.json()["error"]


async def test_get_event(client: httpx.AsyncClient, stores: SqliteStores) -> None:
    await stores.put_event(_event(1))

    response = await client.get(f"/v1/events/{_event(1).internal_id}")

    assert response.status_code == 200
    assert response.json()["data"]["name"] == "app/a"


@pytest.mark.parametrize("path", ["/v1/events/{id}", "/v1/events/{id}/runs"])
async def test_unknown_or_foreign_event_is_404(
    client: httpx.AsyncClient, stores: SqliteStores, path: str
) -> None:
    await stores.put_event(_event(1, account="other"))

    for event_id in [_event(1).internal_id, "01JNOPE"]:
        response = await client.get(path.format(id=event_id))
        assert response.status_code == 404
        assert response.json() == {"error": f"event not found: {event_id}", "status": 404}


async def test_event_runs(client: httpx.AsyncClient, stores: SqliteStores) -> None:
    event = _event(0)
    await stores.put_event(event)
    await _put_run(stores)
    await stores.link_run(event.internal_id, RUN_ID)
    await stores.link_run(event.internal_id, "01JRUN0000000000000000000B")  # not written yet

    response = await client.get(f"/v1/events/{event.internal_id}/runs")

    assert response.status_code == 200
    assert [r["run_id"] for r in response.json()["data"]] == [RUN_ID]


# --- /v1/runs ---


async def test_get_running_run(client: httpx.AsyncClient, stores: SqliteStores) -> None:
    await _put_run(stores, output={"not": "yet"})

    response = await client.get(f"/v1/runs/{RUN_ID}")

    assert response.status_code == 200
    assert response.json()["data"] == {
        "run_id": RUN_ID,
        "function_id": "app-fn",
        "app_id": "app",
        "status": "Running",
        "event_id": f"01JEVT{0:020d}",
        "run_started_at": "2023-11-14T22:13:20.100Z",
        "ended_at": None,
        "output": None,
    }


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("queued", "Scheduled"),
        ("completed", "Completed"),
        ("failed", "Failed"),
        ("cancelled", "Cancelled"),
    ],
)
async def test_run_statuses(
    client: httpx.AsyncClient, stores: SqliteStores, status: str, expected: str
) -> None:
    await _put_run(stores, status=status, output={"x": 1}, ended_ms=1_700_000_001_000)

    data = (await client.get(f"/v1/runs/{RUN_ID}")).json()["data"]

    assert data["status"] == expected
    if status != "queued":
        assert data["output"] == {"x": 1}
        assert data["ended_at"] == "2023-11-14T22:13:21.000Z"


async def test_unknown_or_foreign_run_is_404(
    client: httpx.AsyncClient, stores: SqliteStores
) -> None:
    await _put_run(stores, account_id="other")

    response = await client.get(f"/v1/runs/{RUN_ID}")

    assert response.status_code == 404
    assert response.json() == {"error": f"run not found: {RUN_ID}", "status": 404}


# --- /v0/runs/{id}/batch and /actions ---


async def test_batch_is_the_runs_trigger_events(
    client: httpx.AsyncClient, stores: SqliteStores
) -> None:
    events = [{"name": "app/a", "data": {"n": n}, "id": f"e{n}", "ts": n + 1} for n in range(8)]
    await _put_run(stores, events=events)

    response = await client.get(f"/v0/runs/{RUN_ID}/batch")

    assert response.status_code == 200
    assert response.json() == events


async def test_actions_are_the_runs_memos(client: httpx.AsyncClient, stores: SqliteStores) -> None:
    run = await _put_run(stores)
    memos = {
        "a" * 40: {"data": {"big": "x" * 100_000}},
        "b" * 40: None,
        "c" * 40: {"error": {"name": "E", "message": "m"}},
        "d" * 40: {"name": "app/fulfil", "data": {}},
    }
    await stores.save_run(run, {h: canonical(m) for h, m in memos.items()})

    response = await client.get(f"/v0/runs/{RUN_ID}/actions")

    assert response.status_code == 200
    assert response.json() == memos


async def test_actions_of_a_run_without_memos_is_an_empty_object(
    client: httpx.AsyncClient, stores: SqliteStores
) -> None:
    await _put_run(stores)

    response = await client.get(f"/v0/runs/{RUN_ID}/actions")

    assert response.json() == {}


@pytest.mark.parametrize("endpoint", ["batch", "actions"])
async def test_sdk_data_of_unknown_run_is_404(client: httpx.AsyncClient, endpoint: str) -> None:
    response = await client.get(f"/v0/runs/{RUN_ID}/{endpoint}")

    assert response.status_code == 404


@pytest.mark.parametrize("endpoint", ["batch", "actions"])
async def test_sdk_data_needs_the_signing_key_when_there_is_one(
    stores: SqliteStores, endpoint: str
) -> None:
    await _put_run(stores)
    hashed = hashed_signing_key(SIGNING_KEY)
    path = f"/v0/runs/{RUN_ID}/{endpoint}"

    async with _client(stores, signing_key=SIGNING_KEY) as http:
        missing = await http.get(path)
        wrong = await http.get(path, headers={"Authorization": "Bearer 00ff"})
        python_sdk = await http.get(path, headers={"Authorization": f"Bearer {hashed}"})
        js_sdk = await http.get(path, headers={"Authorization": f"Bearer signkey-prod-{hashed}"})

    assert missing.status_code == 401
    assert wrong.status_code == 401
    assert python_sdk.status_code == 200
    assert js_sdk.status_code == 200


async def test_each_signing_key_reads_its_own_account_only(stores: SqliteStores) -> None:
    other_key = "signkey-prod-456def"
    await _put_run(stores)
    await stores.put_event(_event(1))
    await stores.put_event(_event(2, account="globex"))
    mine = {"Authorization": f"Bearer {hashed_signing_key(SIGNING_KEY)}"}
    theirs = {"Authorization": f"Bearer {hashed_signing_key(other_key)}"}

    async with _client(stores, signing_key=SIGNING_KEY, globex=other_key) as http:
        own_run = await http.get(f"/v1/runs/{RUN_ID}", headers=mine)
        foreign_run = await http.get(f"/v1/runs/{RUN_ID}", headers=theirs)
        foreign_memos = await http.get(f"/v0/runs/{RUN_ID}/actions", headers=theirs)
        own_events = await http.get("/v1/events", headers=mine)
        foreign_events = await http.get("/v1/events", headers=theirs)
        anonymous = await http.get("/v1/events")

    assert own_run.status_code == 200
    assert foreign_run.status_code == 404 and foreign_memos.status_code == 404
    assert [e["data"]["n"] for e in own_events.json()["data"]] == [1]
    assert [e["data"]["n"] for e in foreign_events.json()["data"]] == [2]
    assert anonymous.status_code == 401
