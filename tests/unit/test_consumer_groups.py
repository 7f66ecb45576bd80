"""Consumer group ids follow the topic prefix unless given their own: two deployments sharing a
Kafka cluster under different topic prefixes never join each other's groups."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from headrace.runtime.settings import Settings
from headrace.runtime.settings_commands import service_command


@click.command()
@service_command(default_port=0)
def groups(settings: Settings) -> None:
    click.echo(settings.cluster.consumer_group_prefix)


@pytest.mark.parametrize(
    ("env", "prefix"),
    [
        ({"HEADRACE_TOPIC_PREFIX": "team-a."}, "team-a."),
        # As the Helm chart sets it when `kafka.groupPrefix` is left empty.
        ({"HEADRACE_TOPIC_PREFIX": "team-b.", "HEADRACE_GROUP_PREFIX": ""}, "team-b."),
        ({"HEADRACE_TOPIC_PREFIX": "team-c.", "HEADRACE_GROUP_PREFIX": "blue."}, "blue."),
        ({}, "headrace."),
    ],
)
def test_the_consumer_groups_prefix_is_the_topic_prefix_unless_set(
    env: dict[str, str], prefix: str
) -> None:
    result = CliRunner().invoke(groups, [], env=env)

    assert result.exit_code == 0, result.output
    assert result.output.strip() == prefix
