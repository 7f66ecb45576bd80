"""The consistency levels the stores read and write at, and why only quorum-class ones.

The stores promise that a read sees every acknowledged write (a run saved by one runner and
loaded by the next owner, a claimed key read back by the loser of a race). That holds when every
read and every write reach a majority of a partition's replicas: two majorities always share a
replica, so the read meets one that acknowledged the write. LOCAL_QUORUM (the default) does so
among the replicas in the data centre the services connect to; QUORUM counts every replica, for
services in several data centres sharing one keyspace; ALL also, but fails while any replica is
down. Lightweight transactions (claims, versioned run saves) run their Paxos round at
LOCAL_SERIAL, or SERIAL across data centres.

Refused, at start-up:
- ONE, LOCAL_ONE, TWO, THREE, ANY: below a quorum a read can miss an acknowledged write. At
  replication factor 1 a quorum is that one replica, so LOCAL_QUORUM costs what ONE does there;
  refusing them costs nothing, and a keyspace that is replicated (or is altered to be later:
  headrace's replication-factor setting cannot tell, as `migrate` keeps an existing keyspace's
  replication) cannot lose the guarantee silently.
- EACH_QUORUM: Cassandra refuses it for lightweight transactions on a SimpleStrategy keyspace,
  which is what `migrate` creates; QUORUM gives reads the same guarantee.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cassandra import ConsistencyLevel

LEVELS = ("LOCAL_QUORUM", "QUORUM", "ALL")
SERIAL_LEVELS = ("LOCAL_SERIAL", "SERIAL")

_BELOW_QUORUM = ("ONE", "LOCAL_ONE", "TWO", "THREE", "ANY")


def check_level(name: str) -> str:
    """`name` if reads and writes at it see every acknowledged write; ValueError saying why not."""
    if name in LEVELS:
        return name
    if name in _BELOW_QUORUM:
        reason = "is below a quorum, so a read could miss an acknowledged write"
    elif name == "EACH_QUORUM":
        reason = "is refused by Cassandra for lightweight transactions on SimpleStrategy keyspaces"
    else:
        reason = "is not a Cassandra consistency level"
    raise ValueError(f"consistency level {name!r} {reason}; use one of {', '.join(LEVELS)}")


def check_serial(name: str) -> str:
    if name in SERIAL_LEVELS:
        return name
    raise ValueError(f"serial consistency level {name!r} is not one of {', '.join(SERIAL_LEVELS)}")


@dataclass(frozen=True)
class CassandraConsistency:
    level: str = "LOCAL_QUORUM"
    # Of the Paxos round of a lightweight transaction.
    serial: str = "LOCAL_SERIAL"

    def __post_init__(self) -> None:
        check_level(self.level)
        check_serial(self.serial)

    def driver_options(self) -> dict[str, Any]:
        """Keyword arguments for the driver's execution profiles and batch statements."""
        return {
            "consistency_level": ConsistencyLevel.name_to_value[self.level],
            "serial_consistency_level": ConsistencyLevel.name_to_value[self.serial],
        }


DEFAULT_CONSISTENCY = CassandraConsistency()
