"""The SQLite stores' tables, and what a state directory from an older headrace is brought up to
date with when it is opened."""

from __future__ import annotations

from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS apps (account_id TEXT, app_id TEXT, body BLOB,
    PRIMARY KEY (account_id, app_id));
CREATE TABLE IF NOT EXISTS functions (account_id TEXT, fn_id TEXT, body BLOB,
    PRIMARY KEY (account_id, fn_id));
CREATE TABLE IF NOT EXISTS runs (run_id TEXT PRIMARY KEY, account_id TEXT, fn_id TEXT, body BLOB,
    version INTEGER NOT NULL DEFAULT 0, expires_ms INTEGER);
CREATE INDEX IF NOT EXISTS runs_by_account ON runs (account_id, run_id);
CREATE TABLE IF NOT EXISTS memos (run_id TEXT, hash TEXT, value BLOB, PRIMARY KEY (run_id, hash));
CREATE TABLE IF NOT EXISTS history (run_id TEXT, entry_id TEXT, body BLOB,
    PRIMARY KEY (run_id, entry_id));
CREATE TABLE IF NOT EXISTS event_receipts (receipt_id TEXT PRIMARY KEY, internal_id TEXT,
    account_id TEXT, name TEXT, listing BLOB, body BLOB, expires_ms INTEGER);
CREATE INDEX IF NOT EXISTS event_receipts_by_id ON event_receipts (internal_id, receipt_id);
CREATE INDEX IF NOT EXISTS event_receipts_by_name ON event_receipts (account_id, name, receipt_id);
CREATE TABLE IF NOT EXISTS event_runs (event_id TEXT, run_id TEXT, expires_ms INTEGER,
    PRIMARY KEY (event_id, run_id));
CREATE TABLE IF NOT EXISTS keys (key TEXT PRIMARY KEY, value TEXT, expires_ms INTEGER);
CREATE TABLE IF NOT EXISTS timers (partition INTEGER, timer_id TEXT, fire_ms INTEGER, record BLOB,
    PRIMARY KEY (partition, timer_id));
CREATE INDEX IF NOT EXISTS timers_by_time ON timers (partition, fire_ms);
CREATE TABLE IF NOT EXISTS pauses (pause_id TEXT PRIMARY KEY, partition INTEGER, run_id TEXT,
    body BLOB);
CREATE INDEX IF NOT EXISTS pauses_by_partition ON pauses (partition);
CREATE INDEX IF NOT EXISTS pauses_by_run ON pauses (run_id);
CREATE TABLE IF NOT EXISTS batches (batch_key TEXT PRIMARY KEY, partition INTEGER, body BLOB);
CREATE INDEX IF NOT EXISTS batches_by_partition ON batches (partition);
CREATE TABLE IF NOT EXISTS flow_state (partition INTEGER, kind TEXT, entry_id TEXT, body BLOB,
    PRIMARY KEY (partition, kind, entry_id));
"""

# The sweep's indexes, made once every table has its `expires_ms`.
_EXPIRY_INDEXES = """
CREATE INDEX IF NOT EXISTS runs_by_expiry ON runs (expires_ms);
CREATE INDEX IF NOT EXISTS event_receipts_by_expiry ON event_receipts (expires_ms);
CREATE INDEX IF NOT EXISTS event_runs_by_expiry ON event_runs (expires_ms);
CREATE INDEX IF NOT EXISTS keys_by_expiry ON keys (expires_ms);
"""


def _columns(conn: Any, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def create_schema(conn: Any) -> None:
    conn.executescript(_SCHEMA)
    if "version" not in _columns(conn, "runs"):
        # A state directory from before versioned runs: its runs read as version 0.
        conn.execute("ALTER TABLE runs ADD COLUMN version INTEGER NOT NULL DEFAULT 0")
    # A state directory from before retention: its rows get an expiry at open
    # (SqliteStores._date_legacy).
    for table in ("runs", "event_receipts", "event_runs"):
        if "expires_ms" not in _columns(conn, table):
            conn.execute(f"ALTER TABLE {table} ADD COLUMN expires_ms INTEGER")
    conn.executescript(_EXPIRY_INDEXES)
    if "listing" not in _columns(conn, "event_receipts"):
        # From before listings: lists read those rows' bodies (which decode as listings).
        conn.execute("ALTER TABLE event_receipts ADD COLUMN listing BLOB")
