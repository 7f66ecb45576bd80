"""An engine of a test's own, for settings the shared engines of conftest.py do not have."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from headrace.runtime.settings import Settings
from headrace.testing.dev import EngineHandle, start_dev


async def own_engine(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    name: str,
    *,
    dev: dict[str, Any],
    env: dict[str, str],
    services: tuple[str, ...] = ("ingest", "runner", "scheduler", "executor"),
) -> EngineHandle:
    """In the fixture's mode (`request.param`): `headrace dev` with the engine settings `dev`,
    or one process of each of `services` with the same settings as `env`, on a keyspace and
    topics named after `name` (dropped at the end). The caller stops it."""
    if request.param == "dev":
        return await start_dev(None, **dev)
    from headrace.testing.cluster import start_cluster

    base: Settings = request.getfixturevalue("distributed_settings")
    drop: Callable[[str], None] = request.getfixturevalue("drop_keyspace")
    keyspace = f"{name}_{uuid.uuid4().hex[:8]}"
    cluster = dataclasses.replace(base.cluster, keyspace=keyspace, topic_prefix=f"{keyspace}.")
    settings = dataclasses.replace(base, cluster=cluster)
    request.addfinalizer(lambda: drop(keyspace))
    counts = dict.fromkeys(services, 1)
    _, engine = await start_cluster(settings, tmp_path / "logs", counts=counts, env=env)
    return engine
