"""A run's timeline, built from its history: one row per step with its attempts, sleeps and
waits with their times, laid out as a waterfall on the run's own time scale."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from headrace.messages.state import ENDED, HistoryEntry, RunState

# A bar never gets thinner than this share of the scale, so a 1 ms step stays visible.
MIN_WIDTH_PCT = 0.6
_WAITS = {"step.sleeping": "sleep", "step.waiting": "wait", "step.invoking": "invoke"}


@dataclass
class Attempt:
    number: int
    start_ms: int
    end_ms: int
    ok: bool
    error: Any = None
    left_pct: float = 0.0
    width_pct: float = 0.0

    @property
    def duration_ms(self) -> int:
        return self.end_ms - self.start_ms


@dataclass
class Row:
    key: str
    name: str
    # step, sleep, wait, invoke, memoized, or function (the calls between steps)
    kind: str
    status: str
    start_ms: int
    end_ms: int | None = None
    attempts: list[Attempt] = field(default_factory=list)
    input: Any = None
    output: Any = None
    error: Any = None
    detail: dict[str, Any] = field(default_factory=dict)
    left_pct: float = 0.0
    width_pct: float = 0.0

    @property
    def duration_ms(self) -> int | None:
        return None if self.end_ms is None else self.end_ms - self.start_ms

    @property
    def has_output(self) -> bool:
        return self.status in ("completed", "memoized") and self.kind != "sleep"


@dataclass
class Timeline:
    start_ms: int
    end_ms: int
    rows: list[Row]
    ticks: list[tuple[float, int]]

    @property
    def span_ms(self) -> int:
        return self.end_ms - self.start_ms


def _value(memo: Any) -> Any:
    """What a step gave the function: X of {"data": X}; any other memo is the value itself."""
    if isinstance(memo, dict) and set(memo) == {"data"}:
        return memo["data"]
    return memo


def _error(entry: HistoryEntry) -> Any:
    if isinstance(entry.output, dict) and "error" in entry.output:
        return entry.output["error"]
    return entry.error


def build(run: RunState, history: list[HistoryEntry], now_ms: int) -> Timeline:
    rows: dict[str, Row] = {}

    def step_row(entry: HistoryEntry, kind: str = "step") -> Row:
        key = entry.step_hash or "function"
        row = rows.get(key)
        if row is None:
            row = Row(
                key=key,
                name=entry.step_name or entry.step_hash or "function",
                kind=kind,
                status="running",
                start_ms=entry.ts_ms - entry.duration_ms,
            )
            rows[key] = row
        return row

    for entry in history:
        if entry.kind == "step.planned":
            step_row(entry)  # running from now until it settles (a checkpointed StepPlanned)
        elif entry.kind == "step.memoized":
            row = step_row(entry, "memoized")
            row.status, row.end_ms, row.output = "memoized", entry.ts_ms, _value(entry.output)
        elif entry.kind in _WAITS:
            row = step_row(entry, _WAITS[entry.kind])
            row.status = "sleeping" if row.kind == "sleep" else "waiting"
            row.detail = entry.output if isinstance(entry.output, dict) else {}
        elif entry.kind in ("step.errored", "run.errored"):
            row = step_row(entry, "step" if entry.step_hash else "function")
            row.attempts.append(_attempt(entry, ok=False, error=entry.error))
            row.status = "retrying"
        elif entry.kind in ("step.completed", "step.failed"):
            row = step_row(entry)
            if entry.input is not None:
                row.input = entry.input
            failed = entry.kind == "step.failed"
            if row.kind == "step":
                row.attempts.append(_attempt(entry, ok=not failed, error=_error(entry)))
            row.status = "failed" if failed else "completed"
            row.end_ms = entry.ts_ms
            if failed:
                row.error = _error(entry)
            else:
                row.output = _value(entry.output)
    if run.status in ENDED:
        # A planned step the run's end cut short never ran to an end of its own.
        rows = {key: row for key, row in rows.items() if row.status != "running"}
    end_ms = run.ended_ms if run.status in ENDED and run.ended_ms else now_ms
    start_ms = run.started_ms or min((r.start_ms for r in rows.values()), default=end_ms)
    end_ms = max([end_ms, *(r.end_ms or 0 for r in rows.values())])
    timeline = Timeline(start_ms, end_ms, list(rows.values()), [])
    _lay_out(timeline, open_until=end_ms)
    return timeline


def _attempt(entry: HistoryEntry, *, ok: bool, error: Any) -> Attempt:
    return Attempt(
        number=entry.attempt + 1,
        start_ms=entry.ts_ms - entry.duration_ms,
        end_ms=entry.ts_ms,
        ok=ok,
        error=None if ok else error,
    )


def _lay_out(timeline: Timeline, open_until: int) -> None:
    span = max(timeline.span_ms, 1)

    def pct(ms: int) -> float:
        return round(min(max((ms - timeline.start_ms) / span * 100, 0.0), 100.0), 3)

    def place(start: int, end: int) -> tuple[float, float]:
        left = min(pct(start), 100 - MIN_WIDTH_PCT)
        return left, max(round(pct(end) - left, 3), MIN_WIDTH_PCT)

    for row in timeline.rows:
        row.left_pct, row.width_pct = place(row.start_ms, row.end_ms or open_until)
        for attempt in row.attempts:
            attempt.left_pct, attempt.width_pct = place(attempt.start_ms, attempt.end_ms)
    timeline.ticks = [(q * 25.0, round(span * q / 4)) for q in range(5)]
