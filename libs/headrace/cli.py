"""The `headrace` command."""

from __future__ import annotations

import click

from headrace.dev.cli import dev
from headrace.infra.cli import infra
from headrace.runtime.connect import migrate
from headrace.services.executor.main import executor
from headrace.services.ingest.main import ingest
from headrace.services.runner.main import runner
from headrace.services.scheduler.main import scheduler


@click.group()
@click.version_option(package_name="headrace")
def main() -> None:
    """headrace: durable functions on Kafka, speaking the Inngest SDK protocol."""


main.add_command(dev)
main.add_command(infra)
main.add_command(migrate)
for command in (ingest, runner, scheduler, executor):
    main.add_command(command)
