"""After an outage the services' driver keeps trying to reconnect, at most some 10 s apart, for
as long as the outage lasts: a service is ready again within seconds of Cassandra's return."""

from __future__ import annotations

from itertools import islice

from headrace.adapters.cassandra.connect import RECONNECT_MAX_S, cassandra_cluster

JITTER = 1.15  # the driver's schedule adds up to 15 %


def test_reconnection_attempts_never_stop_and_never_wait_long() -> None:
    cluster = cassandra_cluster(["127.0.0.1"], 9042)
    # More than a day of attempts at the longest delay.
    delays = list(islice(cluster.reconnection_policy.new_schedule(), 10_000))

    assert len(delays) == 10_000
    assert max(delays) <= RECONNECT_MAX_S * JITTER
    assert delays[0] <= 1.0 * JITTER
