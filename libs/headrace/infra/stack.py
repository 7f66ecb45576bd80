"""Kafka and Cassandra together: started in parallel, stopped and reported as one stack.

Both JVMs take seconds to boot, so `up` starts them on two threads; fetching their jars is
serialized inside `maven.resolve`, which still lets one component boot while the other fetches.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from headrace.infra import lifecycle
from headrace.infra.cassandra import Cassandra
from headrace.infra.component import Component
from headrace.infra.config import InfraConfig
from headrace.infra.errors import InfraError
from headrace.infra.kafka import Kafka
from headrace.infra.lifecycle import Started, Status
from headrace.infra.secured import SecuredCassandra, SecuredKafka

COMPONENTS = ("kafka", "cassandra")
# The secured test profile (`headrace.infra.secured`): started only by name.
SECURED = ("kafka-secured", "cassandra-secured")


@dataclass(frozen=True)
class Endpoints:
    """Where clients connect, and how each component came up."""

    kafka_bootstrap: str | None
    cassandra_contact: tuple[str, int] | None
    started: dict[str, Started]


def components(config: InfraConfig, names: Iterable[str] = COMPONENTS) -> list[Component]:
    """The components called `names`, in a stable order."""
    wanted = set(names)
    unknown = wanted - {*COMPONENTS, *SECURED}
    if unknown:
        known = [*COMPONENTS, *SECURED]
        raise InfraError(f"unknown component(s) {sorted(unknown)}; known: {known}")
    built: list[Component] = []
    if "kafka" in wanted:
        built.append(Kafka(config))
    if "cassandra" in wanted:
        built.append(Cassandra(config))
    if "kafka-secured" in wanted:
        built.append(SecuredKafka(config))
    if "cassandra-secured" in wanted:
        built.append(SecuredCassandra(config))
    return built


def start_each(
    config: InfraConfig, names: Iterable[str] = COMPONENTS, pin: bool = False
) -> dict[str, Started | InfraError]:
    """Start (or reuse) each component in parallel; one failing does not stop the others.

    `pin` (what `headrace infra up` does) keeps them running after test sessions end.
    """
    selected = components(config, names)
    with ThreadPoolExecutor(max_workers=len(selected) or 1) as pool:
        futures = {
            component.name: pool.submit(
                lifecycle.start, component, config.cache_dir, config.start_timeout_s, pin
            )
            for component in selected
        }
    results: dict[str, Started | InfraError] = {}
    for name, future in futures.items():
        error = future.exception()
        if error is None:
            results[name] = future.result()
        elif isinstance(error, InfraError):
            results[name] = error
        else:
            results[name] = InfraError(f"{name} failed to start: {error!r}")
    return results


def _endpoints(config: InfraConfig, started: dict[str, Started]) -> Endpoints:
    """Client addresses of the components in `started`."""
    return Endpoints(
        kafka_bootstrap=f"{config.host}:{config.kafka_port}" if "kafka" in started else None,
        cassandra_contact=(
            (config.host, config.cassandra_port) if "cassandra" in started else None
        ),
        started=started,
    )


def up(
    config: InfraConfig | None = None, names: Iterable[str] = COMPONENTS, pin: bool = False
) -> Endpoints:
    """Bring the components up (in parallel, reusing running ones); raise if any failed."""
    config = config or InfraConfig()
    results = start_each(config, names, pin)
    errors = [
        f"{name}: {result}" for name, result in results.items() if isinstance(result, Exception)
    ]
    if errors:
        raise InfraError("\n\n".join(errors))
    return _endpoints(config, {n: r for n, r in results.items() if isinstance(r, Started)})


def down(
    config: InfraConfig | None = None, names: Iterable[str] = COMPONENTS, wipe: bool = False
) -> None:
    """Stop the recorded processes in parallel (deleting their data if `wipe`); check ports."""
    config = config or InfraConfig()
    selected = components(config, names)
    with ThreadPoolExecutor(max_workers=len(selected) or 1) as pool:
        futures = [pool.submit(lifecycle.stop, component, wipe) for component in selected]
    errors = [str(f.exception()) for f in futures if f.exception() is not None]
    if errors:
        raise InfraError("\n".join(errors))


def status(config: InfraConfig | None = None, names: Iterable[str] = COMPONENTS) -> list[Status]:
    """Running or stopped, per component."""
    config = config or InfraConfig()
    return [lifecycle.status(component) for component in components(config, names)]
