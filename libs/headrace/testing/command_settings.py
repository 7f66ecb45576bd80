"""The Settings a `headrace` command would run with, for given arguments and environment: read
as the command reads them, without running it (no server starts)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import click
from click.testing import CliRunner

from headrace.cli import main
from headrace.runtime.settings import Settings
from headrace.runtime.settings_commands import read_dev_settings, read_service_settings

SERVICE_COMMANDS = ("ingest", "runner", "scheduler", "executor", "migrate")
# Variables a command may read; unset unless given, so the caller's shell does not leak in.
_READ_PREFIXES = ("HEADRACE_", "INNGEST_")


def settings_of(
    command: str, args: Sequence[str] = (), env: Mapping[str, str] | None = None
) -> Settings:
    """Raises click's UsageError (or a subclass) where the command would refuse to start."""
    read = read_dev_settings if command == "dev" else read_service_settings
    unset: dict[str, str | None] = {
        name: None for name in os.environ if name.startswith(_READ_PREFIXES)
    }
    found = main.get_command(click.Context(main), command)
    assert found is not None, command
    with CliRunner().isolation(env={**unset, **(env or {})}):
        with found.make_context(command, list(args)) as ctx:
            return read(ctx.params)
