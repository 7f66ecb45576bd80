"""The executor's bound on records handled at once: a setting of both commands, read from
`--executor-concurrency` or `HEADRACE_EXECUTOR_CONCURRENCY`, 200 unless given."""

from __future__ import annotations

from typing import Any

import click
from click.testing import CliRunner

from headrace.dev.settings import DevSettings
from headrace.runtime.cluster_options import cluster_options, settings_from
from headrace.runtime.shared_options import DEFAULT_EXECUTOR_CONCURRENCY


@click.command()
@cluster_options(default_port=0)
def service(**options: Any) -> None:
    click.echo(settings_from(options).executor_concurrency)


def test_the_bound_is_read_from_flag_or_environment_and_defaults_to_200() -> None:
    runner = CliRunner()
    by_flag = runner.invoke(service, ["--executor-concurrency", "7"], env={})
    by_env = runner.invoke(service, [], env={"HEADRACE_EXECUTOR_CONCURRENCY": "9"})
    unset = runner.invoke(service, [], env={})

    assert [r.output.strip() for r in (by_flag, by_env, unset)] == ["7", "9", "200"]
    assert DEFAULT_EXECUTOR_CONCURRENCY == DevSettings().executor_concurrency == 200
    assert runner.invoke(service, ["--executor-concurrency", "0"], env={}).exit_code == 2
