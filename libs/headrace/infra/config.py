"""Where the local infrastructure lives and which ports and versions it uses.

Two directories, because their lifetimes differ:
- the cache (`$HEADRACE_INFRA_CACHE_DIR`, default `~/.cache/headrace/infra`) holds the jars
  resolved from Maven Central; it is filled once per machine and survives `down --wipe`;
- the state (`$HEADRACE_INFRA_STATE_DIR`, default `~/.local/state/headrace/infra`) holds each
  component's configuration, data, log file and pid file. It is per user, not per checkout,
  because the ports are fixed: one Kafka and one Cassandra per machine serve every checkout.

Every value can be overridden by an environment variable, so the CLI, the pytest plugin and CI
agree without passing flags around: HEADRACE_INFRA_CACHE_DIR, HEADRACE_INFRA_STATE_DIR,
HEADRACE_KAFKA_PORT, HEADRACE_KAFKA_CONTROLLER_PORT, HEADRACE_CASSANDRA_PORT,
HEADRACE_CASSANDRA_STORAGE_PORT, HEADRACE_KAFKA_VERSION, HEADRACE_CASSANDRA_VERSION,
HEADRACE_KAFKA_HEAP, HEADRACE_CASSANDRA_HEAP, HEADRACE_INFRA_START_TIMEOUT (seconds).
A second stack on other ports needs its own state directory too: a state directory records one
process per component.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

HOST = "127.0.0.1"


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def _env_str(name: str, default: str) -> str:
    return os.environ.get(name) or default


def _xdg_dir(variable: str, fallback: str) -> Path:
    base = os.environ.get(variable)
    return Path(base) if base else Path.home() / fallback


def default_cache_dir() -> Path:
    """The jar cache: `$HEADRACE_INFRA_CACHE_DIR` or `$XDG_CACHE_HOME/headrace/infra`."""
    explicit = os.environ.get("HEADRACE_INFRA_CACHE_DIR")
    if explicit:
        return Path(explicit)
    return _xdg_dir("XDG_CACHE_HOME", ".cache") / "headrace" / "infra"


def default_state_dir() -> Path:
    """Data, logs and pids: `$HEADRACE_INFRA_STATE_DIR` or `$XDG_STATE_HOME/headrace/infra`."""
    explicit = os.environ.get("HEADRACE_INFRA_STATE_DIR")
    if explicit:
        return Path(explicit)
    return _xdg_dir("XDG_STATE_HOME", ".local/state") / "headrace" / "infra"


@dataclass(frozen=True)
class InfraConfig:
    """Everything needed to fetch, start, probe and stop the local Kafka and Cassandra."""

    cache_dir: Path = field(default_factory=default_cache_dir)
    state_dir: Path = field(default_factory=default_state_dir)
    host: str = HOST
    kafka_port: int = field(default_factory=lambda: _env_int("HEADRACE_KAFKA_PORT", 29092))
    kafka_controller_port: int = field(
        default_factory=lambda: _env_int("HEADRACE_KAFKA_CONTROLLER_PORT", 29093)
    )
    cassandra_port: int = field(default_factory=lambda: _env_int("HEADRACE_CASSANDRA_PORT", 29042))
    cassandra_storage_port: int = field(
        default_factory=lambda: _env_int("HEADRACE_CASSANDRA_STORAGE_PORT", 27000)
    )
    kafka_version: str = field(default_factory=lambda: _env_str("HEADRACE_KAFKA_VERSION", "4.1.1"))
    cassandra_version: str = field(
        default_factory=lambda: _env_str("HEADRACE_CASSANDRA_VERSION", "5.0.8")
    )
    # Small heaps: CI and dev machines have 2 cores and run the test suite beside both JVMs.
    kafka_heap: str = field(default_factory=lambda: _env_str("HEADRACE_KAFKA_HEAP", "512m"))
    cassandra_heap: str = field(default_factory=lambda: _env_str("HEADRACE_CASSANDRA_HEAP", "768m"))
    # Generous: a cold JVM on a busy 2-core machine can take many times its usual start time.
    start_timeout_s: float = field(
        default_factory=lambda: float(_env_int("HEADRACE_INFRA_START_TIMEOUT", 240))
    )

    def component_dir(self, name: str) -> Path:
        """The state directory of one component (config, `data/`, log and pid files)."""
        return self.state_dir / name
