"""The executor's bound on records handled at once: a setting of both commands, read from
`--executor-concurrency` or `HEADRACE_EXECUTOR_CONCURRENCY`, 200 unless given."""

from __future__ import annotations

import click
from click.testing import CliRunner

from headrace.runtime.settings import DEV_SETTINGS, SERVICE_SETTINGS, Settings
from headrace.runtime.settings_commands import service_command


@click.command()
@service_command(default_port=0)
def service(settings: Settings) -> None:
    click.echo(settings.executor_concurrency)


def test_the_bound_is_read_from_flag_or_environment_and_defaults_to_200() -> None:
    runner = CliRunner()
    by_flag = runner.invoke(service, ["--executor-concurrency", "7"], env={})
    by_env = runner.invoke(service, [], env={"HEADRACE_EXECUTOR_CONCURRENCY": "9"})
    unset = runner.invoke(service, [], env={})

    assert [r.output.strip() for r in (by_flag, by_env, unset)] == ["7", "9", "200"]
    assert DEV_SETTINGS.executor_concurrency == SERVICE_SETTINGS.executor_concurrency == 200
    assert runner.invoke(service, ["--executor-concurrency", "0"], env={}).exit_code == 2
