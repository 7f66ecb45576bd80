"""The retention settings: flags or `HEADRACE_*` variables, for the services and `headrace dev`
alike; a retention that cannot be stored (zero, negative, past Cassandra's TTL limit) is a usage
error at start, never a store write that fails later. And `headrace dev` sweeps by them."""

from __future__ import annotations

from dataclasses import replace

import click
import pytest
from click.testing import CliRunner

from headrace.core.clock import FakeClock
from headrace.core.retention import DEFAULT_DEAD_LETTER_RETENTION_S, DEFAULT_RETENTION_S
from headrace.dev.cli import dev
from headrace.dev.server import DevServer
from headrace.messages.state import RunState
from headrace.ports.log import LogRecord
from headrace.runtime.dead_letter import DeadLetters
from headrace.runtime.settings import DEV_SETTINGS, EmbeddedStorage, Settings
from headrace.runtime.settings_commands import service_command


@click.command()
@service_command(default_port=0)
def retention(settings: Settings) -> None:
    click.echo(f"{settings.retention_s} {settings.dead_letter_retention_s}")


@pytest.mark.parametrize(
    ("args", "env", "shown"),
    [
        ([], {}, f"{DEFAULT_RETENTION_S} {DEFAULT_DEAD_LETTER_RETENTION_S}"),
        (["--retention", "3600", "--dead-letter-retention", "60"], {}, "3600 60"),
        # As the Helm chart sets them.
        (
            [],
            {"HEADRACE_RETENTION": "86400", "HEADRACE_DEAD_LETTER_RETENTION": "7200"},
            "86400 7200",
        ),
    ],
)
def test_the_services_read_the_retentions_from_flags_or_environment(
    args: list[str], env: dict[str, str], shown: str
) -> None:
    result = CliRunner().invoke(retention, args, env=env)

    assert result.exit_code == 0, result.output
    assert result.output.strip() == shown


@pytest.mark.parametrize("command", [retention, dev])
@pytest.mark.parametrize(
    "args",
    [
        ["--retention", "0"],
        ["--retention", "-5"],
        ["--retention", "7d"],
        ["--retention", str(20 * 365 * 86_400)],
        ["--dead-letter-retention", "0"],
    ],
)
def test_a_retention_that_cannot_be_kept_is_refused_at_start(
    command: click.Command, args: list[str]
) -> None:
    result = CliRunner().invoke(command, args)

    assert result.exit_code == 2, result.output
    assert "retention" in result.output and "Invalid value" in result.output


async def test_headrace_dev_sweeps_by_its_retention_settings() -> None:
    """The dev server's stores and sweeper count the configured retentions on its clock."""
    clock = FakeClock()
    settings = replace(
        DEV_SETTINGS,
        embedded=EmbeddedStorage(state_dir=None),
        retention_s=60,
        dead_letter_retention_s=120,
    )
    server = DevServer(settings, clock=clock)
    try:
        run = RunState(run_id="r1", account_id="acct", fn_id="fn", app_id="app")
        await server.stores.create_run(run)
        run.status = "completed"
        await server.stores.save_run(run)
        await server.stores.retain_run(run)
        letters = DeadLetters(server.embedded.bare_log, server.topics.dead_letter, "ingest")
        await letters.put(LogRecord("headrace.intake", 0, 0, "acct", b"x", ()), ValueError("x"))

        await clock.advance(60_000)
        await server.sweeper.sweep()
        assert await server.stores.get_run("r1") is None
        assert len(server.embedded.bare_log.newest(server.topics.dead_letter, 10)) == 1
        await clock.advance(60_000)
        await server.sweeper.sweep()
        assert server.embedded.bare_log.newest(server.topics.dead_letter, 10) == []
    finally:
        server.embedded.db.close()
