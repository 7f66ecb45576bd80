"""Durable Endpoints' sync checkpoints (api/endpoint.py): each account sees its own runs only,
and a step error in the endpoint's request hands the run to the engine as a retry of the step."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from headrace.services.executor.outbox import Outbox
from starlette.applications import Starlette

from headrace.adapters.inproc.log import InProcLog
from headrace.adapters.sqlite.stores import SqliteStores
from headrace.api.context import ApiContext
from headrace.api.endpoint import endpoint_routes
from headrace.core.clock import FakeClock
from headrace.messages.records import SCHEDULE_CODEC, Call, Enqueue
from headrace.messages.topics import Topics
from headrace.protocol.accounts import AccountKeys
from headrace.protocol.signing import hashed_signing_key

RUN_ID = "01JRVN0000000000000000000A"
KEY = "signkey-prod-123abc"
OTHER_KEY = "signkey-prod-456def"
TOPICS = Topics(prefix="t.")


@pytest.fixture
def log() -> InProcLog:
    return InProcLog(partitions=1)


@pytest.fixture
async def client(stores: SqliteStores, log: InProcLog) -> AsyncIterator[httpx.AsyncClient]:
    keys = AccountKeys.of(None, KEY, [("other", OTHER_KEY)])
    ctx = ApiContext(
        stores=stores, clock=FakeClock(), keys=keys, outbox=Outbox(log, TOPICS, stores)
    )
    transport = httpx.ASGITransport(app=Starlette(routes=endpoint_routes(ctx)))
    async with httpx.AsyncClient(transport=transport, base_url="http://headrace") as http:
        yield http


def _auth(key: str | None) -> dict[str, str]:
    return {"authorization": f"Bearer {hashed_signing_key(key)}"} if key else {}


def _new_run(steps: list[dict[str, Any]]) -> dict[str, Any]:
    data = {"domain": "http://app:3000", "method": "POST", "path": "/api/x", "body": "{}"}
    return {
        "run_id": RUN_ID,
        "event": {"name": "inngest/http.request", "data": data},
        "steps": steps,
        "request_version": 2,
        "retries": 2,
    }


async def test_runs_are_created_and_checkpointed_for_the_key_s_account_only(
    client: httpx.AsyncClient, stores: SqliteStores
) -> None:
    step = {"op": "StepRun", "id": "h1", "data": 1}
    unsigned = await client.post("/v1/checkpoint", json=_new_run([step]))
    assert unsigned.status_code == 401
    assert await stores.get_run(RUN_ID) is None

    created = await client.post("/v1/checkpoint", json=_new_run([step]), headers=_auth(KEY))
    assert created.status_code == 200, created.text
    data = created.json()["data"]
    run = await stores.get_run(RUN_ID)
    assert run is not None and run.account_id == "default" and run.fn_id == data["fn_id"]
    fn = await stores.get_function("default", data["fn_id"])
    assert fn is not None and fn.name == "POST /api/x"
    assert await stores.get_function("other", data["fn_id"]) is None

    ids = {"run_id": RUN_ID, "fn_id": data["fn_id"], "app_id": data["app_id"]}
    body = {**ids, "steps": [{"op": "StepRun", "id": "h2", "data": 2}]}
    foreign = await client.post(
        f"/v1/checkpoint/{RUN_ID}/steps", json=body, headers=_auth(OTHER_KEY)
    )
    assert foreign.status_code == 404
    assert set(await stores.get_memos(RUN_ID)) == {"h1"}


async def test_a_step_error_in_the_request_is_retried_by_the_engine(
    client: httpx.AsyncClient, stores: SqliteStores, log: InProcLog
) -> None:
    created = await client.post(
        "/v1/checkpoint",
        json=_new_run([{"op": "StepRun", "id": "h1", "data": 1}]),
        headers=_auth(KEY),
    )
    data = created.json()["data"]
    error = {"op": "StepError", "id": "h2", "error": {"name": "Error", "message": "boom"}}
    ids = {"run_id": RUN_ID, "fn_id": data["fn_id"], "app_id": data["app_id"]}
    handed = await client.post(
        f"/v1/checkpoint/{RUN_ID}/steps", json={**ids, "steps": [error]}, headers=_auth(KEY)
    )
    assert handed.status_code == 200, handed.text

    consumer = log.consumer(TOPICS.schedule, "reader")
    await consumer.start()
    records = [SCHEDULE_CODEC.decode(r.value) for r in await consumer.poll(10, timeout_ms=100)]
    await consumer.stop()
    calls = [r.item for r in records if isinstance(r, Enqueue) and isinstance(r.item, Call)]
    assert [(c.target, c.attempt) for c in calls] == [("h2", 1)]
    run = await stores.get_run(RUN_ID)
    assert run is not None and run.status == "running" and run.planned == {"h2": "step"}
    # The request has handed the run over: its later checkpoints are refused.
    late = await client.post(
        f"/v1/checkpoint/{RUN_ID}/steps",
        json={**ids, "steps": [{"op": "StepRun", "id": "h3", "data": 3}]},
        headers=_auth(KEY),
    )
    assert late.status_code == 409
