"""The store ports. Every write is idempotent under its natural key, so a record processed twice
after a crash changes nothing the second time."""

from __future__ import annotations

from typing import Protocol

from headrace.messages.model import Batch, Event, EventHead, EventListing, Pause
from headrace.messages.state import AppRecord, FunctionRecord, HistoryEntry, RunState, Timer


class AppStore(Protocol):
    async def put_app(self, app: AppRecord) -> None: ...
    async def get_app(self, account_id: str, app_id: str) -> AppRecord | None: ...
    async def list_apps(self, account_id: str) -> list[AppRecord]: ...
    async def put_function(self, fn: FunctionRecord) -> None: ...
    async def get_function(self, account_id: str, fn_id: str) -> FunctionRecord | None: ...
    async def list_functions(self, account_id: str) -> list[FunctionRecord]: ...


class RunStore(Protocol):
    """Runs and their memos. A run's state is versioned, and every write of it is conditional
    on the version it was computed from, checked by the store as part of the write: of two
    writers that read the same version, exactly one succeeds, and the other writes nothing and
    gets `Conflict`. So a run's states form one sequence, each computed from the one before,
    whatever the writers' timing (two handlers of one run, an old partition owner still
    writing); no acknowledged write is ever overwritten by one computed from an older state."""

    async def create_run(self, run: RunState, memos: dict[str, bytes] | None = None) -> bool:
        """Insert the run at version 1, with its first memos, unless the run exists; True when
        this call created it (then `run.version` is 1)."""
        ...

    async def get_run(self, run_id: str) -> RunState | None: ...

    async def get_run_and_memos(self, run_id: str) -> tuple[RunState, dict[str, bytes]] | None:
        """The run and its memos as of one moment: one write of the run is seen whole or not at
        all, so every memo a state's stack names is there, and no memo is newer than the state."""
        ...

    async def get_run_and_memo_keys(self, run_id: str) -> tuple[RunState, set[str]] | None:
        """As `get_run_and_memos`, one snapshot, with the memos' step hashes and not their
        values: what deciding a transition needs, at a cost that does not grow with the size of
        the outputs (only a call's body carries the values)."""
        ...

    async def save_run(self, run: RunState, memos: dict[str, bytes] | None = None) -> None:
        """Write the run's state with new memos (hash -> JSON bytes), atomically, provided the
        store still holds `run.version`; the stored version is then one more, and so is
        `run.version`. Raises `Conflict`, having written nothing, when the run was written
        since that version was read (or does not exist).

        Memos are written only with a state that names them for the first time, so a memo,
        once written, is never replaced.
        """
        ...

    async def get_memos(self, run_id: str) -> dict[str, bytes]: ...

    async def retain_run(self, run: RunState) -> None:
        """The ended run's rows (memos, history, listings) expire with the retention from now
        on; a no-op for a store that keeps everything."""
        ...

    async def list_runs(
        self, account_id: str, *, limit: int = 50, fn_id: str | None = None
    ) -> list[RunState]: ...

    async def append_history(self, entry: HistoryEntry) -> None:
        """Idempotent by entry id."""
        ...

    async def list_history(self, run_id: str) -> list[HistoryEntry]:
        """Ordered by entry id; holds every entry of the run's stored state, its last
        transition's included before they are appended (messages/state.py
        `with_last_transition`)."""
        ...


class EventStore(Protocol):
    async def put_event(self, event: Event) -> None:
        """Idempotent by internal id."""
        ...

    async def get_event(self, internal_id: str) -> Event | None: ...
    async def list_events(
        self, account_id: str, *, name: str | None = None, limit: int = 50, internal: bool = True
    ) -> list[Event]:
        """The newest events first; with `internal` false, without the events whose names
        Inngest reserves (`inngest/...`: function finished, invoked, cron ticks)."""
        ...

    async def list_event_heads(
        self, account_id: str, *, name: str | None = None, limit: int = 50
    ) -> list[EventHead]:
        """As `list_events`, without the payloads."""
        ...

    async def list_event_listings(
        self, account_id: str, *, name: str | None = None, limit: int = 50, internal: bool = True
    ) -> list[EventListing]:
        """As `list_events`, with large payloads left out (`EventListing`), reading no more."""
        ...

    async def link_run(self, event_id: str, run_id: str) -> None: ...
    async def runs_for_event(self, event_id: str) -> list[str]: ...


class KeyStore(Protocol):
    async def claim(self, key: str, value: str, ttl_ms: int, now_ms: int) -> str | None:
        """Set `key` to `value` unless it is set and not expired; return the value already there
        (None when this call set it)."""
        ...

    async def swap(self, key: str, expected: str, value: str, ttl_ms: int, now_ms: int) -> bool:
        """Set `key` to `value` if it holds `expected` (expired or not); True when it did."""
        ...

    async def holder(self, key: str, now_ms: int) -> str | None:
        """The value `key` holds, None when it is not set or has expired."""
        ...


class TimerStore(Protocol):
    async def put_timer(self, timer: Timer) -> None:
        """Idempotent by timer id."""
        ...

    async def delete_timer(self, partition: int, timer_id: str) -> None: ...
    async def timers_due(self, partition: int, until_ms: int) -> list[Timer]:
        """Every timer of the partition firing at or before `until_ms`, earliest first."""
        ...


class PauseStore(Protocol):
    async def put_pause(self, pause: Pause, partition: int) -> None: ...
    async def delete_pause(self, pause_id: str) -> bool:
        """Delete the pause; True when it existed (first caller wins)."""
        ...

    async def get_pause(self, pause_id: str) -> Pause | None: ...
    async def pauses_for_partition(self, partition: int) -> list[Pause]: ...
    async def pauses_for_run(self, run_id: str) -> list[Pause]: ...


class BatchStore(Protocol):
    async def put_batch(self, batch: Batch, partition: int) -> None:
        """Insert or replace the batch under its key."""
        ...

    async def delete_batch(self, batch_key: str) -> None: ...
    async def batches_for_partition(self, partition: int) -> list[Batch]: ...


class FlowStore(Protocol):
    """Flow-control state of a partition, written only by the partition's owner: concurrency
    leases and waiting items (scheduler), limiter states (scheduler: throttle; runner: rate
    limit). Entries are opaque bytes under (partition, kind, entry id)."""

    async def put_flow(self, partition: int, kind: str, entry_id: str, body: bytes) -> None:
        """Insert or replace."""
        ...

    async def delete_flow(self, partition: int, kind: str, entry_id: str) -> None: ...
    async def flow_entries(self, partition: int, kind: str) -> list[tuple[str, bytes]]:
        """Every (entry id, body) of that kind in the partition, by entry id."""
        ...


class Stores(
    AppStore,
    RunStore,
    EventStore,
    KeyStore,
    TimerStore,
    PauseStore,
    BatchStore,
    FlowStore,
    Protocol,
):
    """Everything a headrace deployment keeps."""

    async def close(self) -> None: ...
