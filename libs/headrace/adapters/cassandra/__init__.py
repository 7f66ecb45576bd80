"""Cassandra adapters: the stores of distributed mode (cassandra-driver, prepared statements,
async execution), and the schema they need."""

from headrace.adapters.cassandra.schema import migrate
from headrace.adapters.cassandra.session import CassandraUnavailable
from headrace.adapters.cassandra.stores import CassandraStores

__all__ = ["CassandraStores", "CassandraUnavailable", "migrate"]
