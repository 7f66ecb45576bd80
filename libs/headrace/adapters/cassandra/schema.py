"""The keyspace's tables, and `migrate`, which creates or upgrades them.

Every table is shaped by the queries that read it: each read names one partition (or a few,
found through a small index), never a scan across partitions. Bodies are msgpack blobs of the
msgspec structs; real columns exist only for keys that queries need. `{ks}` is the keyspace.

Migrations are numbered and recorded in `schema_migrations`, so `migrate` applies each once;
its statements are idempotent as well (IF NOT EXISTS), so a migration interrupted half-way is
simply applied again.

Every node agrees on the schema before a migration is recorded and before `migrate` returns:
it waits for agreement once per migration, not after each statement, so the statements of one
migration must not depend on each other (an ALTER of a table goes in a later migration than
its CREATE). Two `migrate`s at once are safe: each statement is idempotent, and a migration is
recorded only once its tables are agreed on.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from cassandra.cluster import Session

from headrace.adapters.cassandra.session import CassandraUnavailable, check_identifier

# Events are written once, in time order, and expire together: time-window compaction drops
# whole expired sstables instead of compacting tombstones.
_TIME_SERIES = (
    "compaction = {'class': 'TimeWindowCompactionStrategy', "
    "'compaction_window_unit': 'DAYS', 'compaction_window_size': 1}"
)

_V1 = [
    # apps and functions, per account.
    """CREATE TABLE IF NOT EXISTS {ks}.apps (
        account_id text, app_id text, body blob,
        PRIMARY KEY (account_id, app_id))""",
    """CREATE TABLE IF NOT EXISTS {ks}.functions (
        account_id text, fn_id text, body blob,
        PRIMARY KEY (account_id, fn_id))""",
    # One partition per run: the run's state in static columns, one row per memo. Saving a run
    # with its new memos is a batch on one partition, hence atomic and isolated.
    """CREATE TABLE IF NOT EXISTS {ks}.runs (
        run_id text, hash text, body blob static, memo blob,
        PRIMARY KEY (run_id, hash))""",
    # Run listings, newest first (run ids are ULIDs, so they sort by time).
    """CREATE TABLE IF NOT EXISTS {ks}.runs_by_account (
        account_id text, run_id text,
        PRIMARY KEY (account_id, run_id)) WITH CLUSTERING ORDER BY (run_id DESC)""",
    """CREATE TABLE IF NOT EXISTS {ks}.runs_by_function (
        account_id text, fn_id text, run_id text,
        PRIMARY KEY ((account_id, fn_id), run_id)) WITH CLUSTERING ORDER BY (run_id DESC)""",
    """CREATE TABLE IF NOT EXISTS {ks}.history (
        run_id text, entry_id text, body blob,
        PRIMARY KEY (run_id, entry_id))""",
    # Events: each acceptance (receipt) by internal id, and the account's stream in hourly
    # buckets, for all names (feed '') and per name (feed = the name); `event_buckets` lists
    # each feed's non-empty buckets, so a listing reads only buckets that hold events.
    """CREATE TABLE IF NOT EXISTS {ks}.events (
        internal_id text, receipt_id text, body blob,
        PRIMARY KEY (internal_id, receipt_id)) WITH """
    + _TIME_SERIES,
    """CREATE TABLE IF NOT EXISTS {ks}.event_feed (
        account_id text, feed text, bucket bigint, receipt_id text, body blob,
        PRIMARY KEY ((account_id, feed, bucket), receipt_id))
        WITH CLUSTERING ORDER BY (receipt_id DESC) AND """
    + _TIME_SERIES,
    """CREATE TABLE IF NOT EXISTS {ks}.event_buckets (
        account_id text, feed text, bucket bigint,
        PRIMARY KEY ((account_id, feed), bucket)) WITH CLUSTERING ORDER BY (bucket DESC)""",
    """CREATE TABLE IF NOT EXISTS {ks}.event_runs (
        event_id text, run_id text,
        PRIMARY KEY (event_id, run_id)) WITH """
    + _TIME_SERIES,
    # Idempotency and dedupe keys; `expires_ms` is the caller's clock, the TTL only collects.
    """CREATE TABLE IF NOT EXISTS {ks}.claims (
        claim_key text PRIMARY KEY, value text, expires_ms bigint)""",
    # The timer wheel: partition = (partition number, one-minute slot). `timer_slots` lists a
    # partition's non-empty slots; `timer_ids` finds a timer's slot from its id.
    """CREATE TABLE IF NOT EXISTS {ks}.timers (
        partition int, slot bigint, fire_ms bigint, timer_id text, record blob,
        PRIMARY KEY ((partition, slot), fire_ms, timer_id))""",
    # Emptied slots are dropped with range deletions; a slot resurrected by a late repair costs
    # one empty read and is dropped again, so tombstones need not outlive a day.
    """CREATE TABLE IF NOT EXISTS {ks}.timer_slots (
        partition int, slot bigint,
        PRIMARY KEY (partition, slot)) WITH gc_grace_seconds = 86400""",
    """CREATE TABLE IF NOT EXISTS {ks}.timer_ids (
        partition int, timer_id text, fire_ms bigint, record blob,
        PRIMARY KEY ((partition, timer_id)))""",
    # Pauses by id (the row whose deletion decides who wins), by partition, and by run.
    """CREATE TABLE IF NOT EXISTS {ks}.pauses (
        pause_id text PRIMARY KEY, partition int, run_id text, body blob)""",
    """CREATE TABLE IF NOT EXISTS {ks}.pauses_by_partition (
        partition int, pause_id text, body blob,
        PRIMARY KEY (partition, pause_id))""",
    """CREATE TABLE IF NOT EXISTS {ks}.pauses_by_run (
        run_id text, pause_id text, body blob,
        PRIMARY KEY (run_id, pause_id))""",
    # Event batches by partition, and where each key's batch is.
    """CREATE TABLE IF NOT EXISTS {ks}.batches (
        partition int, batch_key text, body blob,
        PRIMARY KEY (partition, batch_key))""",
    """CREATE TABLE IF NOT EXISTS {ks}.batch_keys (
        batch_key text PRIMARY KEY, partition int)""",
]

_V2_FLOW = [
    # Flow-control state of a Kafka partition (leases, waiting items, limiter states), read
    # whole by the partition's new owner. Leases come and go with every step, so deletions
    # are many: a short gc_grace keeps the tombstones a takeover reads few.
    """CREATE TABLE IF NOT EXISTS {ks}.flow_state (
        partition int, kind text, entry_id text, body blob,
        PRIMARY KEY ((partition, kind), entry_id)) WITH gc_grace_seconds = 3600""",
]

_V3_RUN_VERSIONS = [
    # Writes of a run are conditional on its version (RunStore.save_run); runs written before
    # this migration have none, and are at version 0.
    "ALTER TABLE {ks}.runs ADD IF NOT EXISTS version bigint static",
]

# (version, what it does, statements). Append; never edit one that has shipped.
MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (1, "initial tables", _V1),
    (2, "flow-control state", _V2_FLOW),
    (3, "run versions", _V3_RUN_VERSIONS),
]

_LEDGER = """CREATE TABLE IF NOT EXISTS {ks}.schema_migrations (
    version int PRIMARY KEY, description text, applied_ms bigint)"""

# The driver's own wait for agreement after a schema change (`max_schema_agreement_wait`).
AGREEMENT_TIMEOUT_S = 10.0


class SchemaDisagreement(CassandraUnavailable):
    """The nodes did not agree on the schema in time (one is down or slow): run `migrate`
    again; what it applied is applied again harmlessly."""


def migrate(session: Session, keyspace: str, replication: Mapping[str, str | int]) -> list[int]:
    """Create the keyspace (if missing) and apply the migrations it lacks; return their versions.

    `replication` is the keyspace's replication map, e.g. {"class": "NetworkTopologyStrategy",
    "dc1": 3}; an existing keyspace keeps its own (changing it is an operator's decision).
    Blocking: run it from a deploy job or a thread, not on an event loop.
    """
    ks = check_identifier(keyspace)
    create = f"CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = {_cql_map(replication)}"
    session.execute(create)
    _wait_for_agreement(session)
    session.execute(_LEDGER.replace("{ks}", ks))
    _wait_for_agreement(session)
    done = {_first(row) for row in session.execute(f"SELECT version FROM {ks}.schema_migrations")}
    applied = []
    for version, description, statements in MIGRATIONS:
        if version in done:
            continue
        for statement in statements:
            session.execute(statement.replace("{ks}", ks))
        _wait_for_agreement(session)
        session.execute(
            f"INSERT INTO {ks}.schema_migrations (version, description, applied_ms) "
            "VALUES (%s, %s, %s)",
            (version, description, int(time.time() * 1000)),
        )
        applied.append(version)
    return applied


def _wait_for_agreement(session: Session) -> None:
    """Until every live node reports the same schema version; raise after the timeout. Asked
    here even when the driver waited after each statement: a session may be built not to
    (`cassandra_cluster(for_migrations=True)`), and the driver only logs a disagreement."""
    control = session.cluster.control_connection
    if not control.wait_for_schema_agreement(wait_time=AGREEMENT_TIMEOUT_S):
        raise SchemaDisagreement(f"no schema agreement within {AGREEMENT_TIMEOUT_S:.0f} s")


def _first(row: Any) -> Any:
    """The first column, whichever row factory the caller's session uses."""
    return next(iter(row.values())) if isinstance(row, dict) else row[0]


def _cql_map(options: Mapping[str, str | int]) -> str:
    for item in (*options.keys(), *map(str, options.values())):
        if "'" in item:
            raise ValueError(f"quote in replication option {item!r}")
    return "{" + ", ".join(f"'{key}': '{value}'" for key, value in options.items()) + "}"
