"""The OCI image from `scripts/build-image`: built once per source hash (the script skips an
up-to-date archive), then each service and `migrate` run from it against the local Kafka and
Cassandra, both with `buildah run` (chroot isolation shares the host's network) and as the chart
runs them: the root filesystem read-only, a writable directory at /tmp only."""

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
HOOK = ROOT / "deploy" / "helm" / "headrace" / "files" / "event-roundtrip.py"


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


# `buildah run` cannot make the root read-only, so this does what a runtime does for the chart's
# `readOnlyRootFilesystem: true` and its /tmp emptyDir, in a mount namespace of its own: the
# container's rootfs bound read-only, a host directory (an emptyDir is one) at /tmp unless the
# /tmp argument is empty, then chroot as the image's user. Arguments: rootfs, mount point, /tmp
# directory, user, workdir, env..., command.
_READ_ONLY = """
mount --bind "$1" "$2"
[ -z "$3" ] || mount --bind "$3" "$2/tmp"
mount -t proc proc "$2/proc"
mount --rbind /dev "$2/dev"
mount -o remount,bind,ro "$2"
root=$2 user=$4 workdir=$5
shift 5
exec chroot --userspec="$user" "$root" /usr/bin/env -i -C "$workdir" "$@"
"""


class ReadOnlyRoot:
    """Commands from the image with its root filesystem read-only, each with its own /tmp."""

    def __init__(self, container: str, scratch: Path) -> None:
        self._rootfs = subprocess.run(
            ["buildah", "mount", container], check=True, capture_output=True, text=True
        ).stdout.strip()
        inspected = subprocess.run(
            ["buildah", "inspect", "--type", "container", container],
            check=True,
            capture_output=True,
            text=True,
        )
        self._config = json.loads(inspected.stdout)["OCIv1"]["config"]
        self._scratch = scratch
        self.tmp_dirs: list[Path] = []
        self._made = 0

    def __call__(self, env: dict[str, str], *command: str, tmp: bool = True) -> list[str]:
        self._made += 1
        mount_point = self._scratch / f"root-{self._made}"
        mount_point.mkdir()
        tmp_dir = ""
        if tmp:
            self.tmp_dirs.append(self._scratch / f"tmp-{self._made}")
            self.tmp_dirs[-1].mkdir(mode=0o777)
            self.tmp_dirs[-1].chmod(0o777)  # as the kubelet makes an emptyDir, whatever the umask
            tmp_dir = str(self.tmp_dirs[-1])
        variables = [*self._config["Env"], *(f"{name}={value}" for name, value in env.items())]
        return [
            "unshare",
            "--mount",
            "--fork",
            "sh",
            "-euc",
            _READ_ONLY,
            "read-only",
            self._rootfs,
            str(mount_point),
            tmp_dir,
            self._config["User"],
            self._config["WorkingDir"],
            *variables,
            *command,
        ]


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


def test_the_root_filesystem_is_read_only_under_the_chart_s_settings(
    container: str, tmp_path: Path
) -> None:
    """The check that the read-only runs below can fail: writing outside /tmp is refused."""
    read_only = ReadOnlyRoot(container, tmp_path)
    script = "open('/tmp/ok', 'w'); open('/opt/headrace/no', 'w')"

    done = subprocess.run(
        read_only({}, "python3", "-c", script), capture_output=True, text=True, timeout=60
    )

    assert done.returncode == 1
    assert "OSError: [Errno 30] Read-only file system: '/opt/headrace/no'" in done.stderr
    assert [p.name for p in read_only.tmp_dirs[0].iterdir()] == ["ok"]

    # Without the emptyDir (the `helm test` pod), /tmp is the image's, read-only too.
    done = subprocess.run(
        read_only({}, "python3", "-c", script, tmp=False), capture_output=True, text=True
    )
    assert "OSError: [Errno 30] Read-only file system: '/tmp/ok'" in done.stderr


@pytest.fixture(params=["buildah run", "read-only root"])
def launch(
    request: pytest.FixtureRequest, container: str, tmp_path: Path
) -> Callable[..., list[str]]:
    """How a command from the image is started."""
    if request.param == "buildah run":
        # The container's own /tmp is writable there, asked for or not.
        return lambda env, *command, tmp=True: _run(container, env, *command)
    return ReadOnlyRoot(container, tmp_path)


def test_migrate_and_each_service_from_the_image_answer_ready(
    launch: Callable[..., list[str]], env: dict[str, str], tmp_path: Path
) -> None:
    migrated = subprocess.run(
        launch(env, "headrace", "migrate"), capture_output=True, text=True, timeout=120
    )
    assert migrated.returncode == 0, migrated.stderr
    assert f"cassandra keyspace {env['HEADRACE_KEYSPACE']}: migrations applied" in migrated.stdout

    services: dict[str, tuple[int, subprocess.Popen[bytes]]] = {}
    try:
        for service in SERVICES:
            port = free_port()
            with (tmp_path / f"{service}.log").open("wb") as log:
                process = subprocess.Popen(
                    launch({**env, "HEADRACE_PORT": str(port)}, "headrace", service),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # buildah and the service stop together
                )
            services[service] = (port, process)
        answers = _ready(services)
        assert answers == {s: {"ready": True, "service": s} for s in SERVICES}, (
            f"see the logs in {tmp_path}"
        )
        # The chart's `helm test` pod: the same image, with no writable /tmp of its own.
        hook_env = {
            "INGEST_URL": f"http://127.0.0.1:{services['ingest'][0]}",
            "HEADRACE_EVENT_KEYS": env["HEADRACE_EVENT_KEYS"],
            "TIMEOUT_SECONDS": "60",
        }
        hook = subprocess.run(
            launch(hook_env, "python3", "-c", HOOK.read_text(), tmp=False),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert hook.returncode == 0, hook.stderr
        assert "read event" in hook.stdout
    finally:
        for _, process in services.values():
            os.killpg(process.pid, signal.SIGTERM)
        for _, process in services.values():
            process.wait(timeout=60)


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
