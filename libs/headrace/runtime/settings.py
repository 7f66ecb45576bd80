"""Settings of a distributed-mode process, from flags or `HEADRACE_*` environment variables."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import click

from headrace.adapters.cassandra.consistency import (
    CassandraConsistency,
    check_level,
    check_serial,
)
from headrace.adapters.cassandra.security import CassandraSecurity
from headrace.adapters.kafka.security import PROTOCOLS, SASL_MECHANISMS, KafkaSecurity
from headrace.core.retention import (
    DEFAULT_DEAD_LETTER_RETENTION_S,
    DEFAULT_RETENTION_S,
    MAX_RETENTION_S,
)
from headrace.engine.step_limit import DEFAULT_MAX_STEPS, MAX_STEPS_CEILING
from headrace.flow.client_rate import ClientRate
from headrace.protocol.accounts import AccountKeys

F = TypeVar("F", bound=Callable[..., Any])


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
    backoff_scale: float = 1.0
    call_timeout_s: float = 300.0
    # How long a Durable Endpoint's request may hold its run before the run fails.
    endpoint_timeout_s: float = 3600.0
    executor_concurrency: int = 200
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


def _pairs(value: str, shape: str) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in filter(None, (part.strip() for part in value.split(","))):
        left, sep, right = item.partition("=")
        if not sep or not left or not right:
            raise click.BadParameter(f"expected {shape}, got {item!r}")
        pairs.append((left, right))
    return tuple(pairs)


# Shared by `headrace dev`, where the same intake reads the same topics on the embedded log.
intake_topics_option = click.option(
    "--intake-topics",
    envvar="HEADRACE_INTAKE_TOPICS",
    default="intake",
    show_default=True,
    help="Comma-separated topics (under the prefix) producers publish events to; the ingest "
    "reads them. Empty: none.",
)


# Shared by `headrace dev`, which sweeps its SQLite state and dead letters by the same settings.
retention_option = click.option(
    "--retention",
    envvar="HEADRACE_RETENTION",
    type=click.IntRange(1, MAX_RETENTION_S),
    default=DEFAULT_RETENTION_S,
    show_default=True,
    help="Seconds ended runs (with their memos and history) and events are kept.",
)
dead_letter_retention_option = click.option(
    "--dead-letter-retention",
    envvar="HEADRACE_DEAD_LETTER_RETENTION",
    type=click.IntRange(1, MAX_RETENTION_S),
    default=DEFAULT_DEAD_LETTER_RETENTION_S,
    show_default=True,
    help="Seconds records of the dead-letter topic are kept.",
)


# Shared by `headrace dev`.
max_steps_option = click.option(
    "--max-steps",
    envvar="HEADRACE_MAX_STEPS",
    type=click.IntRange(1, MAX_STEPS_CEILING),
    default=DEFAULT_MAX_STEPS,
    show_default=True,
    help="Steps a run may settle; at this many it fails (InngestErrFunctionOverflowed) instead "
    "of calling its app again, as in Inngest.",
)


# Shared by `headrace dev`.
require_signed_answers_option = click.option(
    "--require-signed-answers",
    envvar="HEADRACE_REQUIRE_SIGNED_ANSWERS",
    is_flag=True,
    default=False,
    help="Refuse an app's answer without a valid X-Inngest-Signature (the SDKs sign in "
    "production mode); without it, only an answer that carries one has it checked. Needs a "
    "signing key.",
)


def require_signing_key(required: bool, has_key: bool) -> None:
    """`--require-signed-answers` without a key: no call is signed, so no answer would be."""
    if required and not has_key:
        raise click.UsageError("--require-signed-answers needs a signing key")


def parse_topics(value: str) -> tuple[str, ...]:
    """`--intake-topics`: comma-separated names, blanks dropped."""
    return tuple(t.strip() for t in value.split(",") if t.strip())


_FILE = click.Path(exists=True, dir_okay=False)

# Credentials and TLS for Kafka and Cassandra. Passwords are best given by environment (from a
# mounted Secret): a flag's value shows in the process list.
_security_options = [
    click.option(
        "--kafka-security-protocol",
        envvar="HEADRACE_KAFKA_SECURITY_PROTOCOL",
        type=click.Choice(PROTOCOLS, case_sensitive=False),
        default="PLAINTEXT",
        show_default=True,
        callback=lambda _ctx, _param, value: value.upper(),
    ),
    click.option(
        "--kafka-sasl-mechanism",
        envvar="HEADRACE_KAFKA_SASL_MECHANISM",
        type=click.Choice(SASL_MECHANISMS, case_sensitive=False),
        default="PLAIN",
        show_default=True,
        callback=lambda _ctx, _param, value: value.upper(),
    ),
    click.option("--kafka-sasl-username", envvar="HEADRACE_KAFKA_SASL_USERNAME", default=None),
    click.option(
        "--kafka-sasl-password",
        envvar="HEADRACE_KAFKA_SASL_PASSWORD",
        default=None,
        help="Prefer the environment variable.",
    ),
    click.option(
        "--kafka-ssl-cafile",
        envvar="HEADRACE_KAFKA_SSL_CAFILE",
        type=_FILE,
        default=None,
        help="CA bundle (PEM) the brokers' certificates are verified with; default: the system's.",
    ),
    click.option(
        "--kafka-ssl-certfile",
        envvar="HEADRACE_KAFKA_SSL_CERTFILE",
        type=_FILE,
        default=None,
        help="Client certificate (PEM), for brokers that require one.",
    ),
    click.option(
        "--kafka-ssl-keyfile", envvar="HEADRACE_KAFKA_SSL_KEYFILE", type=_FILE, default=None
    ),
    click.option("--cassandra-username", envvar="HEADRACE_CASSANDRA_USERNAME", default=None),
    click.option(
        "--cassandra-password",
        envvar="HEADRACE_CASSANDRA_PASSWORD",
        default=None,
        help="Prefer the environment variable.",
    ),
    click.option(
        "--cassandra-ssl-cafile",
        envvar="HEADRACE_CASSANDRA_SSL_CAFILE",
        type=_FILE,
        default=None,
        help="CA (PEM) to verify the nodes with; set it to connect over TLS.",
    ),
]


def _checked(check: Callable[[str], str]) -> Callable[[Any, Any, str], str]:
    """An option callback: the value upper-cased, or a usage error saying why it is refused."""

    def callback(_ctx: Any, _param: Any, value: str) -> str:
        try:
            return check(value.upper())
        except ValueError as err:
            raise click.BadParameter(str(err)) from err

    return callback


_consistency_options = [
    click.option(
        "--cassandra-consistency",
        envvar="HEADRACE_CASSANDRA_CONSISTENCY",
        default=CassandraConsistency.level,
        show_default=True,
        callback=_checked(check_level),
        help="Of every read and write: LOCAL_QUORUM, QUORUM (services in several data centres) "
        "or ALL; weaker levels are refused.",
    ),
    click.option(
        "--cassandra-serial-consistency",
        envvar="HEADRACE_CASSANDRA_SERIAL_CONSISTENCY",
        default=CassandraConsistency.serial,
        show_default=True,
        callback=_checked(check_serial),
        help="Of lightweight transactions: LOCAL_SERIAL or SERIAL.",
    ),
]


def rate_limit_options(per_second: float, burst: int) -> list[Callable[[F], F]]:
    """`--rate-limit` and `--rate-burst`: writing requests per client (api/rate_limit.py)."""
    return [
        click.option(
            "--rate-limit",
            envvar="HEADRACE_RATE_LIMIT",
            type=click.FloatRange(min=0),
            default=per_second,
            show_default=True,
            help="Writing requests (POST, PUT, DELETE) per second per account or, for a key "
            "no account has, per address; over it: 429 with Retry-After. 0: no limit.",
        ),
        click.option(
            "--rate-burst",
            envvar="HEADRACE_RATE_BURST",
            type=click.IntRange(min=1),
            default=burst,
            show_default=True,
            help="How many writing requests per client may come at once.",
        ),
    ]


def cluster_options(default_port: int) -> Callable[[F], F]:
    """The flags every service takes; each also reads its `HEADRACE_*` variable."""
    options = [
        click.option(
            "--kafka-bootstrap",
            envvar="HEADRACE_KAFKA_BOOTSTRAP",
            default=ClusterSettings.kafka_bootstrap,
            show_default=True,
        ),
        click.option(
            "--cassandra-hosts",
            envvar="HEADRACE_CASSANDRA_HOSTS",
            default="127.0.0.1",
            show_default=True,
            help="Comma-separated.",
        ),
        click.option(
            "--cassandra-port",
            envvar="HEADRACE_CASSANDRA_PORT",
            type=int,
            default=ClusterSettings.cassandra_port,
            show_default=True,
        ),
        click.option(
            "--keyspace",
            envvar="HEADRACE_KEYSPACE",
            default=ClusterSettings.keyspace,
            show_default=True,
        ),
        click.option(
            "--topic-prefix",
            envvar="HEADRACE_TOPIC_PREFIX",
            default=ClusterSettings.topic_prefix,
            show_default=True,
        ),
        click.option(
            "--group-prefix",
            envvar="HEADRACE_GROUP_PREFIX",
            default=None,
            help="Prepended to consumer group ids.  [default: the topic prefix]",
        ),
        click.option(
            "--partitions",
            envvar="HEADRACE_PARTITIONS",
            type=int,
            default=ClusterSettings.partitions,
            show_default=True,
            help="Partition count of every topic.",
        ),
        click.option(
            "--replication-factor",
            envvar="HEADRACE_REPLICATION_FACTOR",
            type=int,
            default=ClusterSettings.replication_factor,
            show_default=True,
        ),
        click.option(
            "--host", envvar="HEADRACE_HOST", default=ClusterSettings.host, show_default=True
        ),
        click.option(
            "--port",
            envvar="HEADRACE_PORT",
            type=int,
            default=default_port,
            show_default=True,
            help="HTTP port (APIs, /health, /ready).",
        ),
        click.option(
            "--event-keys",
            envvar="HEADRACE_EVENT_KEYS",
            default="",
            help="KEY=ACCOUNT,... accepted by the Event API.",
        ),
        click.option(
            "--signing-key",
            envvar="HEADRACE_SIGNING_KEY",
            default=None,
            help="The default account's signing key (apps then run as in production).",
        ),
        click.option(
            "--signing-keys",
            envvar="HEADRACE_SIGNING_KEYS",
            default="",
            help="ACCOUNT=SIGNING_KEY,... for the accounts other than the default one.",
        ),
        click.option(
            "--retry-scale",
            envvar="HEADRACE_RETRY_SCALE",
            type=float,
            default=1.0,
            show_default=True,
        ),
        click.option(
            "--call-timeout",
            envvar="HEADRACE_CALL_TIMEOUT",
            type=float,
            default=300.0,
            show_default=True,
        ),
        click.option(
            "--endpoint-timeout",
            envvar="HEADRACE_ENDPOINT_TIMEOUT",
            type=float,
            default=3600.0,
            show_default=True,
            help="Seconds a Durable Endpoint's request may hold its run before the run fails.",
        ),
        intake_topics_option,
        max_steps_option,
        require_signed_answers_option,
        retention_option,
        dead_letter_retention_option,
        click.option(
            "--dashboard-token",
            envvar="HEADRACE_DASHBOARD_TOKEN",
            default=None,
            help="The token the dashboard asks for (ingest); without it the dashboard is off.",
        ),
        *rate_limit_options(*DEFAULT_RATE_LIMIT),
        *_security_options,
        *_consistency_options,
    ]

    def decorate(fn: F) -> F:
        for option in reversed(options):
            fn = option(fn)
        return fn

    return decorate


def _security_from(options: dict[str, Any]) -> tuple[KafkaSecurity, CassandraSecurity]:
    try:
        kafka = KafkaSecurity(
            protocol=options.get("kafka_security_protocol") or "PLAINTEXT",
            sasl_mechanism=options.get("kafka_sasl_mechanism") or "PLAIN",
            sasl_username=options.get("kafka_sasl_username") or None,
            sasl_password=options.get("kafka_sasl_password") or None,
            ssl_cafile=options.get("kafka_ssl_cafile") or None,
            ssl_certfile=options.get("kafka_ssl_certfile") or None,
            ssl_keyfile=options.get("kafka_ssl_keyfile") or None,
        )
        cassandra = CassandraSecurity(
            username=options.get("cassandra_username") or None,
            password=options.get("cassandra_password") or None,
            ssl_cafile=options.get("cassandra_ssl_cafile") or None,
        )
    except ValueError as err:
        raise click.UsageError(str(err)) from err
    return kafka, cassandra


def settings_from(options: dict[str, Any]) -> ClusterSettings:
    kafka_security, cassandra_security = _security_from(options)
    signing_keys = _pairs(options.get("signing_keys", ""), "ACCOUNT=SIGNING_KEY")
    require_signed = bool(options.get("require_signed_answers"))
    require_signing_key(require_signed, bool(options["signing_key"] or signing_keys))
    return ClusterSettings(
        kafka_bootstrap=options["kafka_bootstrap"],
        cassandra_hosts=tuple(h.strip() for h in options["cassandra_hosts"].split(",") if h),
        cassandra_port=options["cassandra_port"],
        keyspace=options["keyspace"],
        topic_prefix=options["topic_prefix"],
        group_prefix=options.get("group_prefix"),
        partitions=options["partitions"],
        replication_factor=options["replication_factor"],
        host=options["host"],
        port=options["port"],
        event_keys=_pairs(options["event_keys"], "KEY=ACCOUNT"),
        signing_key=options["signing_key"],
        signing_keys=signing_keys,
        require_signed_answers=require_signed,
        backoff_scale=options["retry_scale"],
        call_timeout_s=options["call_timeout"],
        endpoint_timeout_s=options["endpoint_timeout"],
        max_steps=options.get("max_steps", DEFAULT_MAX_STEPS),
        dashboard_token=options.get("dashboard_token"),
        intake_topics=parse_topics(options.get("intake_topics", "intake")),
        retention_s=options.get("retention", DEFAULT_RETENTION_S),
        dead_letter_retention_s=options.get(
            "dead_letter_retention", DEFAULT_DEAD_LETTER_RETENTION_S
        ),
        kafka_security=kafka_security,
        cassandra_security=cassandra_security,
        rate_limit=ClientRate(options["rate_limit"], options["rate_burst"]),
        cassandra_consistency=CassandraConsistency(
            level=options.get("cassandra_consistency") or CassandraConsistency.level,
            serial=options.get("cassandra_serial_consistency") or CassandraConsistency.serial,
        ),
    )
