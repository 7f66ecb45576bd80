"""Real Apache Kafka and Apache Cassandra on loopback, fetched, started and stopped by headrace.

`headrace infra up|status|down` (see `cli`) and the pytest plugin `headrace.testing.infra` both
use this API:

    from headrace.infra import InfraConfig, up, down
    endpoints = up()                 # fetch jars once, start both in parallel, wait
    endpoints.kafka_bootstrap        # "127.0.0.1:29092"
    endpoints.cassandra_contact      # ("127.0.0.1", 29042)
    down(wipe=True)                  # stop the recorded pids, delete data, check ports are free

Jars are cached in `~/.cache/headrace/infra`, state (config, data, logs, pids) lives in
`~/.local/state/headrace/infra`; see `config` for the environment variables that move them.
"""

from headrace.infra.config import InfraConfig
from headrace.infra.errors import InfraError
from headrace.infra.lifecycle import Started, Status
from headrace.infra.stack import COMPONENTS, SECURED, Endpoints, down, start_each, status, up

__all__ = [
    "COMPONENTS",
    "SECURED",
    "Endpoints",
    "InfraConfig",
    "InfraError",
    "Started",
    "Status",
    "down",
    "start_each",
    "status",
    "up",
]
