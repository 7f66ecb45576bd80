"""Start, reuse, probe, stop and report one component, by the process it recorded.

Every step is guarded by a per-component file lock, so two `headrace infra up` (or two pytest
sessions) racing on the same machine end with one server, not two fighting over its ports.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from headrace.infra import maven, processes
from headrace.infra.component import Component
from headrace.infra.errors import InfraError
from headrace.infra.processes import ProcessRecord

log = logging.getLogger(__name__)

PROBE_INTERVAL_S = 0.5
PORT_RELEASE_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class Started:
    """A running, answering component and what it cost to get there."""

    name: str
    address: str
    pid: int
    reused: bool
    fetch_s: float | None  # None: the jars were already cached (or the server was reused)
    start_s: float  # from spawn (or from finding it running) until it answered


@dataclass(frozen=True)
class Status:
    """What `headrace infra status` shows for one component."""

    name: str
    address: str
    pid: int | None
    answering: bool
    pinned: bool  # started or adopted by `headrace infra up`: test sessions leave it running
    rss_kib: int | None
    log: Path

    @property
    def running(self) -> bool:
        return self.pid is not None


@contextmanager
def _locked(component: Component) -> Iterator[None]:
    component.layout.root.mkdir(parents=True, exist_ok=True)
    with component.layout.lock.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _address(component: Component) -> str:
    return f"{component.host}:{component.port}"


def _running_record(component: Component) -> ProcessRecord | None:
    """The recorded process if it is still alive; a stale pid file is removed."""
    record = processes.load(component.layout.pid)
    if record is None:
        return None
    if processes.is_running(record):
        return record
    component.layout.pid.unlink(missing_ok=True)
    return None


def _wait_ready(component: Component, record: ProcessRecord, timeout_s: float) -> None:
    """Probe until the server answers; fail fast, naming the log, if the process dies."""
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while True:
        if not processes.is_running(record):
            raise InfraError(
                f"{component.name} (pid {record.pid}) exited while starting", component.layout.log
            )
        if processes.port_accepts(component.host, component.port):
            try:
                component.probe()
                return
            except Exception as error:  # any failed probe just means "not ready yet"
                last_error = error
        if time.monotonic() >= deadline:
            raise InfraError(
                f"{component.name} did not answer on {_address(component)} within "
                f"{timeout_s:.0f} s (last probe error: {last_error!r})",
                component.layout.log,
            )
        time.sleep(PROBE_INTERVAL_S)


def _spawn(component: Component, lib_dir: Path) -> ProcessRecord:
    held = processes.busy_ports(component.host, component.ports)
    if held:
        raise InfraError(
            f"cannot start {component.name}: port(s) {held} on {component.host} are held by "
            "a process headrace did not start; stop it or choose other ports"
        )
    component.layout.data.mkdir(parents=True, exist_ok=True)
    # A fresh log for this run (its tail explains a failed start); the previous run's is kept
    # beside it, since it says why that run ended.
    log = component.layout.log
    if log.exists():
        log.replace(log.with_name(log.name + ".1"))
    log.write_text("")
    argv = component.prepare(lib_dir)
    record = processes.spawn(argv, component.layout.log, component.layout.root, os.environ)
    processes.save(record, component.layout.pid)
    return record


def start(component: Component, cache_dir: Path, timeout_s: float, pin: bool) -> Started:
    """Reuse the component if it already runs, otherwise fetch its jars, start it and wait.

    `pin` marks it as wanted beyond any test session (see `leases`), until `stop`.
    """
    with _locked(component):
        started = _reuse(component, timeout_s) or _start_new(component, cache_dir, timeout_s)
        if pin:
            component.layout.pin.touch()
        return started


def _reuse(component: Component, timeout_s: float) -> Started | None:
    began = time.monotonic()
    record = _running_record(component)
    if record is None:
        return None
    _wait_ready(component, record, timeout_s)
    elapsed = time.monotonic() - began
    return Started(component.name, _address(component), record.pid, True, None, elapsed)


def _start_new(component: Component, cache_dir: Path, timeout_s: float) -> Started:
    # A pin left by a process that died is void: a restart by a test session is not pinned.
    component.layout.pin.unlink(missing_ok=True)
    fetched = maven.resolve(cache_dir, component.name, component.coordinates)
    began = time.monotonic()
    record = _spawn(component, fetched.lib_dir)
    try:
        _wait_ready(component, record, timeout_s)
    except InfraError:
        processes.terminate(record, grace_s=5.0)
        component.layout.pid.unlink(missing_ok=True)
        raise
    elapsed = time.monotonic() - began
    log.info("%s answered on %s in %.1f s", component.name, _address(component), elapsed)
    return Started(component.name, _address(component), record.pid, False, fetched.seconds, elapsed)


def stop(component: Component, wipe: bool) -> None:
    """Stop the recorded process (SIGTERM, then SIGKILL) and check its ports are released."""
    with _locked(component):
        record = _running_record(component)
        if record is not None:
            clean = processes.terminate(record, component.stop_grace_s)
            if not clean:
                log.warning(
                    "%s (pid %d) ignored SIGTERM and was killed", component.name, record.pid
                )
        component.layout.pid.unlink(missing_ok=True)
        component.layout.pin.unlink(missing_ok=True)
        if wipe:
            shutil.rmtree(component.layout.data, ignore_errors=True)
        held = processes.wait_ports_free(component.host, component.ports, PORT_RELEASE_TIMEOUT_S)
        if held:
            raise InfraError(
                f"{component.name} is stopped but port(s) {held} on {component.host} are still "
                "held by another process"
            )


def status(component: Component) -> Status:
    """Running or stopped, with pid, address, whether the client port answers, and RSS."""
    record = processes.load(component.layout.pid)
    alive = record is not None and processes.is_running(record)
    pid = record.pid if record is not None and alive else None
    return Status(
        name=component.name,
        address=_address(component),
        pid=pid,
        answering=alive and processes.port_accepts(component.host, component.port),
        pinned=component.layout.pin.exists(),
        rss_kib=processes.rss_kib(pid) if pid is not None else None,
        log=component.layout.log,
    )
