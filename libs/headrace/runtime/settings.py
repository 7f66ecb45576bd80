"""Settings of a distributed-mode process: what the service commands' flags and `HEADRACE_*`
environment variables (runtime/cluster_options.py) are read into."""

from __future__ import annotations

from dataclasses import dataclass, field

from headrace.adapters.cassandra.consistency import CassandraConsistency
from headrace.adapters.cassandra.security import CassandraSecurity
from headrace.adapters.kafka.security import KafkaSecurity
from headrace.core.retention import DEFAULT_DEAD_LETTER_RETENTION_S, DEFAULT_RETENTION_S
from headrace.engine.step_limit import DEFAULT_MAX_STEPS
from headrace.flow.client_rate import ClientRate
from headrace.protocol.accounts import AccountKeys
from headrace.runtime.shared_options import DEFAULT_EXECUTOR_CONCURRENCY

# Requests per second per client, and how many at once.
DEFAULT_RATE_LIMIT = (1000.0, 2000)


@dataclass(frozen=True)
class ClusterSettings:
    kafka_bootstrap: str = "127.0.0.1:29092"
    cassandra_hosts: tuple[str, ...] = ("127.0.0.1",)
    cassandra_port: int = 29042
    keyspace: str = "headrace"
    topic_prefix: str = "headrace."
    # Prepended to the consumer group ids (ingest, runner, scheduler, executor); None: the
    # topic prefix, so that deployments sharing a Kafka cluster under different topic prefixes
    # never join each other's groups (a kill in one would stall the other).
    group_prefix: str | None = None
    partitions: int = 12
    replication_factor: int = 1
    host: str = "127.0.0.1"
    port: int = 8288
    # Event key -> account id; without keys the Event API refuses every request.
    event_keys: tuple[tuple[str, str], ...] = ()
    # The default account's signing key, and (account, signing key) pairs for the others.
    signing_key: str | None = None
    signing_keys: tuple[tuple[str, str], ...] = ()
    # An app's answer to a signed call must be signed too (docs/answer-signatures.md).
    require_signed_answers: bool = False
    # Every retry waits this long (`--retry-interval`); None: Inngest's exponential backoff.
    retry_interval_s: float | None = None
    call_timeout_s: float = 300.0
    # How long a Durable Endpoint's request may hold its run before the run fails.
    endpoint_timeout_s: float = 3600.0
    executor_concurrency: int = DEFAULT_EXECUTOR_CONCURRENCY
    # A run fails when its settled steps reach this (executor; ingest for Durable Endpoints).
    max_steps: int = DEFAULT_MAX_STEPS
    # The ingest serves the dashboard only to requests that show this token.
    dashboard_token: str | None = None
    # Topics (under the prefix) that producers publish events to, read by the ingest.
    intake_topics: tuple[str, ...] = ("intake",)
    # Seconds ended runs (memos, history) and events are kept (Cassandra TTLs), and dead letters
    # (the dead-letter topic's retention.ms, set when headrace creates it).
    retention_s: int = DEFAULT_RETENTION_S
    dead_letter_retention_s: int = DEFAULT_DEAD_LETTER_RETENTION_S
    kafka_security: KafkaSecurity = field(default_factory=KafkaSecurity)
    cassandra_security: CassandraSecurity = field(default_factory=CassandraSecurity)
    cassandra_consistency: CassandraConsistency = field(default_factory=CassandraConsistency)
    # Writing requests per client at the ingest (api/rate_limit.py): generous, so that only a
    # runaway client meets it.
    rate_limit: ClientRate = field(default_factory=lambda: ClientRate(*DEFAULT_RATE_LIMIT))

    def accounts(self) -> AccountKeys:
        return AccountKeys.of(self.event_keys, self.signing_key, self.signing_keys)

    @property
    def consumer_group_prefix(self) -> str:
        return self.topic_prefix if self.group_prefix is None else self.group_prefix
