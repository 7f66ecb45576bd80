"""The /v0/gql read API, queried the way the inngest-py test helper (pkg/test_core) queries it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import inngest
import pytest
from starlette.applications import Starlette

from headrace.adapters.sqlite.stores import SqliteStores
from headrace.api.context import ApiContext
from headrace.api.gql.routes import gql_routes
from headrace.core.clock import FakeClock
from headrace.messages.model import Event
from headrace.messages.state import FunctionRecord, HistoryEntry, RunState

RUN_ID = "01JRUN0000000000000000000A"
EVENT_ID = "01JEVT0000000000000000000A"
TRIGGER = {"name": "app/thing.happened", "data": {"n": 1}, "id": "", "ts": 1_700_000_000_000}

RUN_QUERY = """
query GetRun($run_id: String!) {
  run(runID: $run_id) { output status }
  runTrigger(runID: $run_id) { payloads }
}
"""
SPANS_QUERY = """
query GetHistory($run_id: String!) {
  run(runID: $run_id) { trace { childrenSpans { name outputID status } } }
}
"""
OUTPUT_QUERY = """
query GetOutput($output_id: String!) {
  runTraceSpanOutputByID(outputID: $output_id) { data error { message name stack } }
}
"""
EVENT_QUERY = """
query GetRunFromEventID($event_id: ID!) {
  event(query: {eventId: $event_id}) { id name raw functionRuns { id status } }
}
"""


@pytest.fixture
async def client(stores: SqliteStores) -> AsyncIterator[httpx.AsyncClient]:
    ctx = ApiContext(stores=stores, clock=FakeClock())
    app = Starlette(routes=gql_routes(ctx))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://headrace") as http:
        yield http


async def _put_run(stores: SqliteStores, **fields: Any) -> RunState:
    values: dict[str, Any] = {
        "run_id": RUN_ID,
        "account_id": "default",
        "fn_id": "app-fn",
        "app_id": "app",
        "events": [TRIGGER],
        "event_ids": [EVENT_ID],
        "started_ms": 1_700_000_000_100,
    }
    values.update(fields)
    run = RunState(**values)
    await stores.create_run(run)
    return run


async def _history(stores: SqliteStores, *entries: tuple[str, str, Any]) -> None:
    """Append (kind, step name, output) entries with ids in the given order."""
    for n, (kind, name, output) in enumerate(entries):
        await stores.append_history(
            HistoryEntry(
                entry_id=f"01JENT{n:020d}",
                run_id=RUN_ID,
                ts_ms=1_700_000_001_000 + n,
                kind=kind,
                step_name=name,
                step_hash=f"hash-{name}",
                output=output,
            )
        )


async def _query(
    client: httpx.AsyncClient, query: str, variables: dict[str, Any]
) -> dict[str, Any]:
    response = await client.post("/v0/gql", json={"query": query, "variables": variables})
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


async def test_completed_run_answers_what_wait_for_run_status_reads(
    client: httpx.AsyncClient, stores: SqliteStores
) -> None:
    await _put_run(
        stores, status="completed", output={"foo": {"bar": 1}}, ended_ms=1_700_000_002_000
    )

    body = await _query(client, RUN_QUERY, {"run_id": RUN_ID})

    assert "errors" not in body
    assert body["data"]["run"]["status"] == "COMPLETED"
    assert json.loads(body["data"]["run"]["output"]) == {"foo": {"bar": 1}}
    payloads = body["data"]["runTrigger"]["payloads"]
    assert len(payloads) == 1
    event = inngest.Event.model_validate_json(payloads[0])
    assert event.name == TRIGGER["name"]
    assert event.data == {"n": 1}


@pytest.mark.parametrize(
    ("status", "expected"),
    [("queued", "QUEUED"), ("running", "RUNNING")],
)
async def test_unfinished_run_has_no_output(
    client: httpx.AsyncClient, stores: SqliteStores, status: str, expected: str
) -> None:
    await _put_run(stores, status=status, output={"partial": True})

    body = await _query(client, RUN_QUERY, {"run_id": RUN_ID})

    assert body["data"]["run"] == {"output": None, "status": expected}


@pytest.mark.parametrize(("status", "expected"), [("failed", "FAILED"), ("cancelled", "CANCELLED")])
async def test_ended_run_without_success_outputs_its_error_object(
    client: httpx.AsyncClient, stores: SqliteStores, status: str, expected: str
) -> None:
    error = {"code": "non_retriable_error", "message": "foo", "name": "NonRetriableError"}
    await _put_run(stores, status=status, output=error, ended_ms=1_700_000_002_000)

    body = await _query(client, RUN_QUERY, {"run_id": RUN_ID})

    assert body["data"]["run"]["status"] == expected
    assert json.loads(body["data"]["run"]["output"]) == error


async def test_run_returning_none_outputs_json_null(
    client: httpx.AsyncClient, stores: SqliteStores
) -> None:
    await _put_run(stores, status="completed", output=None, ended_ms=1_700_000_002_000)

    body = await _query(client, RUN_QUERY, {"run_id": RUN_ID})

    assert body["data"]["run"]["output"] == "null"


async def test_unknown_run_is_null_with_an_error_so_the_helper_polls_on(
    client: httpx.AsyncClient,
) -> None:
    body = await _query(client, RUN_QUERY, {"run_id": "01JNOPE"})

    assert body["data"] == {"run": None, "runTrigger": None}
    assert "run not found" in body["errors"][0]["message"]


async def test_run_of_another_account_is_not_found(
    client: httpx.AsyncClient, stores: SqliteStores
) -> None:
    await _put_run(stores, account_id="other")

    body = await _query(client, RUN_QUERY, {"run_id": RUN_ID})

    assert body["data"]["run"] is None
    assert body["errors"]


async def test_all_run_fields(client: httpx.AsyncClient, stores: SqliteStores) -> None:
    await _put_run(stores, status="completed", output=1, ended_ms=1_700_000_002_000)
    query = """
    query ($id: String!) {
      run(runID: $id) {
        id appID functionID status startedAt endedAt triggerIDs output
        trace { spanID name status isRoot startedAt endedAt duration outputID }
      }
    }
    """

    body = await _query(client, query, {"id": RUN_ID})

    assert body["data"]["run"] == {
        "id": RUN_ID,
        "appID": "app",
        "functionID": "app-fn",
        "status": "COMPLETED",
        "startedAt": "2023-11-14T22:13:20.100Z",
        "endedAt": "2023-11-14T22:13:22.000Z",
        "triggerIDs": [EVENT_ID],
        "output": "1",
        "trace": {
            "spanID": RUN_ID,
            "name": "app-fn",
            "status": "COMPLETED",
            "isRoot": True,
            "startedAt": "2023-11-14T22:13:20.100Z",
            "endedAt": "2023-11-14T22:13:22.000Z",
            "duration": 1900,
            "outputID": None,
        },
    }


async def test_spans_are_the_settled_steps_in_order_with_repeated_ids(
    client: httpx.AsyncClient, stores: SqliteStores
) -> None:
    await _put_run(stores)
    await _history(
        stores,
        ("run.started", "", None),
        ("step.completed", "foo", {"data": 0}),
        ("step.errored", "bar", None),
        ("step.sleeping", "nap", {"until": 1}),
        ("step.completed", "nap", None),
        ("step.failed", "bar", {"error": {"name": "MyError", "message": "oh no"}}),
        ("step.completed", "foo", {"data": 1}),
    )

    body = await _query(client, SPANS_QUERY, {"run_id": RUN_ID})

    spans = body["data"]["run"]["trace"]["childrenSpans"]
    assert [(s["name"], s["status"]) for s in spans] == [
        ("foo", "COMPLETED"),
        ("nap", "COMPLETED"),
        ("bar", "FAILED"),
        ("foo", "COMPLETED"),
    ]
    assert spans[0]["outputID"] == f"{RUN_ID}:01JENT{1:020d}"
    assert len({s["outputID"] for s in spans}) == 4


async def test_a_sleep_or_wait_not_settled_yet_is_a_waiting_span_while_the_run_runs(
    client: httpx.AsyncClient, stores: SqliteStores
) -> None:
    await _put_run(stores, status="running")
    await _history(
        stores,
        ("step.completed", "foo", {"data": 0}),
        ("step.sleeping", "nap", {"until": 1}),
        ("step.completed", "nap", None),
        ("step.waiting", "approval", {"event": "app/approved", "if": None, "timeout_ms": 1}),
    )

    body = await _query(client, SPANS_QUERY, {"run_id": RUN_ID})

    spans = body["data"]["run"]["trace"]["childrenSpans"]
    assert [(s["name"], s["status"]) for s in spans] == [
        ("foo", "COMPLETED"),
        ("nap", "COMPLETED"),
        ("approval", "WAITING"),
    ]
    assert spans[2]["outputID"] is None


async def test_a_wait_cut_short_by_the_end_of_its_run_is_not_a_span(
    client: httpx.AsyncClient, stores: SqliteStores
) -> None:
    await _put_run(stores, status="cancelled", ended_ms=1_700_000_002_000)
    await _history(stores, ("step.sleeping", "nap", {"until": 1}))

    body = await _query(client, SPANS_QUERY, {"run_id": RUN_ID})

    assert body["data"]["run"]["trace"]["childrenSpans"] == []


async def _output_of(client: httpx.AsyncClient, step_name: str, index: int = 0) -> dict[str, Any]:
    """What the helper's get_step_output does: find the span, then fetch its output."""
    body = await _query(client, SPANS_QUERY, {"run_id": RUN_ID})
    spans = [s for s in body["data"]["run"]["trace"]["childrenSpans"] if s["name"] == step_name]
    body = await _query(client, OUTPUT_QUERY, {"output_id": spans[index]["outputID"]})
    assert "errors" not in body
    output: dict[str, Any] = body["data"]["runTraceSpanOutputByID"]
    return output


async def test_step_outputs_unwrap_data_and_keep_other_memos_whole(
    client: httpx.AsyncClient, stores: SqliteStores
) -> None:
    fulfilling = {"name": "app/fulfil", "data": {}, "id": "e1", "ts": 5}
    await _put_run(stores)
    await _history(
        stores,
        ("step.completed", "foo", {"data": 0}),
        ("step.completed", "foo", {"data": [{"empty": None, "foo": {"bar": 1}}]}),
        ("step.completed", "nap", None),
        ("step.completed", "wait", fulfilling),
        ("step.completed", "timed-out-wait", None),
        ("step.completed", "none", {"data": None}),
    )

    assert await _output_of(client, "foo") == {"data": "0", "error": None}
    second = await _output_of(client, "foo", index=1)
    assert json.loads(second["data"]) == [{"empty": None, "foo": {"bar": 1}}]
    assert await _output_of(client, "nap") == {"data": "null", "error": None}
    assert json.loads((await _output_of(client, "wait"))["data"]) == fulfilling
    assert await _output_of(client, "timed-out-wait") == {"data": "null", "error": None}
    assert await _output_of(client, "none") == {"data": "null", "error": None}


async def test_error_memos_give_an_error_and_no_data(
    client: httpx.AsyncClient, stores: SqliteStores
) -> None:
    await _put_run(stores)
    await _history(
        stores,
        (
            "step.failed",
            "step_1",
            {"error": {"name": "MyError", "message": "oh no", "stack": "Traceback", "code": "x"}},
        ),
        (
            "step.completed",
            "invoke",
            {"error": {"name": "InngestInvokeTimeoutError", "message": "Timed out"}},
        ),
    )

    assert await _output_of(client, "step_1") == {
        "data": None,
        "error": {"message": "oh no", "name": "MyError", "stack": "Traceback"},
    }
    assert await _output_of(client, "invoke") == {
        "data": None,
        "error": {"message": "Timed out", "name": "InngestInvokeTimeoutError", "stack": None},
    }
    body = await _query(client, SPANS_QUERY, {"run_id": RUN_ID})
    statuses = [s["status"] for s in body["data"]["run"]["trace"]["childrenSpans"]]
    assert statuses == ["FAILED", "FAILED"]


async def test_error_like_memo_that_the_sdk_reads_as_data_is_data(
    client: httpx.AsyncClient, stores: SqliteStores
) -> None:
    # A name that is not a string makes inngest-py read the whole object as data.
    memo = {"error": {"name": 5, "message": "m"}}
    await _put_run(stores)
    await _history(stores, ("step.completed", "odd", memo))

    output = await _output_of(client, "odd")

    assert output["error"] is None
    assert json.loads(output["data"]) == memo


@pytest.mark.parametrize("output_id", [f"{RUN_ID}:01JNOPE", RUN_ID, "garbage:1", ""])
async def test_unknown_output_id_is_an_error(
    client: httpx.AsyncClient, stores: SqliteStores, output_id: str
) -> None:
    await _put_run(stores)
    await _history(stores, ("step.sleeping", "nap", {"until": 1}))

    body = await _query(client, OUTPUT_QUERY, {"output_id": output_id})

    assert body["data"] == {"runTraceSpanOutputByID": None}
    assert body["errors"]


async def test_run_trigger_lists_every_event_of_a_batch(
    client: httpx.AsyncClient, stores: SqliteStores
) -> None:
    events = [{**TRIGGER, "data": {"n": n}, "id": f"e{n}"} for n in range(3)]
    await _put_run(stores, events=events, event_ids=["a", "b", "c"])
    query = """
    query ($id: String!) { runTrigger(runID: $id) { eventName IDs payloads timestamp } }
    """

    body = await _query(client, query, {"id": RUN_ID})

    trigger = body["data"]["runTrigger"]
    assert trigger["eventName"] == TRIGGER["name"]
    assert trigger["IDs"] == ["a", "b", "c"]
    assert [json.loads(p) for p in trigger["payloads"]] == events
    assert trigger["timestamp"] == "2023-11-14T22:13:20.000Z"


async def test_event_lists_the_runs_it_started(
    client: httpx.AsyncClient, stores: SqliteStores
) -> None:
    await stores.put_event(
        Event(
            internal_id=EVENT_ID,
            account_id="default",
            name=TRIGGER["name"],
            payload=TRIGGER,
            received_ms=1_700_000_000_000,
        )
    )
    await _put_run(stores, status="completed", ended_ms=1_700_000_002_000)
    await stores.link_run(EVENT_ID, RUN_ID)
    # Linked before the run is written: left out until it exists.
    await stores.link_run(EVENT_ID, "01JRUN0000000000000000000B")

    body = await _query(client, EVENT_QUERY, {"event_id": EVENT_ID})

    event = body["data"]["event"]
    assert event["id"] == EVENT_ID
    assert event["name"] == TRIGGER["name"]
    assert json.loads(event["raw"]) == TRIGGER
    assert event["functionRuns"] == [{"id": RUN_ID, "status": "COMPLETED"}]


async def test_event_without_runs_has_an_empty_list(
    client: httpx.AsyncClient, stores: SqliteStores
) -> None:
    await stores.put_event(
        Event(internal_id=EVENT_ID, account_id="default", name="x", payload={}, received_ms=1)
    )

    body = await _query(client, EVENT_QUERY, {"event_id": EVENT_ID})

    assert body["data"]["event"]["functionRuns"] == []


async def test_unknown_event_is_null_with_an_error(client: httpx.AsyncClient) -> None:
    body = await _query(client, EVENT_QUERY, {"event_id": EVENT_ID})

    assert body["data"] == {"event": None}
    assert "event not found" in body["errors"][0]["message"]


async def test_get_with_query_parameters(client: httpx.AsyncClient, stores: SqliteStores) -> None:
    await _put_run(stores, status="running")
    params = {
        "query": "query ($id: String!) { run(runID: $id) { status } }",
        "variables": json.dumps({"id": RUN_ID}),
    }

    response = await client.get("/v0/gql", params=params)

    assert response.status_code == 200
    assert response.json() == {"data": {"run": {"status": "RUNNING"}}}


@pytest.mark.parametrize("query", ["{ run(", "{ run(runID: 1) { nope } }", "{ nothing }"])
async def test_documents_that_do_not_validate_answer_422_with_errors(
    client: httpx.AsyncClient, query: str
) -> None:
    response = await client.post("/v0/gql", json={"query": query})

    assert response.status_code == 422
    assert response.json()["errors"][0]["message"]


@pytest.mark.parametrize(
    "content",
    [b"not json", b"[1]", b'{"query": ""}', b'{"query": "{ x }", "variables": [1]}'],
)
async def test_requests_without_an_operation_are_400(
    client: httpx.AsyncClient, content: bytes
) -> None:
    response = await client.post("/v0/gql", content=content)

    assert response.status_code == 400
    assert response.json()["errors"][0]["message"]


# --- the trace as the inngest-js suite's helpers read it (runHasTimeline, createState) ---

TIMELINE_QUERY = """
query GetRunTimeline($runId: String!) {
  run(runID: $runId) {
    trace(preview: true) {
      name stepType stepOp attempts outputID status
      childrenSpans {
        name stepType stepOp attempts outputID status childrenSpans { name status outputID }
      }
    }
  }
}
"""
CAUSE_QUERY = """
query GetOutput($outputId: String!) {
  runTraceSpanOutputByID(outputID: $outputId) { data error { name message stack cause } }
}
"""


async def _entries(stores: SqliteStores, *entries: dict[str, Any]) -> None:
    for n, fields in enumerate(entries):
        await stores.append_history(
            HistoryEntry(
                entry_id=f"01JENT{n:020d}", run_id=RUN_ID, ts_ms=1_700_000_001_000 + n, **fields
            )
        )


async def _timeline(client: httpx.AsyncClient) -> dict[str, Any]:
    body = await _query(client, TIMELINE_QUERY, {"runId": RUN_ID})
    assert "errors" not in body
    trace: dict[str, Any] = body["data"]["run"]["trace"]
    return trace


async def _read_output(client: httpx.AsyncClient, output_id: str) -> dict[str, Any]:
    body = await _query(client, CAUSE_QUERY, {"outputId": output_id})
    assert "errors" not in body
    output: dict[str, Any] = body["data"]["runTraceSpanOutputByID"]
    return output


async def test_spans_carry_their_operation_and_wait_steps_are_typed_by_their_wait(
    client: httpx.AsyncClient, stores: SqliteStores
) -> None:
    await _put_run(stores, status="running")
    await _entries(
        stores,
        {"kind": "step.completed", "step_name": "fetch", "step_hash": "h1", "output": {"data": 1}},
        {"kind": "step.sleeping", "step_name": "nap", "step_hash": "h2", "output": {"until": 9}},
        {"kind": "step.invoking", "step_name": "child", "step_hash": "h3", "output": {}},
        {"kind": "step.completed", "step_name": "nap", "step_hash": "h2"},
        {"kind": "step.waiting", "step_name": "approval", "step_hash": "h4", "output": {}},
        {"kind": "step.completed", "step_name": "child", "step_hash": "h3", "output": {"data": 2}},
    )

    spans = (await _timeline(client))["childrenSpans"]

    assert [(s["name"], s["stepOp"], s["stepType"], s["status"]) for s in spans] == [
        ("fetch", "RUN", "RUN", "COMPLETED"),
        ("nap", "SLEEP", "SLEEP", "COMPLETED"),
        ("child", "INVOKE", "INVOKE", "COMPLETED"),
        ("approval", "WAIT_FOR_EVENT", "WAIT_FOR_EVENT", "WAITING"),
    ]


async def test_a_step_that_took_two_attempts_lists_them_and_reads_its_last_error_with_cause(
    client: httpx.AsyncClient, stores: SqliteStores
) -> None:
    cause = {"name": "Error", "message": "This is the cause", "stack": "at b"}
    error = {"name": "Error", "message": "Oh no!", "stack": "at a", "cause": cause}
    await _put_run(stores, status="running")
    await _entries(
        stores,
        {"kind": "step.errored", "step_name": "a", "step_hash": "h", "attempt": 0, "error": error},
        {
            "kind": "step.failed",
            "step_name": "a",
            "step_hash": "h",
            "attempt": 1,
            "output": {"error": error},
        },
        {"kind": "step.completed", "step_name": "b", "step_hash": "hb", "output": {"data": "ok"}},
    )

    failed, completed = (await _timeline(client))["childrenSpans"]

    assert (failed["name"], failed["status"], failed["attempts"]) == ("a", "FAILED", 1)
    assert [(c["name"], c["status"]) for c in failed["childrenSpans"]] == [
        ("Attempt 0", "FAILED"),
        ("Attempt 1", "FAILED"),
    ]
    assert await _read_output(client, failed["outputID"]) == {"data": None, "error": error}
    first_attempt = failed["childrenSpans"][0]
    # A failed attempt's own error is readable too.
    assert (await _read_output(client, first_attempt["outputID"]))["error"]["cause"] == cause
    # One attempt: no attempt spans, and no cause is null.
    assert (completed["attempts"], completed["childrenSpans"]) == (0, [])
    assert await _read_output(client, completed["outputID"]) == {"data": '"ok"', "error": None}


async def test_an_ended_run_has_a_finalization_span_and_its_root_reads_the_result(
    client: httpx.AsyncClient, stores: SqliteStores
) -> None:
    await _put_run(stores, status="completed", output="Hello", ended_ms=1_700_000_002_000)
    await _entries(
        stores,
        {"kind": "step.completed", "step_name": "s", "step_hash": "h", "output": {"data": 1}},
        {"kind": "run.completed", "output": "Hello"},
    )

    root = await _timeline(client)

    assert (root["status"], root["stepType"], root["stepOp"]) == ("COMPLETED", "", None)
    assert await _read_output(client, root["outputID"]) == {"data": '"Hello"', "error": None}
    final = root["childrenSpans"][-1]
    assert (final["name"], final["stepType"], final["stepOp"], final["status"]) == (
        "Finalization",
        "FINALIZATION",
        None,
        "COMPLETED",
    )
    assert final["outputID"] == root["outputID"]


async def test_a_failed_run_reads_its_error_and_its_function_attempts_are_listed(
    client: httpx.AsyncClient, stores: SqliteStores
) -> None:
    error = {"name": "EventValidationError", "message": "nested.msg: Expected string"}
    await _put_run(stores, status="failed", output=error, ended_ms=1_700_000_002_000)
    await _entries(
        stores,
        {"kind": "run.errored", "attempt": 0, "error": error},
        {"kind": "run.failed", "attempt": 1, "error": error},
    )

    root = await _timeline(client)

    assert root["status"] == "FAILED"
    output = await _read_output(client, root["outputID"])
    assert output["data"] is None
    assert output["error"] == {**error, "stack": None, "cause": None}
    [final] = root["childrenSpans"]
    assert (final["stepType"], final["status"], final["attempts"]) == ("FINALIZATION", "FAILED", 1)
    assert [c["name"] for c in final["childrenSpans"]] == ["Attempt 0", "Attempt 1"]


async def test_a_running_run_has_no_output_to_read(
    client: httpx.AsyncClient, stores: SqliteStores
) -> None:
    await _put_run(stores, status="running")
    await _entries(stores, {"kind": "run.errored", "attempt": 0, "error": {"message": "m"}})

    root = await _timeline(client)

    assert (root["status"], root["outputID"], root["childrenSpans"]) == ("RUNNING", None, [])


# --- events and the event stream, as the inngest-js suite's helpers read them ---

STREAM_QUERY = """
query GetEventStream {
  stream(query: {limit: 999, includeInternalEvents: false}) {
    id trigger type runs { id function { name } }
  }
}
"""
EVENTS_QUERY = """
query Events($query: EventsQuery!) { events(query: $query) { id name payload } }
"""


async def _put_event(stores: SqliteStores, internal_id: str, name: str, **payload: Any) -> None:
    await stores.put_event(
        Event(
            internal_id=internal_id,
            account_id="default",
            name=name,
            payload={"name": name, **payload},
            received_ms=int(internal_id[-1], 16),
        )
    )


async def test_stream_lists_events_newest_first_with_the_runs_they_started(
    client: httpx.AsyncClient, stores: SqliteStores
) -> None:
    await stores.put_function(
        FunctionRecord(fn_id="app-fn", account_id="default", app_id="app", name="fn", config={})
    )
    await _put_event(stores, "01JEVT0000000000000000000A", "app/a")
    await _put_event(stores, "01JEVT0000000000000000000B", "inngest/function.finished")
    await _put_event(stores, "01JEVT0000000000000000000C", "app/c")
    await _put_run(stores)
    await stores.link_run("01JEVT0000000000000000000A", RUN_ID)

    body = await _query(client, STREAM_QUERY, {})

    assert body["data"]["stream"] == [
        {"id": "01JEVT0000000000000000000C", "trigger": "app/c", "type": "EVENT", "runs": []},
        {
            "id": "01JEVT0000000000000000000A",
            "trigger": "app/a",
            "type": "EVENT",
            "runs": [{"id": RUN_ID, "function": {"name": "fn"}}],
        },
    ]
    internal = await _query(
        client, "{ stream(query: {limit: 1, includeInternalEvents: true}) { trigger } }", {}
    )
    assert internal["data"]["stream"] == [{"trigger": "app/c"}]


async def test_a_cron_tick_shows_its_schedule_in_the_stream(
    client: httpx.AsyncClient, stores: SqliteStores
) -> None:
    cron = "inngest/scheduled.timer"
    await _put_event(stores, "01JEVT0000000000000000000A", cron, data={"cron": "0 * * * *"})

    body = await _query(
        client, "{ stream(query: {includeInternalEvents: true}) { trigger type } }", {}
    )

    assert body["data"]["stream"] == [{"trigger": "0 * * * *", "type": "CRON"}]


@pytest.mark.parametrize("limit", [0, -1, 1001])
async def test_a_stream_limit_out_of_range_is_an_error(
    client: httpx.AsyncClient, limit: int
) -> None:
    body = await _query(client, f"{{ stream(query: {{limit: {limit}}}) {{ id }} }}", {})

    assert body["data"] is None
    assert "limit must be 1 to 1000" in body["errors"][0]["message"]


async def test_events_lists_the_newest_with_their_data_as_payload(
    client: httpx.AsyncClient, stores: SqliteStores
) -> None:
    for n in range(53):
        await _put_event(stores, f"01JEVT00000000000000000{n:03X}", "app/x", data={"n": n})
    await _put_event(stores, "01JEVT00000000000000000FFF", "inngest/function.finished")

    body = await _query(client, EVENTS_QUERY, {"query": {}})

    events = body["data"]["events"]
    assert len(events) == 51
    assert events[0]["id"] == "01JEVT00000000000000000034"
    assert json.loads(events[0]["payload"]) == {"n": 52}
    assert {e["name"] for e in events} == {"app/x"}
