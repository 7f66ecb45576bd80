"""Distributed mode against a Kafka that demands SASL over TLS and a Cassandra that demands a
password over TLS (the `secured` profile of `headrace.infra`): a run works end to end, and
credentials that are refused stop `migrate` and the services at once, saying where and why,
without ever printing the password."""

from __future__ import annotations

import dataclasses
import datetime
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import inngest
import pytest

from headrace.adapters.kafka.security import KafkaSecurity
from headrace.infra.cassandra import drop_keyspace, local_cluster
from headrace.infra.secured import SecuredEndpoints
from headrace.infra.tls import server_tls
from headrace.runtime.settings import Settings
from headrace.testing.cluster import cluster_test_settings, security_env, start_cluster
from headrace.testing.dev import TEST_RETRY_INTERVAL_S, DevHandle, eventually
from headrace.testing.sdk_app import ServedApp, free_port, make_client

pytestmark = pytest.mark.secured

# A process that is refused must say so well within this; retrying would go on for ever.
FAIL_FAST_S = 30.0
WRONG_PASSWORD = "wrong-password-5f1c"
ONE_EACH = {"ingest": 1, "runner": 1, "scheduler": 1, "executor": 1}


@pytest.fixture
def settings(secured_infra: SecuredEndpoints) -> Iterator[Settings]:
    """Settings for a keyspace and topics of this test's own, over SASL_SSL (SCRAM-SHA-512)."""
    name = f"secured_{uuid.uuid4().hex[:10]}"
    yield cluster_test_settings(
        secured_infra.kafka_sasl_ssl,
        secured_infra.cassandra_contact,
        keyspace=name,
        partitions=2,
        kafka_security=secured_infra.kafka_security(),
        cassandra_security=secured_infra.cassandra_security(),
        retry_interval_s=TEST_RETRY_INTERVAL_S,
    )
    host, port = secured_infra.cassandra_contact
    cluster = local_cluster(host, port, **secured_infra.cassandra_security().cluster_options())
    try:
        drop_keyspace(cluster.connect(), name)
    finally:
        cluster.shutdown()


def _env(settings: Settings, **more: str) -> dict[str, str]:
    return {
        **os.environ,
        "HEADRACE_KAFKA_BOOTSTRAP": settings.cluster.kafka_bootstrap,
        "HEADRACE_CASSANDRA_HOSTS": ",".join(settings.cluster.cassandra_hosts),
        "HEADRACE_CASSANDRA_PORT": str(settings.cluster.cassandra_port),
        "HEADRACE_KEYSPACE": settings.cluster.keyspace,
        "HEADRACE_TOPIC_PREFIX": settings.cluster.topic_prefix,
        "HEADRACE_PARTITIONS": str(settings.partitions),
        "HEADRACE_LOG_FORMAT": "console",
        **security_env(settings.cluster),
        **more,
    }


def _headrace(settings: Settings, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "headrace", *args],
        env=_env(settings, **env),
        capture_output=True,
        text=True,
        timeout=FAIL_FAST_S,
        check=False,
    )


async def test_a_run_of_steps_a_sleep_and_a_wait_completes_on_secured_kafka_and_cassandra(
    settings: Settings, tmp_path: Path
) -> None:
    _, engine = await start_cluster(settings, tmp_path / "logs", counts=ONE_EACH)
    try:
        await _smoke(engine)
    finally:
        await engine.stop()
    # No service logged the broker password it used (the profile's Cassandra password is its
    # user name, "cassandra", too common a word to search for).
    password = settings.cluster.kafka_security.sasl_password
    logs = [p.read_bytes() for p in (tmp_path / "logs").glob("*.log")]
    assert password and len(logs) == 4 and all(logs)
    assert [log for log in logs if password.encode() in log] == []


async def _smoke(engine: DevHandle) -> None:
    client = make_client(engine.url, "secured-app")

    @client.create_function(fn_id="smoke", trigger=inngest.TriggerEvent(event="secured/order"))
    async def smoke(ctx: inngest.Context) -> object:
        doubled = await ctx.step.run("double", lambda: ctx.event.data["n"] * 2)
        await ctx.step.sleep("nap", datetime.timedelta(seconds=1))
        approval = await ctx.step.wait_for_event(
            "approval",
            event="secured/approved",
            if_exp="async.data.order == event.data.order",
            timeout=datetime.timedelta(seconds=60),
        )
        return {"doubled": doubled, "by": None if approval is None else approval.data["by"]}

    with ServedApp(client, [smoke]) as app:
        await engine.sync(app.url, "secured-app")
        [event_id] = await engine.send({"name": "secured/order", "data": {"n": 21, "order": "o1"}})
        run_id = await engine.run_of_event(event_id, timeout=60)

        async def waiting() -> bool:
            return "step.waiting" in [h.kind for h in await engine.history(run_id)]

        await eventually(waiting, timeout=60, what="the run to wait for the approval")
        await engine.send({"name": "secured/approved", "data": {"order": "o1", "by": "ann"}})
        run = await engine.finished(run_id, timeout=60)

    assert run.status == "completed"
    assert run.output == {"doubled": 42, "by": "ann"}
    assert run.ended_ms - run.started_ms >= 1000


@pytest.mark.parametrize(
    "how",
    [
        "PLAIN over SASL_PLAINTEXT",
        "SCRAM-SHA-256 over SASL_SSL",
        "SCRAM-SHA-512 over SASL_PLAINTEXT",
        "a client certificate over SSL",
    ],
)
def test_migrate_creates_the_topics_and_schema_over_each_kind_of_listener(
    settings: Settings, secured_infra: SecuredEndpoints, how: str
) -> None:
    mechanism, _, protocol = how.partition(" over ")
    if protocol == "SSL":
        bootstrap, security = secured_infra.kafka_ssl, secured_infra.kafka_client_certificate()
    else:
        tls = protocol == "SASL_SSL"
        security = secured_infra.kafka_security(mechanism, tls=tls)
        bootstrap = secured_infra.kafka_sasl_ssl if tls else secured_infra.kafka_sasl_plaintext
    cluster = dataclasses.replace(
        settings.cluster, kafka_bootstrap=bootstrap, kafka_security=security
    )
    settings = dataclasses.replace(settings, cluster=cluster)

    done = _headrace(settings, "migrate")

    assert done.returncode == 0, done.stderr
    assert f"cassandra keyspace {settings.cluster.keyspace}: migrations applied [1" in done.stdout
    assert f"kafka topics {settings.cluster.topic_prefix}events" in done.stdout


def test_migrate_fails_at_once_when_the_broker_certificate_is_not_from_the_given_ca(
    settings: Settings, tmp_path: Path
) -> None:
    other_ca = str(server_tls(tmp_path, "127.0.0.1").ca)

    done = _headrace(settings, "migrate", HEADRACE_KAFKA_SSL_CAFILE=other_ca)

    assert done.returncode == 1
    assert (
        f"Error: kafka broker {settings.cluster.kafka_bootstrap}: TLS handshake failed:"
        in done.stderr
    )
    assert "CERTIFICATE_VERIFY_FAILED" in done.stderr


@pytest.mark.parametrize("command", ["migrate", "runner"])
def test_without_a_client_certificate_the_listener_requiring_one_refuses_at_once(
    settings: Settings, secured_infra: SecuredEndpoints, command: str
) -> None:
    assert _headrace(settings, "migrate").returncode == 0  # over SASL_SSL: the runner's schema
    no_certificate = KafkaSecurity(protocol="SSL", ssl_cafile=secured_infra.ca_file)
    cluster = dataclasses.replace(
        settings.cluster, kafka_bootstrap=secured_infra.kafka_ssl, kafka_security=no_certificate
    )
    settings = dataclasses.replace(settings, cluster=cluster)

    done = _headrace(settings, command, HEADRACE_PORT=str(free_port()))

    output = done.stdout + done.stderr
    assert done.returncode == 1
    assert (
        f"kafka broker {secured_infra.kafka_ssl}: TLS handshake refused (this client sent no "
        "certificate): [SSL: SSLV3_ALERT_BAD_CERTIFICATE] sslv3 alert bad certificate"
    ) in output
    assert "Traceback" not in output


def test_migrate_with_a_wrong_kafka_password_fails_at_once_naming_the_broker(
    settings: Settings,
) -> None:
    done = _headrace(settings, "migrate", HEADRACE_KAFKA_SASL_PASSWORD=WRONG_PASSWORD)

    assert done.returncode == 1
    assert (
        f"Error: kafka broker {settings.cluster.kafka_bootstrap}: authentication failed "
        "(SCRAM-SHA-512 as 'headrace')" in done.stderr
    )
    assert WRONG_PASSWORD not in done.stdout + done.stderr


def test_migrate_with_a_wrong_cassandra_password_fails_at_once_naming_the_node(
    settings: Settings,
) -> None:
    done = _headrace(settings, "migrate", HEADRACE_CASSANDRA_PASSWORD=WRONG_PASSWORD)

    host, port = settings.cluster.cassandra_hosts[0], settings.cluster.cassandra_port
    assert done.returncode == 1
    assert f"Error: cassandra authentication failed: node {host}:{port}:" in done.stderr
    assert "Bad credentials" in done.stderr
    assert WRONG_PASSWORD not in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("password_env", "says"),
    [
        ("HEADRACE_KAFKA_SASL_PASSWORD", "kafka broker {kafka}: authentication failed"),
        ("HEADRACE_CASSANDRA_PASSWORD", "cassandra authentication failed: node {cassandra}:"),
    ],
)
def test_a_service_with_a_wrong_password_exits_at_once_and_logs_why(
    settings: Settings, password_env: str, says: str
) -> None:
    assert _headrace(settings, "migrate").returncode == 0
    port = str(free_port())

    done = _headrace(settings, "runner", HEADRACE_PORT=port, **{password_env: WRONG_PASSWORD})

    cassandra = f"{settings.cluster.cassandra_hosts[0]}:{settings.cluster.cassandra_port}"
    output = done.stdout + done.stderr
    assert done.returncode == 1
    assert "cannot connect; not retrying" in output
    assert says.format(kafka=settings.cluster.kafka_bootstrap, cassandra=cassandra) in output
    assert WRONG_PASSWORD not in output


def test_a_service_that_cannot_reach_kafka_yet_says_why_on_ready(
    settings: Settings, tmp_path: Path
) -> None:
    assert _headrace(settings, "migrate").returncode == 0
    port, nowhere = free_port(), f"127.0.0.1:{free_port()}"
    env = _env(settings, HEADRACE_PORT=str(port), HEADRACE_KAFKA_BOOTSTRAP=nowhere)
    with (tmp_path / "runner.log").open("wb") as log:
        runner = subprocess.Popen(
            [sys.executable, "-m", "headrace", "runner"], env=env, stdout=log, stderr=log
        )
    try:
        answer = _not_ready_answer(port)
    finally:
        runner.terminate()
        runner.wait(timeout=30)

    host, kafka_port = nowhere.split(":")
    assert answer == {
        "ready": False,
        "service": "runner",
        "error": "KafkaConnectionError: Unable to bootstrap from "
        f"[('{host}', {kafka_port}, <AddressFamily.AF_INET: 2>)]",
    }
    assert runner.returncode == 0  # it kept retrying until told to stop
    assert "cannot connect yet; retrying" in (tmp_path / "runner.log").read_text()


def _not_ready_answer(port: int) -> object:
    """The first `/ready` answer that carries a connection error."""
    deadline = time.monotonic() + FAIL_FAST_S
    with httpx.Client() as client:
        while time.monotonic() < deadline:
            try:
                response = client.get(f"http://127.0.0.1:{port}/ready")
                if response.status_code == 503 and "error" in response.json():
                    return response.json()
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
    return None
