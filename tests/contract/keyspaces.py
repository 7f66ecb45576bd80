"""Helpers for the Cassandra keyspaces of the contract tests."""

from cassandra.cluster import Session

SINGLE_NODE = {"class": "SimpleStrategy", "replication_factor": 1}


def empty_keyspace(session: Session, keyspace: str) -> None:
    tables = session.execute(
        "SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s", (keyspace,)
    )
    pending = [session.execute_async(f"TRUNCATE {keyspace}.{row[0]}") for row in tables]
    for future in pending:
        future.result()
