"""What a locally run server must provide, and where its files live."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class Layout:
    """A component's state directory: `data/` is what `down --wipe` deletes; the rest stays."""

    root: Path

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    @property
    def pid(self) -> Path:
        return self.root / "server.pid"

    @property
    def lock(self) -> Path:
        return self.root / ".lock"

    @property
    def pin(self) -> Path:
        """Present while `headrace infra up` wants the server kept running after tests end."""
        return self.root / "pinned"


class Component(Protocol):
    """One server (Kafka or Cassandra) as the lifecycle code drives it."""

    name: str
    layout: Layout
    host: str
    port: int  # the port clients use
    stop_grace_s: float  # how long a clean shutdown may take before SIGKILL

    @property
    def ports(self) -> tuple[int, ...]:
        """Every port the server binds (all must be free before it starts and after it stops)."""
        ...

    @property
    def coordinates(self) -> list[str]:
        """The Maven coordinates (group:artifact:version) whose runtime classpath runs it."""
        ...

    def prepare(self, lib_dir: Path) -> list[str]:
        """Write configuration, initialise storage if needed, and return the server's argv."""
        ...

    def probe(self) -> None:
        """Return if the server answers a real request, raise otherwise."""
        ...
