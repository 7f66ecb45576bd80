"""Serving apps written with the official TypeScript SDK (npm `inngest`) on a loopback port:
`TsApp`, a Node process running `tests/ts/app.mjs` with the major (3 or 4) a test asks for, and
`NodeApp`, any Node project's script (the example app of `examples/ts`).

A project's Node packages are installed with `npm ci` from its committed lockfile, once per
lockfile: into `~/.cache/headrace/ts-apps/<lockfile sha256>/` (outside the clone, so every clone
and worktree shares it), with `<project>/node_modules` a symlink to it. A stamp written after a
complete install marks the copy usable. `python -m headrace.testing.ts_app [project...]` does
just that install, for every project by default (scripts/test, scripts/demo-ts).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import httpx

from headrace.testing.sdk_app import free_port

# libs/headrace/testing/ts_app.py -> the clone's root.
ROOT = Path(__file__).resolve().parents[3]
PROJECT = Path(os.environ.get("HEADRACE_TS_APPS") or ROOT / "tests" / "ts")
# The example app users start with scripts/demo-ts: plain `inngest` 4.x.
EXAMPLE = ROOT / "examples" / "ts"
PROJECTS = (PROJECT, EXAMPLE)
MAJORS = ("3", "4")
_STAMP = ".headrace-lockfile-sha256"
_MIN_NODE = 20  # both SDK majors declare engines.node >= 20


class NodeMissing(RuntimeError):
    """Node or npm is absent or too old: the TypeScript tests cannot run."""


def _lock_hash(project: Path) -> str:
    return hashlib.sha256((project / "package-lock.json").read_bytes()).hexdigest()


def _check_node() -> None:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise NodeMissing(f"node {_MIN_NODE}+ and npm are required for the TypeScript SDK tests")
    if _node_major() < _MIN_NODE:
        raise NodeMissing(f"node {_MIN_NODE}+ is required")


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "headrace" / "ts-apps"


def ensure_installed(project: Path = PROJECT) -> Path:
    """Make `project/node_modules` the packages of its lockfile: `npm ci` into the cache unless
    that lockfile was installed there already, then link it. Concurrent callers (pytest
    sessions sharing the machine) take turns on a file lock."""
    _check_node()
    wanted = _lock_hash(project)
    cached = _cache_root() / wanted
    link = project / "node_modules"
    if _linked(link, cached):
        return project
    cached.parent.mkdir(parents=True, exist_ok=True)
    with open(cached.parent / f"{wanted}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (cached / "node_modules" / _STAMP).exists():
            _npm_ci(project, cached, wanted)
        if not _linked(link, cached):
            if link.is_symlink() or link.is_file():
                link.unlink()
            elif link.exists():
                shutil.rmtree(link)  # an install of another lockfile, made by hand
            link.symlink_to(cached / "node_modules", target_is_directory=True)
    return project


def _linked(link: Path, cached: Path) -> bool:
    return (
        link.is_symlink()
        and link.resolve() == (cached / "node_modules").resolve()
        and (cached / "node_modules" / _STAMP).exists()
    )


def _npm_ci(project: Path, cached: Path, lock_hash: str) -> None:
    shutil.rmtree(cached, ignore_errors=True)  # a copy left half-installed
    cached.mkdir(parents=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copy2(project / name, cached / name)
    started = time.monotonic()
    print(f"ts_app: npm ci for {project} in {cached}", file=sys.stderr)
    subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=cached, check=True
    )
    (cached / "node_modules" / _STAMP).write_text(lock_hash + "\n")
    print(f"ts_app: installed in {time.monotonic() - started:.0f} s", file=sys.stderr)


class NodeApp:
    """One Node process running `script` of `project` (its packages installed first) on a
    loopback port, given in `PORT`; it prints a line starting with "listening" once it can
    serve. Its output is kept for failure messages."""

    def __init__(
        self,
        project: Path,
        script: str,
        *,
        port: int | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.project = project
        self.script = script
        self.port = port or free_port()
        self._env = env or {}
        self._process: subprocess.Popen[str] | None = None
        # The reader thread keeps the pipe drained.
        self.output: deque[str] = deque(maxlen=400)
        self._listening = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/inngest"

    def start(self, timeout: float = 30.0) -> NodeApp:
        ensure_installed(self.project)
        env = {**os.environ, "PORT": str(self.port), "NODE_ENV": "development", **self._env}
        self._process = subprocess.Popen(
            ["node", str(self.project / self.script)],
            cwd=self.project,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read_output, daemon=True).start()
        if not self._listening.wait(timeout) or self._process.poll() is not None:
            self.stop()
            raise RuntimeError(f"the Node app did not start on port {self.port}:\n{self.log()}")
        return self

    def _read_output(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            self.output.append(line.rstrip("\n"))
            if line.startswith("listening"):
                self._listening.set()

    def log(self) -> str:
        return "\n".join(self.output)

    def stop(self) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=10)

    def __enter__(self) -> NodeApp:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class TsApp(NodeApp):
    """The test app of tests/ts serving `functions` (names from tests/ts/functions.mjs) as app
    `app_id` with the SDK of `major`, pointed at the headrace at `server_url` in dev mode."""

    def __init__(
        self,
        server_url: str,
        app_id: str,
        functions: list[str],
        *,
        major: str,
        port: int | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        if major not in MAJORS:
            raise ValueError(f"major must be one of {MAJORS}, got {major!r}")
        self.server_url = server_url
        self.app_id = app_id
        self.functions = functions
        self.major = major
        super().__init__(
            PROJECT,
            "app.mjs",
            port=port,
            env={
                "HEADRACE_TS_MAJOR": major,
                "HEADRACE_TS_APP_ID": app_id,
                "HEADRACE_TS_FUNCTIONS": ",".join(functions),
                "INNGEST_BASE_URL": server_url,
                **(env or {}),
            },
        )

    def start(self, timeout: float = 30.0) -> TsApp:
        super().start(timeout)
        return self

    def __enter__(self) -> TsApp:
        return self.start()

    def counts(self) -> dict[str, int]:
        """How many times each counted side effect (a step body) ran in the app."""
        response = httpx.get(f"http://127.0.0.1:{self.port}/counts", timeout=5)
        response.raise_for_status()
        data: Any = response.json()
        return {str(k): int(v) for k, v in data.items()}

    def open_gate(self, name: str) -> None:
        """Let the step bodies waiting at `await gate(name)` go on (tests/ts/app.mjs)."""
        httpx.post(f"http://127.0.0.1:{self.port}/open/{name}", timeout=5).raise_for_status()

    def calls(self) -> list[dict[str, str | None]]:
        """The request version and step id headers of each call the app got, in order, and
        whether the SDK has finished handling it (`ended`: "True" or "False")."""
        response = httpx.get(f"http://127.0.0.1:{self.port}/calls", timeout=5)
        response.raise_for_status()
        data: Any = response.json()
        return [{str(k): None if v is None else str(v) for k, v in c.items()} for c in data]


class TsSubscriber(NodeApp):
    """tests/ts/subscribe.mjs: the SDK's realtime `subscribe()` on `topics` of `channel` at the
    headrace at `server_url`, for the account of `signing_key` (none: a dev server), with a
    token it asks for or the `token` given; `major` 4 is npm `inngest` 4.x's own, 3 the 3.x
    line's separate `@inngest/realtime` package."""

    def __init__(
        self,
        server_url: str,
        channel: str,
        topics: list[str],
        *,
        signing_key: str | None = None,
        token: str | None = None,
        major: str = "4",
    ) -> None:
        if major not in MAJORS:
            raise ValueError(f"major must be one of {MAJORS}, got {major!r}")
        env = {
            "HEADRACE_RT_SDK": major,
            "INNGEST_BASE_URL": server_url,
            "HEADRACE_RT_CHANNEL": channel,
            "HEADRACE_RT_TOPICS": ",".join(topics),
            **({"INNGEST_SIGNING_KEY": signing_key} if signing_key else {}),
            **({"HEADRACE_RT_TOKEN": token} if token else {}),
        }
        # Node has a global WebSocket from 22 on; 20 and 21 behind a flag.
        if _node_major() < 22:
            env["NODE_OPTIONS"] = "--experimental-websocket"
        super().__init__(PROJECT, "subscribe.mjs", env=env)

    def __enter__(self) -> TsSubscriber:
        self.start()
        return self

    def messages(self) -> list[dict[str, Any]]:
        """The messages received so far, in order."""
        return [json.loads(line[8:]) for line in list(self.output) if line.startswith("message ")]

    def refusal(self, timeout: float = 30.0) -> str:
        """Run it expecting the connection to be refused: its "refused ..." line."""
        ensure_installed(self.project)
        done = subprocess.run(
            ["node", str(self.project / self.script)],
            cwd=self.project,
            env={**os.environ, **self._env},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        lines = (done.stdout + done.stderr).splitlines()
        refused = [line for line in lines if line.startswith("refused ")]
        if done.returncode != 3 or not refused:
            raise AssertionError(f"the subscriber was not refused:\n{done.stdout}{done.stderr}")
        return refused[0]


def fetch_with_stream(url: str, timeout: float = 60.0) -> tuple[list[dict[str, Any]], str]:
    """Call the Durable Endpoint at `url` with the SDK's `fetchWithStream`
    (tests/ts/stream-client.mjs): the events it was told of, and its "response <status> <body>"
    line (or "failed <reason>")."""
    ensure_installed(PROJECT)
    done = subprocess.run(
        ["node", str(PROJECT / "stream-client.mjs")],
        cwd=PROJECT,
        env={**os.environ, "HEADRACE_URL": url},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    lines = done.stdout.splitlines()
    events = [json.loads(line[6:]) for line in lines if line.startswith("event ")]
    ends = [line for line in lines if line.startswith(("response ", "failed "))]
    return events, ends[-1] if ends else f"no answer:\n{done.stdout}{done.stderr}"


def _node_major() -> int:
    version = subprocess.run(["node", "--version"], capture_output=True, text=True, check=True)
    return int(version.stdout.strip().lstrip("v").split(".")[0])


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        for path in [Path(arg).resolve() for arg in sys.argv[1:]] or PROJECTS:
            ensure_installed(path)
