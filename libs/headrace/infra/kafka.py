"""A single-node Apache Kafka 4.x in KRaft mode (one process is broker and controller).

Kafka's POM brings log4j-api and log4j-core but not an SLF4J binding (the release tarball adds
it), so without `log4j-slf4j-impl` the broker would log nothing at all. The settings follow
Kafka's own embedded test cluster: one replica everywhere, few internal partitions, no initial
rebalance delay and a low minimum session timeout, so consumer groups join and rebalance in
about a second instead of tens of seconds. A short broker session lets a broker that was
killed (not stopped) come back in a few seconds instead of waiting out its old session.
"""

from __future__ import annotations

import asyncio
import base64
import subprocess
import uuid
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient

from headrace.infra import jvm
from headrace.infra.component import Layout
from headrace.infra.config import InfraConfig
from headrace.infra.errors import InfraError

LOG4J2_VERSION = "2.24.3"  # what kafka-clients 4.1 itself depends on
FORMAT_TIMEOUT_S = 120

LOG4J2_PROPERTIES = """\
status = warn
rootLogger.level = WARN
rootLogger.appenderRef.stdout.ref = STDOUT
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
logger.raftserver.name = kafka.server.KafkaRaftServer
logger.raftserver.level = INFO
"""


def _cluster_id() -> str:
    """A random KRaft cluster id (base64url UUID); one starting with '-' would read as a flag."""
    while True:
        candidate = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not candidate.startswith("-"):
            return candidate


class Kafka:
    """Configuration, storage format, command line and readiness probe of the local broker."""

    name = "kafka"
    stop_grace_s = 30.0

    def __init__(self, config: InfraConfig) -> None:
        self.config = config
        self.layout = Layout(config.component_dir(self.name))
        self.host = config.host
        self.port = config.kafka_port
        self.controller_port = config.kafka_controller_port

    @property
    def ports(self) -> tuple[int, ...]:
        return (self.port, self.controller_port)

    @property
    def coordinates(self) -> list[str]:
        return [
            f"org.apache.kafka:kafka_2.13:{self.config.kafka_version}",
            f"org.apache.logging.log4j:log4j-slf4j-impl:{LOG4J2_VERSION}",
        ]

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def server_properties(self) -> str:
        host, data = self.host, self.layout.data
        return f"""\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@{host}:{self.controller_port}
listeners=PLAINTEXT://{host}:{self.port},CONTROLLER://{host}:{self.controller_port}
advertised.listeners=PLAINTEXT://{host}:{self.port}
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs={data}
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=5
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=5
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
broker.heartbeat.interval.ms=1000
broker.session.timeout.ms=4000
group.min.session.timeout.ms=500
auto.create.topics.enable=false
num.network.threads=2
num.io.threads=2
background.threads=2
num.recovery.threads.per.data.dir=1
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=2097152
log.segment.bytes=16777216
"""

    def _java(self, lib_dir: Path, max_heap: str, *args: str) -> list[str]:
        return [
            jvm.java_binary(),
            *jvm.heap_flags(max_heap),
            "-XX:MaxGCPauseMillis=20",
            f"-Dlog4j2.configurationFile=file:{self.layout.root / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={self.layout.root}",
            "-cp",
            jvm.classpath(lib_dir),
            *args,
        ]

    def _format_storage(self, lib_dir: Path, properties: Path) -> None:
        """Format the KRaft metadata log once; a formatted directory keeps its cluster id."""
        if (self.layout.data / "meta.properties").exists():
            return
        command = self._java(
            lib_dir,
            "256m",
            "kafka.tools.StorageTool",
            "format",
            f"--cluster-id={_cluster_id()}",
            "--config",
            str(properties),
            *self.format_args(),
        )
        with self.layout.log.open("a") as out:
            result = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=FORMAT_TIMEOUT_S,
                check=False,
            )
        if result.returncode != 0:
            raise InfraError(
                f"kafka storage format exited with {result.returncode}", self.layout.log
            )

    def format_args(self) -> list[str]:
        """More arguments to the storage format (users to create, in the secured profile)."""
        return []

    def prepare(self, lib_dir: Path) -> list[str]:
        root = self.layout.root
        properties = root / "server.properties"
        properties.write_text(self.server_properties())
        (root / "log4j2.properties").write_text(LOG4J2_PROPERTIES)
        self._format_storage(lib_dir, properties)
        return self._java(lib_dir, self.config.kafka_heap, "kafka.Kafka", str(properties))

    def probe(self) -> None:
        """A metadata request through the admin client: the broker is registered and serving."""
        cluster = asyncio.run(_describe_cluster(self.bootstrap))
        brokers = cluster.get("brokers") or []
        if not any(broker["port"] == self.port for broker in brokers):
            raise InfraError(f"kafka at {self.bootstrap} lists no broker yet: {cluster}")


async def _describe_cluster(bootstrap: str) -> dict[str, Any]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    await admin.start()
    try:
        return await admin.describe_cluster()
    finally:
        await admin.close()


def topic_names(bootstrap: str) -> set[str]:
    """Every topic on the broker (Kafka's own internal ones included)."""
    return asyncio.run(_topic_names(bootstrap))


def delete_topics(bootstrap: str, names: set[str]) -> None:
    """Delete `names`, a hundred per request: the broker takes its time over thousands."""
    asyncio.run(_delete_topics(bootstrap, sorted(names)))


async def _topic_names(bootstrap: str) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30_000)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def _delete_topics(bootstrap: str, names: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=60_000)
    await admin.start()
    try:
        for start in range(0, len(names), 100):
            await admin.delete_topics(names[start : start + 100], timeout_ms=60_000)
    finally:
        await admin.close()
