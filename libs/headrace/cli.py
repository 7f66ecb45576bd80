"""The `headrace` command."""

from __future__ import annotations

import click

from headrace.dev.cli import dev
from headrace.infra.cli import infra


@click.group()
@click.version_option(package_name="headrace")
def main() -> None:
    """headrace: durable functions on Kafka, speaking the Inngest SDK protocol."""


main.add_command(dev)
main.add_command(infra)
