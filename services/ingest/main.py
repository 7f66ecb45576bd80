"""`headrace ingest`: the Event API, the Kafka intake topics, app sync and the read APIs;
publishes to `events`."""

from __future__ import annotations

import click
from headrace.services.ingest.http import build_app
from headrace.services.ingest.intake import Intake
from headrace.services.ingest.parts import IngestParts
from starlette.routing import Mount

from headrace.api.realtime import realtime_routes
from headrace.dashboard import DashboardAuth, dashboard_routes
from headrace.ports.log import Log
from headrace.ports.stores import Stores
from headrace.protocol.app_syncer import AppSyncer
from headrace.realtime.bus import LogBus
from headrace.realtime.hub import Hub
from headrace.realtime.tokens import TokenIssuer
from headrace.runtime.host import Host
from headrace.runtime.main import run_service
from headrace.runtime.process import ServiceProcess
from headrace.runtime.settings import Settings
from headrace.runtime.settings_commands import service_command

# Intake records carry no order headrace relies on: batches of them, several at once (a batch's
# events go out as one produce request per partition; see benchmarks/intake_throughput.md).
INTAKE_BATCH = 500
INTAKE_CONCURRENCY = 4


async def wire(proc: ServiceProcess, log_port: Log, stores: Stores) -> None:
    settings = proc.settings
    parts = IngestParts.build(settings, log_port, proc.topics, stores, proc.clock)
    ctx = parts.ctx
    # Distributed mode never takes unknown keys: no keys configured means no events accepted.
    syncer = AppSyncer([], 0, ctx.keys, proc.clock, parts.sync.register)
    dashboard = dashboard_routes(ctx, DashboardAuth.with_token(settings.dashboard_token), syncer)
    # Realtime messages cross replicas through the log; each ingest tails it from its end.
    realtime = LogBus(Hub(), log_port, proc.topics.realtime)
    await realtime.start()
    proc.spawn("realtime", realtime.run)
    proc.on_stop(realtime.stop)
    api = build_app(
        ctx,
        parts.events,
        parts.sync,
        extra_routes=[*dashboard, *realtime_routes(ctx, realtime, TokenIssuer(ctx.keys))],
        rate_limit=settings.rate_limit,
    )
    proc.add_routes([Mount("/", app=api)])
    wire_intake(proc, log_port, parts.intake())


def wire_intake(host: Host, log_port: Log, intake: Intake) -> None:
    """The loops that read the intake topics producers publish events to (both modes)."""
    for name in host.settings.intake_topics:
        host.loops(log_port).add_batched(
            host.topics.intake(name),
            "ingest",
            intake.handle,
            batch_size=INTAKE_BATCH,
            concurrency=INTAKE_CONCURRENCY,
        )


@click.command()
@service_command(default_port=8288)
def ingest(settings: Settings) -> None:
    """Run an ingest: Event API, app sync, GraphQL and REST APIs."""
    run_service("ingest", settings, wire)
