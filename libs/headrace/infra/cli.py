"""`headrace infra up | status | down`: local Kafka and Cassandra for development and tests."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import click
from click.decorators import FC

from headrace.infra import stack
from headrace.infra.config import InfraConfig
from headrace.infra.errors import InfraError
from headrace.infra.lifecycle import Started

# Without names: kafka and cassandra. The secured test profile is started by naming it.
component_argument = click.argument(
    "names",
    metavar="[kafka|cassandra|kafka-secured|cassandra-secured]...",
    nargs=-1,
    type=click.Choice([*stack.COMPONENTS, *stack.SECURED]),
)


def _option(flag: str, kind: type, help: str) -> Callable[[FC], FC]:
    """An optional override; unset, InfraConfig's default (or its environment variable) holds."""
    return click.option(flag, type=kind, default=None, help=help)


@click.group()
@_option("--state-dir", Path, "Config, data, logs, pids. [~/.local/state/headrace/infra]")
@_option("--cache-dir", Path, "Jars fetched from Maven Central. [~/.cache/headrace/infra]")
@_option("--kafka-port", int, "Kafka client port. [29092, $HEADRACE_KAFKA_PORT]")
@_option("--kafka-controller-port", int, "KRaft port. [29093, $HEADRACE_KAFKA_CONTROLLER_PORT]")
@_option("--cassandra-port", int, "CQL port. [29042, $HEADRACE_CASSANDRA_PORT]")
@_option("--cassandra-storage-port", int, "Gossip port. [27000, $HEADRACE_CASSANDRA_STORAGE_PORT]")
@click.pass_context
def infra(ctx: click.Context, **overrides: Path | int | None) -> None:
    """Real Apache Kafka 4 (KRaft) and Apache Cassandra 5 on 127.0.0.1, run from Maven jars.

    Needs `java` (17) and `mvn`; the first `up` fetches the jars once. Directories can also be
    set by HEADRACE_INFRA_STATE_DIR and HEADRACE_INFRA_CACHE_DIR; versions and heaps by
    HEADRACE_KAFKA_VERSION, HEADRACE_CASSANDRA_VERSION, HEADRACE_KAFKA_HEAP and
    HEADRACE_CASSANDRA_HEAP.
    """
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    given = {name: value for name, value in overrides.items() if value is not None}
    ctx.obj = replace(InfraConfig(), **given)


def _describe(started: Started) -> str:
    if started.reused:
        return f"{started.name}: {started.address} (pid {started.pid}, already running)"
    fetched = f", jars fetched in {started.fetch_s:.1f} s" if started.fetch_s is not None else ""
    return (
        f"{started.name}: {started.address} "
        f"(pid {started.pid}, started in {started.start_s:.1f} s{fetched})"
    )


@infra.command()
@component_argument
@click.pass_obj
def up(config: InfraConfig, names: tuple[str, ...]) -> None:
    """Start Kafka and Cassandra in parallel (or reuse them) and print their addresses.

    They keep running, even past test sessions that use them, until `headrace infra down`.
    """
    results = stack.start_each(config, names or stack.COMPONENTS, pin=True)
    failed = False
    for result in results.values():
        if isinstance(result, Started):
            click.echo(_describe(result))
        else:
            failed = True
            click.echo(str(result), err=True)
    if failed:
        raise click.ClickException("some components did not start (see above)")


@infra.command()
@component_argument
@click.pass_obj
def status(config: InfraConfig, names: tuple[str, ...]) -> None:
    """Show each component as running (pid, address, RSS) or stopped; exit 3 if any is down."""
    unhealthy = False
    for state in stack.status(config, names or stack.COMPONENTS):
        if not state.running:
            unhealthy = True
            click.echo(f"{state.name}: stopped ({state.address}; log {state.log})")
            continue
        answer = "answering" if state.answering else "NOT answering"
        unhealthy = unhealthy or not state.answering
        rss = f", rss {state.rss_kib // 1024} MiB" if state.rss_kib is not None else ""
        owner = "kept up by `headrace infra up`" if state.pinned else "started by a test session"
        click.echo(
            f"{state.name}: running pid {state.pid} on {state.address}, {answer}{rss} ({owner})"
        )
    if unhealthy:
        sys.exit(3)


@infra.command()
@component_argument
@click.option("--wipe", is_flag=True, help="Also delete their data (topics, keyspaces).")
@click.pass_obj
def down(config: InfraConfig, names: tuple[str, ...], wipe: bool) -> None:
    """Stop the recorded processes (SIGTERM, then SIGKILL) and check their ports are free.

    Only processes headrace started and recorded by pid are signalled, never others.
    """
    try:
        stack.down(config, names or stack.COMPONENTS, wipe=wipe)
    except InfraError as error:
        raise click.ClickException(str(error)) from error
    for component in stack.components(config, names or stack.COMPONENTS):
        ports = ", ".join(str(port) for port in component.ports)
        wiped = ", data wiped" if wipe else ""
        click.echo(f"{component.name}: stopped, ports {ports} free{wiped}")
