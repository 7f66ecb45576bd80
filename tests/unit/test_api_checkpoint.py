"""`POST /v1/checkpoint/{run_id}/async`: what it stores, and what it refuses without storing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from headrace.adapters.sqlite.stores import SqliteStores
from headrace.api.checkpoint import checkpoint_routes
from headrace.api.context import ApiContext
from headrace.api.gql.trace import trace_spans
from headrace.core.clock import FakeClock
from headrace.messages.records import Call
from headrace.messages.state import RunState
from headrace.protocol.accounts import AccountKeys
from headrace.protocol.checkpoint import queue_item_id
from headrace.protocol.signing import hashed_signing_key
from headrace.runtime.ownership import Ownership

RUN_ID = "01JRUN0000000000000000000A"
KEY = "signkey-prod-123abc"
OTHER_KEY = "signkey-prod-456def"
DISCOVERY = Call(account_id="default", run_id=RUN_ID, seq=2)


@pytest.fixture
async def client(stores: SqliteStores) -> AsyncIterator[httpx.AsyncClient]:
    keys = AccountKeys.of(None, KEY, [("other", OTHER_KEY)])
    ctx = ApiContext(stores=stores, clock=FakeClock(), keys=keys)
    app = Starlette(routes=checkpoint_routes(ctx))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://headrace") as http:
        yield http


async def _put_run(stores: SqliteStores, **fields: Any) -> None:
    values: dict[str, Any] = {
        "run_id": RUN_ID,
        "account_id": "default",
        "fn_id": "app-fn",
        "app_id": "app",
        "stack": ["h0"],
        "discover_seq": 2,
        "discover_pending": True,
        "attempts": {"": 0},
        "last_record": "3:17",
        "owner_epoch": 4,
    }
    values.update(fields)
    await stores.create_run(RunState(**values), {"h0": b'{"data":0}'})


def _checkpoint(call: Call = DISCOVERY, epoch: int = 4, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "run_id": RUN_ID,
        "fn_id": "app-fn",
        "qi_id": queue_item_id(call, 0, epoch),
        "request_id": "req",
        "request_started_at": 1,
        "steps": [{"op": "StepRun", "id": "h1", "name": "one", "displayName": "one", "data": 1}],
        "ts": 1,
    }
    body.update(fields)
    return body


async def _post(
    client: httpx.AsyncClient, body: Any, key: str | None = KEY, run_id: str = RUN_ID
) -> httpx.Response:
    headers = {"authorization": f"Bearer {hashed_signing_key(key)}"} if key else {}
    content = body if isinstance(body, bytes) else None
    return await client.post(
        f"/v1/checkpoint/{run_id}/async",
        headers=headers,
        content=content,
        json=None if content is not None else body,
    )


async def test_a_checkpointed_step_is_stored_as_a_memo_of_the_running_call(
    client: httpx.AsyncClient, stores: SqliteStores
) -> None:
    await _put_run(stores)
    response = await _post(client, _checkpoint())
    assert response.status_code == 200, response.text

    found = await stores.get_run_and_memos(RUN_ID)
    assert found is not None
    run, memos = found
    assert memos == {"h0": b'{"data":0}', "h1": b'{"data":1}'}
    assert run.stack == ["h0", "h1"] and run.version == 2
    # Still the executor's run: its last record and epoch, and the call still pending.
    assert (run.last_record, run.owner_epoch, run.discover_pending) == ("3:17", 4, True)
    history = await stores.list_history(RUN_ID)
    assert [(h.kind, h.step_name) for h in history] == [("step.completed", "one")]
    assert [h.entry_id for h in run.outbox_history] == [h.entry_id for h in history]

    # The SDK's retry of the same POST stores nothing more.
    assert (await _post(client, _checkpoint())).status_code == 200
    again = await stores.get_run_and_memos(RUN_ID)
    assert again is not None and again[0].version == 2


async def _nothing_stored(stores: SqliteStores) -> None:
    found = await stores.get_run_and_memos(RUN_ID)
    assert found is not None
    assert (found[0].version, found[1]) == (1, {"h0": b'{"data":0}'})
    assert await stores.list_history(RUN_ID) == []


@pytest.mark.parametrize(
    ("key", "body", "status"),
    [
        (None, _checkpoint(), 401),
        ("signkey-prod-000000", _checkpoint(), 401),
        (OTHER_KEY, _checkpoint(), 404),
        (KEY, b"{not json", 400),
        (KEY, _checkpoint(steps="h1"), 400),
        (KEY, _checkpoint(qi_id="whatever"), 400),
        (KEY, _checkpoint(fn_id="app-other"), 400),
        (KEY, _checkpoint(steps=[{"op": "Sleep", "id": "h1", "opts": {"duration": "1s"}}]), 400),
        # A call no longer current: an older discovery, an older attempt, a step call.
        (KEY, _checkpoint(Call(account_id="", run_id=RUN_ID, seq=1)), 409),
        (KEY, _checkpoint(Call(account_id="", run_id=RUN_ID, seq=2, attempt=1)), 409),
        (KEY, _checkpoint(Call(account_id="", run_id=RUN_ID, target="h1")), 409),
    ],
)
async def test_a_bad_checkpoint_gets_a_4xx_and_stores_nothing(
    client: httpx.AsyncClient, stores: SqliteStores, key: str | None, body: Any, status: int
) -> None:
    await _put_run(stores)
    response = await _post(client, body, key)
    assert response.status_code == status, response.text
    assert response.json()["status"] == status
    await _nothing_stored(stores)


async def test_a_checkpoint_of_an_unknown_or_ended_run_stores_nothing(
    client: httpx.AsyncClient, stores: SqliteStores
) -> None:
    other = "01JRUN0000000000000000000B"
    response = await _post(client, _checkpoint(run_id=other), run_id=other)
    assert response.status_code == 404
    assert await stores.get_run(other) is None

    await _put_run(stores, status="cancelled", discover_pending=False)
    assert (await _post(client, _checkpoint())).status_code == 409
    await _nothing_stored(stores)


async def _take_partition(stores: SqliteStores, times: int) -> None:
    """Executors taking partition 0 `times` times: its epoch counter is then at `times`."""
    ownership = Ownership(stores, FakeClock())
    for _ in range(times):
        await ownership.on_assigned({0})


async def test_a_call_made_by_a_former_owner_is_refused_once_a_newer_one_stamped_the_run(
    client: httpx.AsyncClient, stores: SqliteStores
) -> None:
    """The engine restarted while the app ran a call (epoch 4); the new owner (epoch 5) made the
    call again. Its first checkpoint stamps the run, even with no new step; from then on the
    first call's checkpoints get 409, and the SDK stops it."""
    await _put_run(stores)
    await _take_partition(stores, 5)
    assert (await _post(client, _checkpoint(epoch=4))).status_code == 200

    again = _checkpoint(epoch=5)
    assert (await _post(client, again)).status_code == 200
    run = await stores.get_run(RUN_ID)
    assert run is not None and (run.owner_epoch, run.version) == (5, 3)

    late = _checkpoint(epoch=4, steps=[{"op": "StepRun", "id": "h2", "data": 2}])
    response = await _post(client, late)
    assert response.status_code == 409, response.text
    assert set(await stores.get_memos(RUN_ID)) == {"h0", "h1"}


async def test_an_older_epoch_is_not_refused_while_the_counter_is_behind_it(
    client: httpx.AsyncClient, stores: SqliteStores
) -> None:
    """A counter that expired or was lost starts again at 1: the run's stamp alone must not
    refuse the rightful owner (as the executor decides, ownership.py)."""
    await _put_run(stores)
    await _take_partition(stores, 1)
    response = await _post(client, _checkpoint(epoch=1))
    assert response.status_code == 200, response.text
    run = await stores.get_run(RUN_ID)
    assert run is not None and (run.owner_epoch, run.stack) == (4, ["h0", "h1"])


async def test_a_planned_step_shows_running_in_the_trace_until_its_checkpoint_settles_it(
    client: httpx.AsyncClient, stores: SqliteStores
) -> None:
    await _put_run(stores)
    planned = {"op": "StepPlanned", "id": "h1", "name": "one", "displayName": "one"}
    assert (await _post(client, _checkpoint(steps=[planned]))).status_code == 200

    async def spans() -> list[tuple[str, str, str | None]]:
        run = await stores.get_run(RUN_ID)
        assert run is not None
        views = trace_spans(run, await stores.list_history(RUN_ID))
        return [(s["name"], s["status"], s["endedAt"]) for s in views]

    assert await spans() == [("one", "RUNNING", None)]
    assert set(await stores.get_memos(RUN_ID)) == {"h0"}
    assert (await _post(client, _checkpoint())).status_code == 200
    [(name, status, ended)] = await spans()
    assert (name, status) == ("one", "COMPLETED") and ended is not None
