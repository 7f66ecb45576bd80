"""The `headrace` command.

Each subcommand's module is imported only when that subcommand runs: a service process imports
its own service, not `headrace dev` and the other services (a second of CPU per process that
the six processes of a cluster paid at once on start)."""

from __future__ import annotations

import importlib

import click

# Subcommand -> "module:attribute" of its click command.
COMMANDS = {
    "dev": "headrace.dev.cli:dev",
    "infra": "headrace.infra.cli:infra",
    "migrate": "headrace.runtime.connect:migrate",
    "ingest": "headrace.services.ingest.main:ingest",
    "runner": "headrace.services.runner.main:runner",
    "scheduler": "headrace.services.scheduler.main:scheduler",
    "executor": "headrace.services.executor.main:executor",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported when asked for (running one, or `--help`)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attribute = target.split(":")
        command: click.Command = getattr(importlib.import_module(module), attribute)
        return command


@click.group(cls=LazyGroup)
@click.version_option(package_name="headrace")
def main() -> None:
    """headrace: durable functions on Kafka, speaking the Inngest SDK protocol."""
