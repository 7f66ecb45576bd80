"""What the fault schedule's app saw, as JSON lines (issue 16). Each app process (`fault_app`)
writes a file of its own, `app-<pid>.jsonl`, in the records directory, flushed per record so a
record outlives the process: every call of a run (when it arrived, what it carried) and its
answer (when the response was sent, its status), every step execution, every failed first
attempt of the flaky step, and every event its steps sent with their acknowledgements. The test
reads them back (`AppRecords`), during the schedule for the waits to offer events to, and after
it for the checker, merging the files of all the app's processes.

Times are `time.monotonic()`: on Linux that is CLOCK_MONOTONIC, one clock for the whole
machine, so the app's times compare with the test process's (its `t0`, its events' acks)."""

from __future__ import annotations

import bisect
import collections
import itertools
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fault_workload import Ack
from workload import Execution, Executions, Request, Requests


class RecordWriter:
    """One app process's records; its methods are the hooks of the workload's objects."""

    def __init__(self, directory: Path) -> None:
        self._file = (directory / f"app-{os.getpid()}.jsonl").open("a", encoding="utf-8")
        self._numbers = itertools.count()

    def _write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def call(self, call: Request) -> int:
        """Records a call as it arrives; its number, for `answer`."""
        number = next(self._numbers)
        self._write({"kind": "call", "number": number, **vars(call)})
        return number

    def answer(self, number: int, status: int | None, answered: float) -> None:
        """`status` is None when the app sent no response (it raised, or was stopped)."""
        self._write({"kind": "answer", "number": number, "status": status, "answered": answered})

    def execution(self, run_id: str, step: str, execution: Execution) -> None:
        self._write({"kind": "execution", "run_id": run_id, "step": step, **vars(execution)})

    def flaky_failed(self, run_id: str) -> None:
        self._write({"kind": "flaky_failed", "run_id": run_id})

    def sent(self, acks: dict[str, Ack], retries: int) -> None:
        acked = {event_id: vars(ack) for event_id, ack in acks.items()}
        self._write({"kind": "sent", "acks": acked, "retries": retries})


@dataclass
class CallTiming:
    arrived: float
    answered: float | None = None
    status: int | None = None


@dataclass
class AppRecords:
    """The records of every app process in `directory`, merged; `refresh` reads what was
    written since the last read (whole lines only: a line being written is read next time)."""

    directory: Path
    requests: Requests = field(default_factory=Requests)  # each run's calls by arrival
    executions: Executions = field(default_factory=Executions)  # each step's by start
    flaky_failed: collections.Counter[str] = field(default_factory=collections.Counter)
    acks: dict[str, Ack] = field(default_factory=dict)  # events the app sent, by id
    event_send_retries: int = 0
    calls: dict[tuple[str, int], CallTiming] = field(default_factory=dict)  # by (file, number)
    _read: dict[Path, int] = field(default_factory=dict)  # bytes read of each file

    def refresh(self) -> AppRecords:
        for path in sorted(self.directory.glob("app-*.jsonl")):
            with path.open("rb") as records:
                records.seek(self._read.get(path, 0))
                chunk = records.read()
            whole = chunk[: chunk.rfind(b"\n") + 1]
            self._read[path] = self._read.get(path, 0) + len(whole)
            for line in whole.splitlines():
                self._take(path.stem, json.loads(line))
        return self

    def _take(self, source: str, record: dict[str, Any]) -> None:
        kind = record.pop("kind")
        if kind == "call":
            number = record.pop("number")
            call = Request(**record)
            # The processes' files interleave in time: keep each run's calls in arrival order.
            bisect.insort(self.requests.of[call.run_id], call, key=lambda r: r.arrived)
            self.calls[(source, number)] = CallTiming(call.arrived)
        elif kind == "answer":
            timing = self.calls[(source, record["number"])]
            timing.answered, timing.status = record["answered"], record["status"]
        elif kind == "execution":
            ran = self.executions.of[(record.pop("run_id"), record.pop("step"))]
            bisect.insort(ran, Execution(**record), key=lambda e: e.started)
        elif kind == "flaky_failed":
            self.flaky_failed[record["run_id"]] += 1
        elif kind == "sent":
            for event_id, ack in record["acks"].items():
                self.acks.setdefault(event_id, Ack(**ack))
            self.event_send_retries += record["retries"]
        else:
            raise ValueError(f"unknown app record {kind!r} in {source}")

    def load(self, timeout_s: float) -> dict[str, Any]:
        """How loaded the app was: its calls, how many it answered and how many only after
        `timeout_s` (the engine had given up on them), the median and 99th percentile of the
        time to answer, and the most calls in progress at once (a call never answered counts
        until the end)."""
        answer_s = sorted(
            t.answered - t.arrived for t in self.calls.values() if t.answered is not None
        )
        marks = [(t.arrived, 1) for t in self.calls.values()]
        marks += [(t.answered, -1) for t in self.calls.values() if t.answered is not None]
        in_progress = peak = 0
        for _, change in sorted(marks):  # at a tie, an answer (-1) before an arrival
            in_progress += change
            peak = max(peak, in_progress)
        return {
            "app_calls": len(self.calls),
            "app_calls_answered": len(answer_s),
            "app_calls_over_timeout": sum(1 for s in answer_s if s > timeout_s),
            "app_answer_p50_s": _quantile(answer_s, 0.50),
            "app_answer_p99_s": _quantile(answer_s, 0.99),
            "app_answer_max_s": round(answer_s[-1], 3) if answer_s else None,
            "app_calls_in_progress_peak": peak,
        }


def _quantile(ordered: list[float], q: float) -> float | None:
    """The nearest-rank quantile of sorted values."""
    if not ordered:
        return None
    return round(ordered[max(math.ceil(q * len(ordered)) - 1, 0)], 3)
