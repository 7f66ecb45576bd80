"""How long stored data is kept, shared by every adapter (Cassandra TTLs, SQLite's sweeper, the
dev log's dead-letter trimming) and the settings that configure it."""

from __future__ import annotations

# Ended runs (with their memos and history) and accepted events, counted from the run's end and
# the event's acceptance.
DEFAULT_RETENTION_S = 7 * 86_400
# Records of the dead-letter topic, counted from when they were set aside (Kafka's default).
DEFAULT_DEAD_LETTER_RETENTION_S = 7 * 86_400
# Inngest lets a function sleep for up to a year; a run open longer than this loses its rows.
MAX_OPEN_S = 366 * 86_400
# Cassandra refuses TTLs over 20 years; an open run's TTL is the retention plus MAX_OPEN_S.
MAX_RETENTION_S = 20 * 365 * 86_400 - MAX_OPEN_S
