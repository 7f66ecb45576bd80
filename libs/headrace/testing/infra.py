"""pytest plugin: real Kafka and Cassandra, started once per session, only if a test needs them.

Register it with `pytest_plugins = ["headrace.testing.infra"]` in the top-level conftest.py.

Which tests need what:
- tests marked `kafka` / `cassandra`, and tests using (even indirectly) one of the fixtures
  below, which get the marker added here; so `pytest -m "not kafka and not cassandra"` runs
  the pure unit tests alone, without starting a JVM.

How it starts and stops:
- once the tests are collected, every component any selected test needs is started in
  parallel in the background (or reused if it already runs), while the modules that need none
  run first; the first test that needs one waits for it;
- at the end, what `headrace infra up` started is left running; anything else is stopped,
  unless another pytest session on the machine still uses it (see `headrace.infra.leases`):
  the last session out stops it, and deletes the Kafka topics made since it began;
- a component that cannot start fails (errors) every test that needs it, never skips it: a
  test suite that quietly skipped its Kafka tests would pass while proving nothing.

Isolation: each test gets its own topic names (`kafka_topic_prefix`, `new_topic`) and its own
keyspace (`cassandra_keyspace`), so tests share the servers but never each other's data.
"""

from __future__ import annotations

import concurrent.futures
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from cassandra.cluster import Session

from headrace.infra import (
    COMPONENTS,
    SECURED,
    InfraConfig,
    InfraError,
    Started,
    down,
    leases,
    start_each,
    status,
)
from headrace.infra.cassandra import drop_keyspace as drop_keyspace_in
from headrace.infra.cassandra import local_cluster
from headrace.infra.kafka import delete_topics, topic_names
from headrace.infra.secured import SecuredEndpoints, secured_endpoints

KAFKA_FIXTURES = frozenset({"kafka_bootstrap", "kafka_topic_prefix", "new_topic"})
CASSANDRA_FIXTURES = frozenset({"cassandra_contact", "cassandra_keyspace"})
SECURED_FIXTURES = frozenset({"secured_infra"})
# Marker -> the fixtures that imply it; and the components each marker starts.
NEEDS = {"kafka": KAFKA_FIXTURES, "cassandra": CASSANDRA_FIXTURES, "secured": SECURED_FIXTURES}
STARTS = {"kafka": ("kafka",), "cassandra": ("cassandra",), "secured": SECURED}

NewTopicFactory = Callable[..., Awaitable[str]]


class InfraSession:
    """The components this pytest session uses, started on first need and held by a lease."""

    def __init__(self, config: InfraConfig) -> None:
        self.config = config
        self.results: dict[str, Started | InfraError] = {}
        self.lease: Path | None = None
        self.stopped: list[str] = []
        # The broker's topics when this session first reached it: what is new at the end was
        # made by tests (every cluster a test starts makes its own set) and is deleted then.
        self._topics_before: set[str] | None = None
        self.cleanup = ""
        self._early: concurrent.futures.Future[None] | None = None

    def start_early(self, names: set[str]) -> None:
        """Begin starting `names` in a thread of its own, while the tests that need no server
        run (they are ordered first): their time hides the servers' start."""
        if names and self._early is None:
            pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
            self._early = pool.submit(self._start, names)
            pool.shutdown(wait=False)

    def ensure(self, names: set[str]) -> None:
        """Start, in parallel, every component in `names` not yet tried in this session."""
        if self._early is not None:
            self._early.result()
        self._start(names)

    def _start(self, names: set[str]) -> None:
        missing = sorted(names - self.results.keys())
        if not missing:
            return
        if self.lease is None:
            self.lease = leases.acquire(self.config.state_dir)
        self.results.update(start_each(self.config, missing))
        kafka = self.results.get("kafka")
        if "kafka" in missing and isinstance(kafka, Started):
            self._topics_before = _in_thread(topic_names, kafka.address)

    def require(self, name: str) -> Started:
        """The started component, or fail the calling test with the reason it did not start."""
        self.ensure({name})
        result = self.results[name]
        if isinstance(result, InfraError):
            pytest.fail(f"{name} could not start:\n{result}", pytrace=False)
        return result

    def finish(self) -> None:
        """Drop the lease; the last session out stops what `headrace infra up` did not pin."""
        if self._early is not None:
            concurrent.futures.wait([self._early])
        if self.lease is not None:
            leases.release(self.config.state_dir, self.lease, self._last_out)
            self.lease = None

    def _last_out(self) -> None:
        self._drop_new_topics()
        self._stop_unpinned()

    def _drop_new_topics(self) -> None:
        """Delete the topics made since this session began. Only the last session out does it,
        so no topic another session is using goes. Left behind, they pile up run after run
        (thousands of partitions), and a broker carrying them starts and answers slower."""
        kafka = self.results.get("kafka")
        if self._topics_before is None or not isinstance(kafka, Started):
            return
        try:
            made = _in_thread(topic_names, kafka.address) - self._topics_before
            made = {name for name in made if not name.startswith("__")}
            if made:
                _in_thread(delete_topics, kafka.address, made)
        except Exception as err:  # a broker gone at the end is worth a line, not a failure
            self.cleanup = f"the topics made by this session were not deleted: {err!r}"
        else:
            self.cleanup = f"deleted the {len(made)} topics made by this session"

    def _stop_unpinned(self) -> None:
        # The last session out: what any session started, even one this session did not use
        # (the secured profile runs for its tests only), is no longer needed.
        states = status(self.config, [*COMPONENTS, *SECURED])
        unpinned = [state.name for state in states if state.running and not state.pinned]
        if unpinned:
            down(self.config, unpinned)
            self.stopped = unpinned

    def summary(self) -> list[str]:
        lines = []
        for name, result in sorted(self.results.items()):
            if isinstance(result, InfraError):
                lines.append(f"{name}: FAILED to start: {str(result).splitlines()[0]}")
                continue
            if result.reused:
                how = "reused"
            else:
                fetch = f", jars fetched in {result.fetch_s:.1f} s" if result.fetch_s else ""
                how = f"started in {result.start_s:.1f} s{fetch}"
            end = "stopped at session end" if name in self.stopped else "left running"
            lines.append(f"{name}: {result.address} pid {result.pid}, {how}; {end}")
        if self.cleanup:
            lines.append(f"kafka: {self.cleanup}")
        return lines


_SESSION_KEY = pytest.StashKey[InfraSession]()
T = TypeVar("T")


def _in_thread(function: Callable[..., T], *args: Any) -> T:
    """Call a function that runs its own event loop, from a thread that may have one running
    (pytest-asyncio's), in a thread of its own."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(function, *args).result()


def needed_components(item: pytest.Item) -> set[str]:
    """The components a test needs: by its markers, or by the fixtures it (indirectly) uses."""
    fixtures = set(getattr(item, "fixturenames", ()))
    return {
        name
        for name, fixture_names in NEEDS.items()
        if item.get_closest_marker(name) is not None or fixtures & fixture_names
    }


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests that use the fixtures, before `-m` deselects by marker (hence tryfirst); and
    put the modules that need no server first, to run while the servers start."""
    needing: set[Path] = set()
    for item in items:
        for name in needed_components(item):
            needing.add(item.path)
            if item.get_closest_marker(name) is None:
                item.add_marker(name)
    items.sort(key=lambda item: item.path in needing)  # stable: order within each kept


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start what the selected tests need in the background (not for `--collect-only`)."""
    if session.config.option.collectonly:
        return
    needed = {marker for item in session.items for marker in needed_components(item)}
    session.config.stash[_SESSION_KEY].start_early(
        {component for marker in needed for component in STARTS[marker]}
    )


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_SESSION_KEY] = InfraSession(InfraConfig())


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    session = config.stash.get(_SESSION_KEY, None)
    if session is not None and session.results:
        terminalreporter.write_sep("-", "headrace infra")
        for line in session.summary():
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def headrace_infra(request: pytest.FixtureRequest) -> Iterator[InfraSession]:
    """The session's infrastructure; starts what the selected tests need, all at once."""
    session = request.config.stash[_SESSION_KEY]
    needed: set[str] = set()
    for item in request.session.items:
        needed |= needed_components(item)
    session.ensure({component for marker in needed for component in STARTS[marker]})
    yield session
    session.finish()


@pytest.fixture(autouse=True)
def _headrace_infra_for_marked(request: pytest.FixtureRequest) -> None:
    """A test marked `kafka` or `cassandra` gets its server even if it uses no fixture."""
    for marker, components in STARTS.items():
        if request.node.get_closest_marker(marker) is not None:
            for name in components:
                request.getfixturevalue("headrace_infra").require(name)


@pytest.fixture(scope="session")
def kafka_bootstrap(headrace_infra: InfraSession) -> str:
    """`host:port` of the Kafka broker, e.g. "127.0.0.1:29092"."""
    return headrace_infra.require("kafka").address


@pytest.fixture(scope="session")
def secured_infra(headrace_infra: InfraSession) -> SecuredEndpoints:
    """The secured profile (`headrace.infra.secured`): SASL/TLS Kafka, password/TLS Cassandra."""
    for name in SECURED:
        headrace_infra.require(name)
    return secured_endpoints(headrace_infra.config)


@pytest.fixture(scope="session")
def cassandra_contact(headrace_infra: InfraSession) -> tuple[str, int]:
    """`(host, port)` of the Cassandra native transport, e.g. ("127.0.0.1", 29042)."""
    host, port = headrace_infra.require("cassandra").address.rsplit(":", 1)
    return host, int(port)


def _unique_name(request: pytest.FixtureRequest, separator: str, max_length: int) -> str:
    """A readable, unique identifier: the test's name, cut to fit, plus random hex.

    Only letters, digits and `separator`, starting with a letter: valid as a Kafka topic name
    and as an unquoted CQL identifier alike.
    """
    words = re.findall(r"[a-z0-9]+", request.node.name.lower()) or ["test"]
    suffix = uuid.uuid4().hex[:10]
    name = separator.join(words)[: max_length - len(suffix) - 1].strip(separator)
    if not name[:1].isalpha():
        name = "t" + name
    return f"{name}{separator}{suffix}"


@pytest.fixture
def kafka_topic_prefix(request: pytest.FixtureRequest, kafka_bootstrap: str) -> str:
    """A topic-name prefix unique to this test, e.g. "test-commit-3f2a9c01d4." """
    return _unique_name(request, "-", 120) + "."


@pytest.fixture
async def new_topic(
    kafka_bootstrap: str, kafka_topic_prefix: str
) -> AsyncIterator[NewTopicFactory]:
    """`await new_topic("orders", partitions=4)` creates a topic for this test; deleted after.

    Topics are not auto-created by the local broker, as in production, so tests create them.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    created: list[str] = []

    async def create(
        suffix: str = "topic", partitions: int = 1, config: dict[str, str] | None = None
    ) -> str:
        topic = kafka_topic_prefix + suffix
        response = await admin.create_topics(
            [NewTopic(topic, partitions, 1, topic_configs=config or {})]
        )
        for _, code, message in response.topic_errors:
            if code != 0:
                raise InfraError(f"creating topic {topic} failed: error {code} {message}")
        created.append(topic)
        return topic

    try:
        yield create
    finally:
        if created:
            await admin.delete_topics(created)
        await admin.close()


@pytest.fixture(scope="session")
def _cassandra_admin(cassandra_contact: tuple[str, int]) -> Iterator[Session]:
    """One driver session for keyspace DDL, shared by the whole test session."""
    host, port = cassandra_contact
    cluster = local_cluster(host, port)
    try:
        yield cluster.connect()
    finally:
        cluster.shutdown()


@pytest.fixture(scope="session")
def drop_keyspace(_cassandra_admin: Session) -> Callable[[str], None]:
    """Drops a keyspace that something else created (`headrace migrate` for a test cluster)."""

    def drop(keyspace: str) -> None:
        drop_keyspace_in(_cassandra_admin, keyspace)

    return drop


@pytest.fixture
def cassandra_keyspace(request: pytest.FixtureRequest, _cassandra_admin: Session) -> Iterator[str]:
    """A keyspace (SimpleStrategy, RF 1) that only this test uses; dropped after it."""
    keyspace = _unique_name(request, "_", 48)
    _cassandra_admin.execute(
        f"CREATE KEYSPACE {keyspace} WITH replication = "
        "{'class': 'SimpleStrategy', 'replication_factor': 1}"
    )
    try:
        yield keyspace
    finally:
        drop_keyspace_in(_cassandra_admin, keyspace)
