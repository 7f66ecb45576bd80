"""The dashboard's timeline: rows, attempts and waits from a run's history, on its time scale."""

from __future__ import annotations

from headrace.dashboard.formatting import duration, pretty_json
from headrace.dashboard.timeline import build
from headrace.messages.state import HistoryEntry, RunState


def entry(n: int, kind: str, ts: int, **fields: object) -> HistoryEntry:
    return HistoryEntry(entry_id=f"{n:04d}", run_id="r", ts_ms=ts, kind=kind, **fields)  # type: ignore[arg-type]


def test_steps_attempts_and_sleeps_are_laid_out_on_the_run_time_scale() -> None:
    run = RunState(
        run_id="r",
        account_id="a",
        fn_id="f",
        app_id="x",
        status="completed",
        started_ms=1000,
        ended_ms=2000,
    )
    history = [
        entry(0, "run.started", 1000),
        entry(
            1,
            "step.errored",
            1100,
            step_hash="h1",
            step_name="fetch",
            duration_ms=100,
            error={"name": "E", "message": "boom"},
        ),
        entry(
            2,
            "step.completed",
            1300,
            step_hash="h1",
            step_name="fetch",
            attempt=1,
            duration_ms=50,
            output={"data": {"n": 1}},
            input=[{"order": 7}],
        ),
        entry(3, "step.sleeping", 1300, step_hash="h2", step_name="nap", output={"until": 1900}),
        entry(4, "step.completed", 1900, step_hash="h2", step_name="nap"),
        entry(5, "run.completed", 2000, output="ok"),
    ]
    timeline = build(run, history, now_ms=5000)
    fetch, nap = timeline.rows
    assert (fetch.name, fetch.status, fetch.output) == ("fetch", "completed", {"n": 1})
    assert fetch.input == [{"order": 7}]
    assert [(a.number, a.ok, a.duration_ms) for a in fetch.attempts] == [
        (1, False, 100),
        (2, True, 50),
    ]
    assert (fetch.start_ms, fetch.end_ms, fetch.left_pct) == (1000, 1300, 0.0)
    assert fetch.attempts[1].left_pct == 25.0 and fetch.attempts[1].width_pct == 5.0
    assert (nap.kind, nap.status, nap.detail) == ("sleep", "completed", {"until": 1900})
    assert (nap.left_pct, nap.width_pct) == (30.0, 60.0)
    assert timeline.ticks[-1] == (100.0, 1000)


def test_an_open_wait_runs_to_now() -> None:
    run = RunState(run_id="r", account_id="a", fn_id="f", app_id="x", started_ms=1000)
    history = [
        entry(
            1,
            "step.waiting",
            1500,
            step_hash="w",
            step_name="approval",
            output={"event": "x/approved", "if": None, "timeout_ms": 60_000},
        )
    ]
    [wait] = build(run, history, now_ms=2000).rows
    assert (wait.status, wait.end_ms, wait.left_pct, wait.width_pct) == (
        "waiting",
        None,
        50.0,
        50.0,
    )


def test_json_is_escaped_and_coloured_and_durations_read_well() -> None:
    html = str(pretty_json({"k": "<b>", "n": 2, "t": True}))
    key, value = (
        '<span class="j-key">&#34;k&#34;</span>',
        '<span class="j-str">&#34;&lt;b&gt;&#34;</span>',
    )
    assert f"{key}: {value}" in html
    assert '<span class="j-num">2</span>' in html and '<span class="j-lit">true</span>' in html
    assert [duration(5), duration(1500), duration(125_000), duration(7_200_000)] == [
        "5 ms",
        "1.5 s",
        "2 m 5 s",
        "2 h 0 m",
    ]


def test_a_planned_step_is_running_until_it_settles_or_the_run_ends() -> None:
    run = RunState(run_id="r", account_id="a", fn_id="f", app_id="x", started_ms=1000)
    planned = entry(1, "step.planned", 1100, step_hash="h1", step_name="charge")
    [row] = build(run, [planned], now_ms=1500).rows
    assert (row.name, row.status, row.start_ms, row.end_ms) == ("charge", "running", 1100, None)

    done = entry(2, "step.completed", 1400, step_hash="h1", step_name="charge", duration_ms=250)
    [row] = build(run, [planned, done], now_ms=1500).rows
    assert (row.status, row.start_ms, row.end_ms) == ("completed", 1100, 1400)

    run.status, run.ended_ms = "cancelled", 1450
    assert build(run, [planned], now_ms=1500).rows == []
