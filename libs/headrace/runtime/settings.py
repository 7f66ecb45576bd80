"""The one settings model of both modes: what `headrace dev` and the service commands read their
flags and `HEADRACE_*` variables into (runtime/options.py, runtime/settings_commands.py), and
what each mode is built from: the services through their host (runtime/host.py), dev's embedded
adapters, a service's Kafka and Cassandra connections.

`Settings` has three groups:

- its own fields, the engine's: read in every mode (the HTTP address, keys, timeouts, limits,
  retention, intake topics, rate limit, the log's partitions, logging);
- `embedded`: `headrace dev`'s storage: where its SQLite file lives, the apps it polls, how often;
- `cluster`: a service's Kafka and Cassandra: addresses, keyspace, prefixes, replication,
  credentials and TLS, consistency.

A command fills the group of its mode; the other keeps its defaults and nothing in that mode
reads it. One flat set of engine fields (not a fourth group) keeps them where every service and
test reads them, `settings.call_timeout_s`.

Where the modes differ, they differ in `DEV_SETTINGS` and `SERVICE_SETTINGS` below and nowhere
else: those fields have no default of their own, so every settings value starts from one of the
two (the flags' defaults are read from them too).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from headrace.adapters.cassandra.consistency import CassandraConsistency
from headrace.adapters.cassandra.security import CassandraSecurity
from headrace.adapters.kafka.security import KafkaSecurity
from headrace.core.retention import DEFAULT_DEAD_LETTER_RETENTION_S, DEFAULT_RETENTION_S
from headrace.engine.step_limit import DEFAULT_MAX_STEPS
from headrace.flow.client_rate import ClientRate
from headrace.protocol.accounts import AccountKeys


@dataclass(frozen=True)
class EmbeddedStorage:
    """`headrace dev`'s: one SQLite file for its stores and log."""

    # Where the SQLite file lives; None keeps everything in memory (a throwaway run).
    state_dir: Path | None = Path(".headrace")
    # Apps' serve URLs synced at start and every poll interval.
    sdk_urls: tuple[str, ...] = ()
    poll_interval_s: float = 5.0


@dataclass(frozen=True)
class ClusterConnection:
    """A service's Kafka and Cassandra."""

    kafka_bootstrap: str = "127.0.0.1:29092"
    cassandra_hosts: tuple[str, ...] = ("127.0.0.1",)
    cassandra_port: int = 29042
    keyspace: str = "headrace"
    topic_prefix: str = "headrace."
    # Prepended to the consumer group ids (ingest, runner, scheduler, executor); None: the
    # topic prefix, so that deployments sharing a Kafka cluster under different topic prefixes
    # never join each other's groups (a kill in one would stall the other).
    group_prefix: str | None = None
    replication_factor: int = 1
    kafka_security: KafkaSecurity = field(default_factory=KafkaSecurity)
    cassandra_security: CassandraSecurity = field(default_factory=CassandraSecurity)
    cassandra_consistency: CassandraConsistency = field(default_factory=CassandraConsistency)

    @property
    def consumer_group_prefix(self) -> str:
        return self.topic_prefix if self.group_prefix is None else self.group_prefix


@dataclass(frozen=True, kw_only=True)
class Settings:
    # --- differ by mode: no default here, see DEV_SETTINGS and SERVICE_SETTINGS ---
    # Partitions of every topic of the log (the embedded one, or Kafka's).
    partitions: int
    # Writing requests per client at the ingest (api/rate_limit.py).
    rate_limit: ClientRate
    # With no event key configured: whether the Event API takes any key, for the default
    # account (Inngest's dev server does), or refuses every event.
    open_event_api_without_keys: bool
    # "console" (readable) or "json" (one object a line).
    log_format: str

    # --- the engine's, the same in both modes ---
    host: str = "127.0.0.1"
    # Of `headrace dev` and the ingest; each other service command has its own default.
    port: int = 8288
    # (event key, account) pairs the Event API takes.
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
    # Records of `work` an executor handles at once (runtime/consume.py): each is a run's call
    # to its app, or a timer's effect; more wait in the log.
    executor_concurrency: int = 200
    # Calls each app is sent at once; None: learnt per app (flow/app_limit.py).
    app_concurrency: int | None = None
    # A run fails when its settled steps reach this (Inngest's limit).
    max_steps: int = DEFAULT_MAX_STEPS
    # The token the dashboard and /metrics ask for: in dev only when keys are required (a
    # random one when not given); the distributed ingest serves no dashboard without it.
    dashboard_token: str | None = None
    # Topics (under the prefix) producers publish events to, read by the ingest.
    intake_topics: tuple[str, ...] = ("intake",)
    # Seconds ended runs (memos, history) and events are kept (Cassandra TTLs, dev's sweeper),
    # and dead letters (the dead-letter topic's retention.ms when headrace creates it).
    retention_s: int = DEFAULT_RETENTION_S
    dead_letter_retention_s: int = DEFAULT_DEAD_LETTER_RETENTION_S
    log_level: str = "info"

    # --- the storage of each mode ---
    embedded: EmbeddedStorage = field(default_factory=EmbeddedStorage)
    cluster: ClusterConnection = field(default_factory=ClusterConnection)

    def accounts(self) -> AccountKeys:
        any_event_key = not self.event_keys and self.open_event_api_without_keys
        return AccountKeys.of(
            None if any_event_key else self.event_keys, self.signing_key, self.signing_keys
        )


# `headrace dev`: one process on one's own machine.
DEV_SETTINGS = Settings(
    # Enough for the consumers of one process to interleave. Not a flag: a state dir keeps its
    # log's records by partition, and another count would misplace them.
    partitions=4,
    # Off (0 per second): the only client is oneself. The burst counts once a rate is given.
    rate_limit=ClientRate(0.0, 100),
    # As Inngest's dev server: events need no key until one is configured.
    open_event_api_without_keys=True,
    log_format="console",
)

# The service commands (and `migrate`): a deployment shared by clients.
SERVICE_SETTINGS = Settings(
    # Room for more replicas of each service than a first deployment runs.
    partitions=12,
    # Generous, so that only a runaway client meets it.
    rate_limit=ClientRate(1000.0, 2000),
    # A deployment never takes unknown keys: without keys, no event is accepted.
    open_event_api_without_keys=False,
    # For log collectors.
    log_format="json",
)
