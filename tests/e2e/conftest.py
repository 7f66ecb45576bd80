"""The engine under test, in each mode: `dev` (one process, embedded adapters) and
`distributed` (ingest, two runners, a scheduler and two executors as processes on real Kafka
and Cassandra, shared by the session; tests keep apart by their own app ids and event names)."""

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from headrace.runtime.settings import Settings
from headrace.testing.cluster import cluster_test_settings
from headrace.testing.dev import (
    TEST_ENDPOINT_TIMEOUT_S,
    TEST_RETRY_INTERVAL_S,
    EngineHandle,
    fake_clock,
    start_dev,
)

MODES = ["dev", pytest.param("distributed", marks=[pytest.mark.kafka, pytest.mark.cassandra])]


@pytest.fixture(scope="session")
def distributed_settings(
    kafka_bootstrap: str,
    cassandra_contact: tuple[str, int],
    drop_keyspace: Callable[[str], None],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Settings]:
    suffix = tmp_path_factory.getbasetemp().name.replace("-", "_")
    yield cluster_test_settings(
        kafka_bootstrap,
        cassandra_contact,
        keyspace=f"e2e_{suffix}",
        topic_prefix=f"e2e.{suffix}.",
        partitions=4,
        retry_interval_s=TEST_RETRY_INTERVAL_S,
        endpoint_timeout_s=TEST_ENDPOINT_TIMEOUT_S,
    )
    drop_keyspace(f"e2e_{suffix}")


@pytest.fixture(scope="session")
async def distributed_engine(
    distributed_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[EngineHandle]:
    from headrace.testing.cluster import start_cluster

    _, handle = await start_cluster(distributed_settings, tmp_path_factory.mktemp("cluster-logs"))
    yield handle
    await handle.stop()


@pytest.fixture
async def dev_engine(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[EngineHandle]:
    """`@pytest.mark.dev_settings(...)` on a test sets engine settings (a short call timeout);
    `@pytest.mark.fake_clock` runs the engine on a fake clock, moved by `dev.advance`."""
    marker = request.node.get_closest_marker("dev_settings")
    clock = fake_clock() if request.node.get_closest_marker("fake_clock") else None
    handle = await start_dev(tmp_path / "state", clock=clock, **(marker.kwargs if marker else {}))
    yield handle
    await handle.stop()


@pytest.fixture
def engine_in(request: pytest.FixtureRequest) -> Callable[[str], EngineHandle]:
    """The engine of a mode, `dev` or `distributed`: for `dev`, and for a module that chooses
    its own modes (it overrides `dev`)."""

    def engine(mode: str) -> EngineHandle:
        name = "distributed_engine" if mode == "distributed" else "dev_engine"
        handle: EngineHandle = request.getfixturevalue(name)
        return handle

    return engine


@pytest.fixture(params=MODES)
def dev(request: pytest.FixtureRequest, engine_in: Callable[[str], EngineHandle]) -> EngineHandle:
    """The engine in the parametrised mode (a plain fixture, so it can pick an async one)."""
    return engine_in(request.param)
