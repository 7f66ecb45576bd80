"""Which `work` partitions each executor process holds, read from its log, for the tests that
strike the account partition's owner (the kill schedule, the fault schedule's nemesis)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from headrace.testing.cluster import Cluster, ServiceProc


def label(proc: ServiceProc) -> str:
    return f"{proc.name}-{proc.port}"


@dataclass
class HeldPartitions:
    cluster: Cluster
    # Where each service's current process began writing its log (logs are appended across
    # restarts), and how far its log has been read, with what it held by then.
    _log_from: dict[int, int] = field(default_factory=dict)
    _read: dict[int, tuple[int, set[int]]] = field(default_factory=dict)

    def log(self, proc: ServiceProc) -> Path:
        return self.cluster.log_dir / f"{label(proc)}.log"

    def restarting(self, proc: ServiceProc) -> None:
        """`proc` is about to start again: read only what its next process writes."""
        self._log_from[proc.port] = self.log(proc).stat().st_size
        self._read.pop(proc.port, None)

    def of(self, proc: ServiceProc) -> set[int]:
        """The `work` partitions the executor's current process holds, by its log."""
        offset, held = self._read.get(proc.port, (self._log_from.get(proc.port, 0), set()))
        with self.log(proc).open("rb") as log:
            log.seek(offset)
            text = log.read()
        complete = text.rfind(b"\n") + 1  # a line still being written is read next time
        for line in text[:complete].splitlines():
            if b'"partitions ' not in line:
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("group") != self.cluster.group("executor"):
                continue
            if entry.get("event") == "partitions assigned":
                held |= set(entry["partitions"])
            elif entry.get("event") == "partitions revoked":
                held -= set(entry["partitions"])
        self._read[proc.port] = (offset + complete, held)
        return set(held)
