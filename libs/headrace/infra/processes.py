"""Detached server processes recorded by pid, and the loopback ports they hold.

A process is recorded with its pid *and* its start time (field 22 of `/proc/<pid>/stat`), so a
later `down` never signals an unrelated process that happens to have been given a recycled pid.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class ProcessRecord:
    """A process this package started: enough to find it again, and only it."""

    pid: int
    start_ticks: int


def _stat_fields(pid: int) -> list[str] | None:
    """Fields 3 onwards of /proc/<pid>/stat: [0] state, [17] threads, [19] start time."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may contain spaces; split after it.
    return raw[raw.rindex(")") + 2 :].split()


def start_ticks(pid: int) -> int | None:
    """When `pid` started, in clock ticks since boot; None if there is no such process."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def spawn(argv: Sequence[str], log_path: Path, cwd: Path, env: Mapping[str, str]) -> ProcessRecord:
    """Start `argv` in its own session with stdout and stderr appended to `log_path`.

    Its own session, so a Ctrl-C in the terminal that ran `headrace infra up` (or pytest) does
    not reach it: it runs until `down` stops it.
    """
    with log_path.open("ab") as out:
        process = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    ticks = start_ticks(process.pid)
    return ProcessRecord(process.pid, ticks if ticks is not None else -1)


def save(record: ProcessRecord, path: Path) -> None:
    """Write the pid file atomically, so a concurrent reader never sees half of it."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(record)))
    tmp.replace(path)


def load(path: Path) -> ProcessRecord | None:
    """The recorded process, or None if there is no (readable) pid file."""
    try:
        data = json.loads(path.read_text())
        return ProcessRecord(int(data["pid"]), int(data["start_ticks"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _reap(pid: int) -> None:
    """Collect `pid`'s exit status if it is our child, so it does not linger as a zombie."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def is_running(record: ProcessRecord) -> bool:
    """True while the recorded process (not a zombie, not a recycled pid) is alive.

    A JVM's main thread can exit before its other threads: the process then shows as a zombie
    while it still runs (and holds its ports). It is dead once only that one thread is left.
    """
    fields = _stat_fields(record.pid)
    if fields is None:
        return False
    if fields[0] in ("Z", "X") and int(fields[17]) <= 1:
        _reap(record.pid)
        return False
    return record.start_ticks < 0 or int(fields[19]) == record.start_ticks


def _wait_exit(record: ProcessRecord, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while is_running(record):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def terminate(record: ProcessRecord, grace_s: float) -> bool:
    """SIGTERM, wait up to `grace_s` for a clean shutdown, then SIGKILL.

    Returns True if the process shut down on SIGTERM, False if it had to be killed.
    """
    if not is_running(record):
        return True
    os.kill(record.pid, signal.SIGTERM)
    if _wait_exit(record, grace_s):
        return True
    if is_running(record):
        os.kill(record.pid, signal.SIGKILL)
    _wait_exit(record, 10.0)
    return False


def rss_kib(pid: int) -> int | None:
    """Resident set size (VmRSS) of `pid` in KiB, or None if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def port_accepts(host: str, port: int, timeout_s: float = 0.5) -> bool:
    """True if something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def port_free(host: str, port: int) -> bool:
    """True if no socket is bound to host:port (connections in TIME_WAIT do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                return False
            raise
    return True


def busy_ports(host: str, ports: Iterable[int]) -> list[int]:
    """The ports among `ports` that some socket still holds."""
    return [port for port in ports if not port_free(host, port)]


def wait_ports_free(host: str, ports: Sequence[int], timeout_s: float) -> list[int]:
    """Wait until every port is free; return those still held when time ran out."""
    deadline = time.monotonic() + timeout_s
    while True:
        held = busy_ports(host, ports)
        if not held or time.monotonic() >= deadline:
            return held
        time.sleep(0.1)
