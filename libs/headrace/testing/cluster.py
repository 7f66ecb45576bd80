"""A distributed-mode headrace for tests: ingest, runners, schedulers and executors as separate
processes on real Kafka and Cassandra, and a handle to drive and observe them."""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx

from headrace.adapters.cassandra.security import CassandraSecurity
from headrace.adapters.kafka.security import KafkaSecurity
from headrace.ports.stores import Stores
from headrace.runtime.connect import connect_cluster
from headrace.runtime.settings import SERVICE_SETTINGS, ClusterConnection, Settings
from headrace.testing.dev import EngineHandle
from headrace.testing.patient_stores import patient
from headrace.testing.sdk_app import free_port

PR_SET_PDEATHSIG = 1
DEFAULT_COUNTS = {"ingest": 1, "runner": 2, "scheduler": 1, "executor": 2}

# The keys the tests send with; all map to the one test account.
TEST_EVENT_KEYS = "test-key=default,key=default,k=default,demo-key=default,NO_EVENT_KEY_SET=default"
# The ingest's dashboard asks for this token.
TEST_DASHBOARD_TOKEN = "test-dashboard-token"


def cluster_test_settings(
    kafka_bootstrap: str,
    cassandra_contact: tuple[str, int],
    *,
    keyspace: str,
    topic_prefix: str | None = None,
    partitions: int,
    kafka_security: KafkaSecurity | None = None,
    cassandra_security: CassandraSecurity | None = None,
    **engine: Any,
) -> Settings:
    """The service commands' settings for a test or benchmark cluster on this Kafka and
    Cassandra, in a keyspace and under a topic prefix (by default `keyspace` and a dot) of its
    own, so that clusters sharing a broker and a Cassandra node never meet. `engine`: other
    `Settings` fields (retry interval, timeouts)."""
    host, port = cassandra_contact
    connection = ClusterConnection(
        kafka_bootstrap=kafka_bootstrap,
        cassandra_hosts=(host,),
        cassandra_port=port,
        keyspace=keyspace,
        topic_prefix=f"{keyspace}." if topic_prefix is None else topic_prefix,
        kafka_security=kafka_security or KafkaSecurity(),
        cassandra_security=cassandra_security or CassandraSecurity(),
    )
    return replace(SERVICE_SETTINGS, cluster=connection, partitions=partitions, **engine)


def die_with_parent() -> None:
    """Linux: the service gets SIGTERM when the test process dies, even by SIGKILL, so a test
    run that is killed leaves no service behind."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def security_env(cluster: ClusterConnection) -> dict[str, str]:
    """The `HEADRACE_*` variables that give a service `cluster`'s credentials and TLS files."""
    kafka, cassandra = cluster.kafka_security, cluster.cassandra_security
    values = {
        "HEADRACE_KAFKA_SECURITY_PROTOCOL": kafka.protocol,
        "HEADRACE_KAFKA_SASL_MECHANISM": kafka.sasl_mechanism,
        "HEADRACE_KAFKA_SASL_USERNAME": kafka.sasl_username,
        "HEADRACE_KAFKA_SASL_PASSWORD": kafka.sasl_password,
        "HEADRACE_KAFKA_SSL_CAFILE": kafka.ssl_cafile,
        "HEADRACE_KAFKA_SSL_CERTFILE": kafka.ssl_certfile,
        "HEADRACE_KAFKA_SSL_KEYFILE": kafka.ssl_keyfile,
        "HEADRACE_CASSANDRA_USERNAME": cassandra.username,
        "HEADRACE_CASSANDRA_PASSWORD": cassandra.password,
        "HEADRACE_CASSANDRA_SSL_CAFILE": cassandra.ssl_cafile,
    }
    return {name: value for name, value in values.items() if value}


@dataclass
class ServiceProc:
    name: str
    port: int
    process: subprocess.Popen[bytes] | None = None


@dataclass
class Cluster:
    settings: Settings
    log_dir: Path
    counts: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_COUNTS))
    procs: list[ServiceProc] = field(default_factory=list)
    # More environment for every service (where to export traces, other keys), over the rest.
    env: dict[str, str] = field(default_factory=dict)
    # The command a service runs under, if any (e.g. `headrace.testing.netns.command`).
    wrap: Callable[[ServiceProc], list[str]] | None = None

    def _env(self, port: int) -> dict[str, str]:
        s, c = self.settings, self.settings.cluster
        return {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "HEADRACE_KAFKA_BOOTSTRAP": c.kafka_bootstrap,
            "HEADRACE_CASSANDRA_HOSTS": ",".join(c.cassandra_hosts),
            "HEADRACE_CASSANDRA_PORT": str(c.cassandra_port),
            "HEADRACE_KEYSPACE": c.keyspace,
            "HEADRACE_TOPIC_PREFIX": c.topic_prefix,
            "HEADRACE_GROUP_PREFIX": self.group(""),
            "HEADRACE_PARTITIONS": str(s.partitions),
            "HEADRACE_EVENT_KEYS": TEST_EVENT_KEYS,
            # Unset: Inngest's backoff, as the flag's default.
            **(
                {}
                if s.retry_interval_s is None
                else {"HEADRACE_RETRY_INTERVAL": str(s.retry_interval_s)}
            ),
            "HEADRACE_CALL_TIMEOUT": str(s.call_timeout_s),
            "HEADRACE_ENDPOINT_TIMEOUT": str(s.endpoint_timeout_s),
            "HEADRACE_PORT": str(port),
            "HEADRACE_LOG_LEVEL": "info",
            "HEADRACE_DASHBOARD_TOKEN": TEST_DASHBOARD_TOKEN,
            **security_env(c),
            **self.env,
        }

    def group(self, service: str) -> str:
        """The consumer group id of `service` in this cluster. Tests share one broker, so each
        cluster prefixes its groups as it does its topics: one test's members never join
        another's groups."""
        return self.settings.cluster.topic_prefix + service

    @property
    def url(self) -> str:
        ingest = next(p for p in self.procs if p.name == "ingest")
        return f"http://127.0.0.1:{ingest.port}"

    @property
    def metrics(self) -> dict[str, str]:
        """Each service process's `/metrics`, by its name and port."""
        return {f"{p.name}:{p.port}": f"http://127.0.0.1:{p.port}/metrics" for p in self.procs}

    def migrate(self) -> None:
        subprocess.run(
            [sys.executable, "-m", "headrace", "migrate"],
            env=self._env(0),
            check=True,
            capture_output=True,
        )

    def spawn(self, proc: ServiceProc) -> None:
        log = (self.log_dir / f"{proc.name}-{proc.port}.log").open("ab")
        proc.process = subprocess.Popen(
            [*(self.wrap(proc) if self.wrap else []), sys.executable, "-m", "headrace", proc.name],
            env=self._env(proc.port),
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )

    async def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.migrate()
        for name, count in self.counts.items():
            for _ in range(count):
                proc = ServiceProc(name, free_port())
                self.procs.append(proc)
                self.spawn(proc)
        await asyncio.gather(*(self.wait_ready(p) for p in self.procs))

    async def wait_ready(self, proc: ServiceProc, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient() as client:
            while time.monotonic() < deadline:
                assert proc.process is not None
                if proc.process.poll() is not None:
                    raise RuntimeError(f"{proc.name} exited; see {self.log_dir}")
                try:
                    response = await client.get(f"http://127.0.0.1:{proc.port}/ready")
                    if response.status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2)
        raise RuntimeError(f"{proc.name} on {proc.port} not ready in {timeout} s")

    def of(self, name: str) -> list[ServiceProc]:
        return [p for p in self.procs if p.name == name]

    def kill(self, proc: ServiceProc) -> None:
        """SIGKILL: no drain, no commit, no leaving the group (its session has to expire)."""
        assert proc.process is not None
        proc.process.send_signal(signal.SIGKILL)
        proc.process.wait()

    async def restart(self, proc: ServiceProc) -> None:
        self.spawn(proc)
        await self.wait_ready(proc)

    async def add(self, name: str) -> ServiceProc:
        """One more instance of a service, joining the running ones."""
        proc = ServiceProc(name, free_port())
        self.procs.append(proc)
        await self.restart(proc)
        return proc

    async def restart_all(self) -> None:
        """SIGTERM every service, wait for each to exit, and start them all again on their
        ports: the whole engine restarted, with its state in Kafka and Cassandra."""
        await self.stop()
        for proc in self.procs:
            self.spawn(proc)
        await asyncio.gather(*(self.wait_ready(p) for p in self.procs))

    async def stop(self) -> None:
        for proc in self.procs:
            if proc.process is not None and proc.process.poll() is None:
                proc.process.send_signal(signal.SIGTERM)
        for proc in self.procs:
            if proc.process is not None:
                try:
                    await asyncio.to_thread(proc.process.wait, 30)
                except subprocess.TimeoutExpired:
                    proc.process.kill()


async def start_cluster(
    settings: Settings,
    log_dir: Path,
    *,
    counts: dict[str, int] | None = None,
    env: dict[str, str] | None = None,
    wrap: Callable[[ServiceProc], list[str]] | None = None,
) -> tuple[Cluster, EngineHandle]:
    """`counts` of each service; by default an ingest, two runners, a scheduler, two executors.
    `wrap(proc)`: the command prefix to run a service under."""
    cluster = Cluster(settings, log_dir, counts or dict(DEFAULT_COUNTS), env=env or {}, wrap=wrap)
    await cluster.start()
    connection = await connect_cluster(settings)

    async def stop() -> None:
        await cluster.stop()
        await connection.close()

    stores = patient(connection.stores)

    async def restart() -> Stores:
        await cluster.restart_all()
        return stores  # the test's own connection outlives the services

    handle = EngineHandle(
        cluster.url,
        stores,
        stop,
        mode="distributed",
        partitions=settings.partitions,
        restart=restart,
        metrics=cluster.metrics,
    )
    return cluster, handle
