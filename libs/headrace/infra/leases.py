"""Which test sessions are using the local infra, so that the last one out stops it.

Several pytest sessions on one machine (developers sharing a box, a CI job beside a local run)
share one Kafka and one Cassandra, because the ports are fixed. If each session stopped what it
had started, a short session would pull the servers out from under a long one. Instead each
session holds a lease (a file naming its pid) while it runs; when it ends it drops its lease
and, if no live lease is left, stops the servers, all under one lock so a session starting at
that moment either sees the servers stopped or keeps them alive.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from headrace.infra import processes


def _lease_dir(state_dir: Path) -> Path:
    return state_dir / "leases"


@contextmanager
def _locked(state_dir: Path) -> Iterator[None]:
    state_dir.mkdir(parents=True, exist_ok=True)
    with (state_dir / ".leases.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def acquire(state_dir: Path) -> Path:
    """Record that this process uses the infra; returns the lease to hand to `release`."""
    with _locked(state_dir):
        directory = _lease_dir(state_dir)
        directory.mkdir(parents=True, exist_ok=True)
        ticks = processes.start_ticks(os.getpid())
        lease = directory / f"{os.getpid()}.json"
        processes.save(processes.ProcessRecord(os.getpid(), ticks or -1), lease)
        return lease


def _others_alive(state_dir: Path, mine: Path) -> bool:
    alive = False
    for lease in _lease_dir(state_dir).glob("*.json"):
        if lease == mine:
            continue
        record = processes.load(lease)
        if record is not None and processes.is_running(record):
            alive = True
        else:
            lease.unlink(missing_ok=True)  # left by a session that died without releasing
    return alive


def release(state_dir: Path, lease: Path, when_last: Callable[[], None]) -> None:
    """Drop `lease`; if no other live session holds one, call `when_last` (under the lock)."""
    with _locked(state_dir):
        others = _others_alive(state_dir, lease)
        lease.unlink(missing_ok=True)
        if not others:
            when_last()
