"""A single-node Apache Cassandra 5.0 run straight from `cassandra-all`'s classpath.

`CassandraDaemon` is started directly, not through `bin/cassandra`, which refuses to run as
root and expects the tarball layout. What that script would add is here instead: the JPMS
`--add-exports/--add-opens` set from upstream's `jvm17-server.options` (without it, and
without the jamm agent that measures memtable sizes, the JVM dies during startup), and system
properties that skip the waits only a multi-node cluster needs: gossip settling, ring delay,
superuser setup, and the shutdown announcement to peers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, Session
from cassandra.policies import RoundRobinPolicy

from headrace.infra import jvm
from headrace.infra.component import Layout
from headrace.infra.config import InfraConfig
from headrace.infra.errors import InfraError

JPMS_FLAGS = [
    *(
        f"--add-exports={module}=ALL-UNNAMED"
        for module in (
            "java.base/jdk.internal.misc",
            "java.base/jdk.internal.ref",
            "java.base/sun.nio.ch",
            "java.management.rmi/com.sun.jmx.remote.internal.rmi",
            "java.management/com.sun.jmx.remote.security",
            "java.rmi/sun.rmi.registry",
            "java.rmi/sun.rmi.server",
            "java.sql/java.sql",
            "java.base/java.lang.ref",
            "jdk.unsupported/sun.misc",
            "jdk.compiler/com.sun.tools.javac.file",
            "jdk.attach/sun.tools.attach",
        )
    ),
    *(
        f"--add-opens={module}=ALL-UNNAMED"
        for module in (
            "java.base/java.lang.module",
            "java.base/jdk.internal.loader",
            "java.base/jdk.internal.ref",
            "java.base/jdk.internal.reflect",
            "java.base/jdk.internal.math",
            "java.base/jdk.internal.module",
            "java.base/jdk.internal.util.jar",
            "jdk.management/com.sun.management.internal",
            "java.base/sun.nio.ch",
            "java.base/java.io",
            "java.base/java.lang.reflect",
            "jdk.compiler/com.sun.tools.javac",
            "java.base/java.lang",
            "java.base/java.util",
            "java.base/java.nio",
            "java.base/java.util.concurrent",
            "java.base/java.util.concurrent.atomic",
        )
    ),
]

PROTOCOL_VERSION = 5  # Cassandra 5.0's default; saves the driver's noisy downgrade from v6-beta

LOGBACK_XML = """\
<configuration>
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%d{HH:mm:ss.SSS} %-5level [%thread] %logger{1} %msg%n</pattern></encoder>
  </appender>
  <root level="WARN"><appender-ref ref="STDOUT"/></root>
  <logger name="org.apache.cassandra.service.StorageService" level="INFO"/>
  <logger name="org.apache.cassandra.transport" level="INFO"/>
</configuration>
"""


def local_cluster(host: str, port: int, **options: Any) -> Cluster:
    """A driver `Cluster` for the single local node, without the driver's warnings.

    An explicit load-balancing policy (in an execution profile, the non-deprecated way) and
    protocol version keep the driver from logging a warning on every connect.
    """
    profile = ExecutionProfile(load_balancing_policy=RoundRobinPolicy())
    return Cluster(
        [host],
        port=port,
        protocol_version=PROTOCOL_VERSION,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        **options,
    )


def drop_keyspace(session: Session, keyspace: str) -> None:
    """Drop a keyspace a test or a benchmark made. Each holds a dozen tables and every table
    costs the node heap: keyspaces left behind end with a Cassandra out of memory."""
    session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)


class Cassandra:
    """Configuration, command line and readiness probe of the local Cassandra node."""

    name = "cassandra"
    stop_grace_s = 30.0

    def __init__(self, config: InfraConfig) -> None:
        self.config = config
        self.layout = Layout(config.component_dir(self.name))
        self.host = config.host
        self.port = config.cassandra_port
        self.storage_port = config.cassandra_storage_port

    @property
    def ports(self) -> tuple[int, ...]:
        return (self.port, self.storage_port)

    @property
    def coordinates(self) -> list[str]:
        return [f"org.apache.cassandra:cassandra-all:{self.config.cassandra_version}"]

    def cassandra_yaml(self) -> str:
        """A minimal single-node yaml (5.0 unit-suffixed keys), written as text: no YAML library.

        Small memtables and caches keep the node inside its heap; `auto_snapshot: false` makes
        the DROP KEYSPACE that ends every test cheap.
        """
        host, data = self.host, self.layout.data
        return f"""\
cluster_name: headrace-local
num_tokens: 1
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
endpoint_snitch: SimpleSnitch
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "{host}:{self.storage_port}"
listen_address: {host}
rpc_address: {host}
storage_port: {self.storage_port}
native_transport_port: {self.port}
start_native_transport: true
data_file_directories: ["{data / "data"}"]
commitlog_directory: "{data / "commitlog"}"
saved_caches_directory: "{data / "saved_caches"}"
hints_directory: "{data / "hints"}"
cdc_raw_directory: "{data / "cdc_raw"}"
commitlog_sync: periodic
commitlog_sync_period: 10000ms
commitlog_segment_size: 32MiB
commitlog_total_space: 256MiB
memtable_allocation_type: heap_buffers
memtable_heap_space: 64MiB
memtable_offheap_space: 64MiB
file_cache_size: 32MiB
key_cache_size: 8MiB
counter_cache_size: 0MiB
concurrent_reads: 8
concurrent_writes: 8
concurrent_counter_writes: 4
concurrent_compactors: 1
compaction_throughput: 0MiB/s
auto_snapshot: false
authenticator: AllowAllAuthenticator
authorizer: AllowAllAuthorizer
disk_failure_policy: stop
commit_failure_policy: stop
"""

    def prepare(self, lib_dir: Path) -> list[str]:
        root, data = self.layout.root, self.layout.data
        (root / "cassandra.yaml").write_text(self.cassandra_yaml())
        (root / "logback.xml").write_text(LOGBACK_XML)
        (data / "triggers").mkdir(parents=True, exist_ok=True)
        jamm = sorted(lib_dir.glob("jamm-*.jar"))
        if not jamm:
            raise InfraError(f"no jamm agent jar in {lib_dir}; delete it to fetch again")
        return [
            jvm.java_binary(),
            *jvm.heap_flags(self.config.cassandra_heap),
            "-XX:+ParallelRefProcEnabled",
            "-XX:MaxGCPauseMillis=300",
            "-Xss256k",
            "-da:net.openhft...",
            "-Djdk.attach.allowAttachSelf=true",
            *JPMS_FLAGS,
            "-Dio.netty.tryReflectionSetAccessible=true",
            "-Dio.netty.allocator.useCacheForAllThreads=true",
            "-Dio.netty.allocator.maxOrder=11",
            f"-javaagent:{jamm[-1]}",
            f"-Dcassandra.config=file://{root / 'cassandra.yaml'}",
            f"-Dcassandra.storagedir={data}",
            f"-Dcassandra.logdir={root}",
            f"-Dcassandra.triggers_dir={data / 'triggers'}",
            "-Dcassandra-foreground=yes",
            f"-Dlogback.configurationFile=file://{root / 'logback.xml'}",
            "-Dcassandra.skip_wait_for_gossip_to_settle=0",
            "-Dcassandra.ring_delay_ms=1000",
            "-Dcassandra.superuser_setup_delay_ms=0",
            "-Dcassandra.shutdown_announce_in_ms=0",
            "-Dcassandra.unsafesystem=true",
            "-Dcassandra.test.flush_local_schema_changes=false",
            "-Dcassandra.system_auth.default_rf=1",
            "-Dcassandra.system_distributed.default_rf=1",
            "-Dcassandra.system_traces.default_rf=1",
            "-cp",
            jvm.classpath(lib_dir),
            "org.apache.cassandra.service.CassandraDaemon",
        ]

    def client_options(self) -> dict[str, Any]:
        """What a driver needs beyond the address (credentials, TLS): nothing here."""
        return {}

    def probe(self) -> None:
        """A CQL query: the native transport is up and the node serves reads."""
        cluster = local_cluster(
            self.host,
            self.port,
            connect_timeout=5,
            control_connection_timeout=5,
            **self.client_options(),
        )
        try:
            row = cluster.connect().execute("SELECT release_version FROM system.local").one()
        finally:
            cluster.shutdown()
        if row is None:
            raise InfraError(f"cassandra at {self.host}:{self.port} returned no system.local row")
