"""The OCI image from `scripts/build-image`: built once per source hash (the script skips an
up-to-date archive), then each service and `migrate` run from it with buildah (chroot
isolation shares the host's network) against the local Kafka and Cassandra."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import tomllib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from headrace.testing.sdk_app import free_port

pytestmark = pytest.mark.image

ROOT = Path(__file__).resolve().parents[2]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
ARCHIVE = ROOT / "dist" / f"headrace-{VERSION}.oci.tar"
SERVICES = ("ingest", "runner", "scheduler", "executor")
READY_TIMEOUT_S = 90.0


@pytest.fixture(scope="module")
def container() -> Iterator[str]:
    """A working container from the image archive (built first if the sources changed)."""
    subprocess.run([str(ROOT / "scripts" / "build-image")], check=True, timeout=1800)
    name = f"headrace-test-{uuid.uuid4().hex[:8]}"
    subprocess.run(
        ["buildah", "from", "--quiet", "--name", name, f"oci-archive:{ARCHIVE}"],
        check=True,
        capture_output=True,
    )
    try:
        yield name
    finally:
        subprocess.run(["buildah", "rm", name], check=False, capture_output=True)


@pytest.fixture
def env(
    kafka_bootstrap: str,
    cassandra_contact: tuple[str, int],
    drop_keyspace: Callable[[str], None],
) -> Iterator[dict[str, str]]:
    """The services' configuration: this test's own keyspace, topics and groups."""
    name = f"image_{uuid.uuid4().hex[:10]}"
    yield {
        "HEADRACE_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "HEADRACE_CASSANDRA_HOSTS": cassandra_contact[0],
        "HEADRACE_CASSANDRA_PORT": str(cassandra_contact[1]),
        "HEADRACE_KEYSPACE": name,
        "HEADRACE_TOPIC_PREFIX": f"{name}.",
        "HEADRACE_GROUP_PREFIX": f"{name}.",
        "HEADRACE_PARTITIONS": "2",
        "HEADRACE_EVENT_KEYS": "k=default",
    }
    drop_keyspace(name)


def _run(container: str, env: dict[str, str], *command: str) -> list[str]:
    flags = [flag for name, value in env.items() for flag in ("--env", f"{name}={value}")]
    return ["buildah", "run", "--isolation", "chroot", *flags, container, "--", *command]


def test_the_image_runs_as_a_non_root_user_with_labels_and_headrace_as_entrypoint(
    container: str,
) -> None:
    inspected = subprocess.run(
        ["buildah", "inspect", "--type", "container", container],
        check=True,
        capture_output=True,
        text=True,
    )
    config = json.loads(inspected.stdout)["OCIv1"]["config"]
    assert config["Entrypoint"] == ["/opt/headrace/bin/headrace"]
    assert config["User"] == "10001:10001"
    labels = config["Labels"]
    assert labels["org.opencontainers.image.version"] == VERSION
    # The commit it was built at: HEAD, or an ancestor when later commits left the image's
    # sources unchanged (the archive is rebuilt only when they change).
    revision = labels["org.opencontainers.image.revision"]
    is_ancestor = ["git", "merge-base", "--is-ancestor", revision, "HEAD"]
    assert subprocess.run(is_ancestor, cwd=ROOT, check=False).returncode == 0
    assert labels["org.opencontainers.image.created"]
    # `python3` (what the chart's test pod runs) is the venv's, with headrace importable.
    who = subprocess.run(
        _run(
            container, {}, "python3", "-c", "import os, headrace; print(os.getuid(), os.getgid())"
        ),
        check=True,
        capture_output=True,
        text=True,
    )
    assert who.stdout.split() == ["10001", "10001"]


def test_migrate_and_each_service_from_the_image_answer_ready(
    container: str, env: dict[str, str], tmp_path: Path
) -> None:
    migrated = subprocess.run(
        _run(container, env, "headrace", "migrate"), capture_output=True, text=True, timeout=120
    )
    assert migrated.returncode == 0, migrated.stderr
    assert f"cassandra keyspace {env['HEADRACE_KEYSPACE']}: migrations applied" in migrated.stdout

    services: dict[str, tuple[int, subprocess.Popen[bytes]]] = {}
    try:
        for service in SERVICES:
            port = free_port()
            with (tmp_path / f"{service}.log").open("wb") as log:
                process = subprocess.Popen(
                    _run(container, {**env, "HEADRACE_PORT": str(port)}, "headrace", service),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # buildah and the service stop together
                )
            services[service] = (port, process)
        answers = _ready(services)
    finally:
        for _, process in services.values():
            os.killpg(process.pid, signal.SIGTERM)
        for _, process in services.values():
            process.wait(timeout=60)
    assert answers == {service: {"ready": True, "service": service} for service in SERVICES}, (
        f"see the logs in {tmp_path}"
    )


def _ready(services: dict[str, tuple[int, subprocess.Popen[bytes]]]) -> dict[str, object]:
    """Each service's `/ready` answer once all are 200 (or why one is not, at the deadline)."""
    answers: dict[str, object] = {}
    deadline = time.monotonic() + READY_TIMEOUT_S
    with httpx.Client() as client:
        while time.monotonic() < deadline:
            for service, (port, process) in services.items():
                if process.poll() is not None:
                    answers[service] = f"exited with {process.returncode}"
                    continue
                try:
                    response = client.get(f"http://127.0.0.1:{port}/ready")
                    answers[service] = response.json() if response.status_code == 200 else None
                except httpx.HTTPError as err:
                    answers[service] = repr(err)
            if all(isinstance(answer, dict) for answer in answers.values()):
                break
            time.sleep(0.5)
    return answers
