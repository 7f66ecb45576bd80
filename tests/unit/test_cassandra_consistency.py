"""The Cassandra consistency settings: read by every service and `migrate` from a flag or
`HEADRACE_CASSANDRA_*`, given to the driver, and anything weaker than a quorum refused at start."""

from __future__ import annotations

import click
import pytest
from cassandra import ConsistencyLevel
from cassandra.cluster import EXEC_PROFILE_DEFAULT
from click.testing import CliRunner

from headrace.adapters.cassandra.consistency import CassandraConsistency
from headrace.cli import main
from headrace.runtime.connect import cassandra_cluster
from headrace.runtime.settings import Settings
from headrace.runtime.settings_commands import service_command


@click.command()
@service_command(default_port=0)
def show(settings: Settings) -> None:
    click.echo(repr(settings.cluster.cassandra_consistency))
    profile = cassandra_cluster(settings).profile_manager.profiles[EXEC_PROFILE_DEFAULT]
    click.echo(ConsistencyLevel.value_to_name[profile.consistency_level])
    click.echo(ConsistencyLevel.value_to_name[profile.serial_consistency_level])


def test_the_defaults_are_local_quorum_and_local_serial() -> None:
    result = CliRunner().invoke(show, [], env={})

    assert result.exit_code == 0, result.output
    assert result.output.split("\n")[1:3] == ["LOCAL_QUORUM", "LOCAL_SERIAL"]
    assert "level='LOCAL_QUORUM', serial='LOCAL_SERIAL'" in result.output


@pytest.mark.parametrize(
    ("args", "env"),
    [
        ([], {"HEADRACE_CASSANDRA_CONSISTENCY": "quorum"}),
        (["--cassandra-consistency", "QUORUM"], {}),
    ],
)
def test_a_level_from_the_variable_or_the_flag_is_the_drivers_default(
    args: list[str], env: dict[str, str]
) -> None:
    env["HEADRACE_CASSANDRA_SERIAL_CONSISTENCY"] = "serial"

    result = CliRunner().invoke(show, args, env=env)

    assert result.exit_code == 0, result.output
    assert "level='QUORUM', serial='SERIAL'" in result.output
    assert result.output.split("\n")[1:3] == ["QUORUM", "SERIAL"]


@pytest.mark.parametrize("command", ["migrate", "ingest", "runner", "scheduler", "executor"])
@pytest.mark.parametrize(
    ("env", "says"),
    [
        (
            {"HEADRACE_CASSANDRA_CONSISTENCY": "ONE"},
            "Invalid value for '--cassandra-consistency' (env var: "
            "'HEADRACE_CASSANDRA_CONSISTENCY'): consistency level 'ONE' is below a "
            "quorum, so a read could miss an acknowledged write; use one of LOCAL_QUORUM, "
            "QUORUM, ALL",
        ),
        (
            {"HEADRACE_CASSANDRA_CONSISTENCY": "each_quorum"},
            "'EACH_QUORUM' is refused by Cassandra for lightweight transactions",
        ),
        (
            {"HEADRACE_CASSANDRA_CONSISTENCY": "QUROUM"},
            "'QUROUM' is not a Cassandra consistency level",
        ),
        (
            {"HEADRACE_CASSANDRA_SERIAL_CONSISTENCY": "QUORUM"},
            "Invalid value for '--cassandra-serial-consistency' (env var: "
            "'HEADRACE_CASSANDRA_SERIAL_CONSISTENCY'): serial consistency level "
            "'QUORUM' is not one of LOCAL_SERIAL, SERIAL",
        ),
    ],
)
def test_a_level_weaker_than_a_quorum_or_unknown_stops_every_command_with_a_usage_error(
    command: str, env: dict[str, str], says: str
) -> None:
    # Refused while the options are parsed, before any connection is tried.
    result = CliRunner().invoke(main, [command], env=env)

    assert result.exit_code == 2
    assert says in " ".join(result.output.split())


def test_a_level_built_in_code_is_checked_too() -> None:
    with pytest.raises(ValueError, match="'LOCAL_ONE' is below a quorum"):
        CassandraConsistency(level="LOCAL_ONE")
