"""Where `headrace dev` and the services differ when no flag is given: the log's partitions, the
rate limit, the log format, each command's port, and the Event API without keys (open in dev,
as Inngest's dev server; closed in a service). Everything else starts the same."""

from __future__ import annotations

import dataclasses
from dataclasses import replace

import click
import pytest

from headrace.flow.client_rate import ClientRate
from headrace.runtime.settings import DEV_SETTINGS, SERVICE_SETTINGS
from headrace.testing.command_settings import settings_of

PORTS = {"ingest": 8288, "runner": 8290, "scheduler": 8291, "executor": 8292, "migrate": 0}
# The fields the modes may differ in; the storage groups are each mode's own.
PER_MODE = {
    "partitions",
    "rate_limit",
    "open_event_api_without_keys",
    "log_format",
    "port",
    "embedded",
    "cluster",
}


def test_without_flags_each_command_runs_with_its_modes_settings() -> None:
    assert settings_of("dev") == DEV_SETTINGS
    for command, port in PORTS.items():
        assert settings_of(command) == replace(SERVICE_SETTINGS, port=port)


def test_the_modes_differ_in_partitions_rate_limit_and_log_format() -> None:
    dev, service = settings_of("dev"), settings_of("runner")

    assert (dev.partitions, service.partitions) == (4, 12)
    assert not dev.rate_limit.enabled
    assert service.rate_limit == ClientRate(1000.0, 2000)
    assert (dev.log_format, service.log_format) == ("console", "json")
    assert settings_of("dev", ["--log-format", "json"]).log_format == "json"
    assert settings_of("runner", ["--log-format", "console"]).log_format == "console"


def test_without_event_keys_dev_takes_any_key_and_a_service_refuses_every_event() -> None:
    assert settings_of("dev").accounts().for_event_key("whatever") == "default"
    assert settings_of("ingest").accounts().for_event_key("whatever") is None

    keyed = settings_of("dev", ["--event-key", "mine"]).accounts()
    assert keyed.for_event_key("mine") == "default"
    assert keyed.for_event_key("whatever") is None


def test_every_other_engine_setting_starts_the_same_in_both_modes() -> None:
    dev, service = settings_of("dev"), settings_of("runner")
    shared = [f.name for f in dataclasses.fields(dev) if f.name not in PER_MODE]

    assert shared
    assert {name: getattr(dev, name) for name in shared} == {
        name: getattr(service, name) for name in shared
    }


@pytest.mark.parametrize(
    ("command", "args"),
    [
        ("dev", ["--partitions", "8"]),
        ("dev", ["--kafka-bootstrap", "k:9092"]),
        ("runner", ["--state-dir", "/tmp/s"]),
        ("runner", ["--sdk-url", "http://a/api"]),
    ],
)
def test_a_flag_of_the_other_modes_storage_is_refused(command: str, args: list[str]) -> None:
    with pytest.raises(click.NoSuchOption):
        settings_of(command, args)
