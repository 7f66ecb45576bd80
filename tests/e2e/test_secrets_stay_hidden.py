"""No secret in any log line, span, metric, dashboard page or error answer (issue 16, security
checks).

A workload uses every secret the server holds: event keys (the official SDK sends events with
them), signing keys (the SDK syncs with one and checks each call's signature; the `/v0` and
`/v1` APIs are read with them; in distributed mode a second account's too), the dashboard token
(login, every page, `/metrics`), and bad requests that carry a secret where it does not belong.
Then every form of each secret (the key, its bare hex, the hash the SDKs send as a bearer, the
dashboard's session cookie) is searched for in: every log line of every process (JSON, at
debug level), every span exported over OTLP (raw bytes: names, attributes, events, statuses),
every `/metrics` answer, and every answer the clients got (bodies and headers).

`headrace dev` runs as its command does, in a process of its own with its log in a file, so
what it registers for masking is what is tested. The secured profile's passwords are checked
the same way in tests/e2e/test_secured.py."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import secrets
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import inngest
import pytest
from tests.e2e.test_observability import OtlpReceiver

from headrace.dashboard.auth import DashboardAuth
from headrace.protocol.signing import hashed_signing_key
from headrace.runtime.settings import Settings
from headrace.testing.dev import TEST_RETRY_INTERVAL_S, eventually
from headrace.testing.sdk_app import ServedApp, free_port, make_client


def _signing_key() -> str:
    return "signkey-prod-" + secrets.token_hex(32)


@dataclass(frozen=True)
class Secrets:
    # Account -> its event key, and its signing key.
    event_keys: dict[str, str]
    signing_keys: dict[str, str]
    dashboard_token: str = field(default_factory=lambda: "dashtok" + secrets.token_hex(16))

    @classmethod
    def of(cls, *accounts: str) -> Secrets:
        return cls(
            {a: "evtkey" + secrets.token_hex(16) for a in accounts},
            {a: _signing_key() for a in accounts},
        )

    def forms(self) -> dict[str, str]:
        """Every form a secret takes, by what it is."""
        found = {f"{a}'s event key": key for a, key in self.event_keys.items()}
        for account, key in self.signing_keys.items():
            found[f"{account}'s signing key"] = key
            found[f"{account}'s signing key, bare"] = key.removeprefix("signkey-prod-")
            found[f"{account}'s signing key, hashed"] = hashed_signing_key(key)
        found["the dashboard token"] = self.dashboard_token
        found["the dashboard session"] = DashboardAuth.with_token(self.dashboard_token).session()
        return found


@dataclass
class Server:
    """A headrace in either mode, seen only from outside: its URLs and where its logs go."""

    url: str
    log_dir: Path
    # Where each process serves /metrics.
    metrics_urls: list[str]


@dataclass
class Seen:
    """Everything the clients were answered."""

    answers: list[tuple[str, str]] = field(default_factory=list)

    def add(self, what: str, response: httpx.Response) -> httpx.Response:
        self.answers.append((what, f"{response.status_code} {response.headers} {response.text}"))
        return response


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {hashed_signing_key(key)}"}


def _vault_app(url: str, account: str, keys: Secrets) -> tuple[inngest.Inngest, list[Any]]:
    """A production-mode app: it checks every call's signature and sends with its event key."""
    client = make_client(
        url,
        f"vault-{account}",
        signing_key=keys.signing_keys[account],
        event_key=keys.event_keys[account],
    )

    @client.create_function(
        fn_id="open", trigger=inngest.TriggerEvent(event=f"vault/{account}.opened"), retries=1
    )
    async def open_vault(ctx: inngest.Context) -> str:
        def flaky() -> str:
            if ctx.attempt == 0:
                raise RuntimeError("the first attempt fails")
            return f"opened by {account}"

        return await ctx.step.run("flaky", flaky)

    @client.create_function(
        fn_id="refuse", trigger=inngest.TriggerEvent(event=f"vault/{account}.opened")
    )
    async def refuse(ctx: inngest.Context) -> str:
        raise inngest.NonRetriableError("the vault stays shut")

    return client, [open_vault, refuse]


async def _run_of(http: httpx.AsyncClient, event_id: str, key: str, seen: Seen) -> list[str]:
    async def runs() -> list[str] | None:
        answer = seen.add(
            "runs of an event", await http.get(f"/v1/events/{event_id}/runs", headers=_bearer(key))
        )
        found = [run["run_id"] for run in answer.json().get("data") or []]
        return found if len(found) == 2 else None

    return await eventually(runs, timeout=60, what=f"the runs of {event_id}")


async def _ended(http: httpx.AsyncClient, run_id: str, key: str, seen: Seen) -> dict[str, Any]:
    async def ended() -> dict[str, Any] | None:
        answer = seen.add("a run", await http.get(f"/v1/runs/{run_id}", headers=_bearer(key)))
        run: dict[str, Any] = answer.json()["data"]
        return run if run["status"] in ("Completed", "Failed", "Cancelled") else None

    return await eventually(ended, timeout=60, what=f"run {run_id} to end")


async def _account_workload(
    server: Server, keys: Secrets, account: str, seen: Seen
) -> tuple[str, list[str]]:
    """Sync the account's app, send its event with the SDK, watch both runs end through the
    API; return the event id and run ids."""
    key = keys.signing_keys[account]
    client, functions = _vault_app(server.url, account, keys)
    async with httpx.AsyncClient(base_url=server.url) as http:
        with ServedApp(client, functions) as app:
            seen.add(
                "sync",
                await http.put(app.url, headers={"x-inngest-server-kind": "cloud"}),
            )

            async def synced() -> bool:
                info = seen.add("dev info", await http.get("/dev", headers=_bearer(key)))
                return any(a["id"] == f"vault-{account}" for a in info.json()["apps"])

            await eventually(synced, timeout=60, what=f"{account}'s app to sync")
            [event_id] = await client.send(
                inngest.Event(name=f"vault/{account}.opened", data={"who": account})
            )
            run_ids = await _run_of(http, event_id, key, seen)
            runs = [await _ended(http, run_id, key, seen) for run_id in run_ids]
    # Function ids are the app's id and the function's.
    by_function = {r["function_id"].removeprefix(f"vault-{account}-"): r for r in runs}
    assert by_function["open"]["status"] == "Completed", runs
    assert by_function["open"]["output"] == f"opened by {account}"
    assert by_function["refuse"]["status"] == "Failed", runs
    return event_id, run_ids


async def _reads_and_bad_requests(
    server: Server, keys: Secrets, account: str, event_id: str, run_id: str, seen: Seen
) -> None:
    """The read APIs with the key, and requests that carry a secret where it does not
    belong: each is refused, and the refusal must not quote what it was shown."""
    key, event_key = keys.signing_keys[account], keys.event_keys[account]
    bad_bearers = {
        "raw key as bearer, one character off": f"Bearer {key}0",
        "hashed key, one character off": f"Bearer {hashed_signing_key(key)}0",
        "no scheme": hashed_signing_key(key),
        "basic scheme": f"Basic {key}",
        "event key as bearer": f"Bearer {event_key}",
    }
    gql = {"query": "query($id: String!) { run(runID: $id) { id status output } }"}
    async with httpx.AsyncClient(base_url=server.url) as http:
        seen.add("event", await http.get(f"/v1/events/{event_id}", headers=_bearer(key)))
        seen.add("events", await http.get("/v1/events", headers=_bearer(key)))
        seen.add(
            "gql",
            await http.post(
                "/v0/gql", json={**gql, "variables": {"id": run_id}}, headers=_bearer(key)
            ),
        )
        for what, authorization in bad_bearers.items():
            headers = {"Authorization": authorization}
            seen.add(what, await http.get(f"/v1/runs/{run_id}", headers=headers))
            seen.add(what, await http.post("/fn/register", json={}, headers=headers))
            seen.add(what, await http.post("/v0/gql", json=gql, headers=headers))
            seen.add(what, await http.delete(f"/v1/runs/{run_id}", headers=headers))
        seen.add("unknown event key", await http.post(f"/e/{event_key}0", json={"name": "x"}))
        seen.add("signing key as event key", await http.post(f"/e/{key}", json={"name": "x"}))
        seen.add("not JSON", await http.post(f"/e/{event_key}", content=b"{"))
        seen.add("no name", await http.post(f"/e/{event_key}", json={"data": {}}))
        seen.add(
            "bad sync body",
            await http.post(
                "/fn/register",
                content=b'{"url": ',
                headers={**_bearer(key), "x-inngest-signature": f"t=1&s={key}"},
            ),
        )
        seen.add(
            "bad cancellation",
            await http.post("/v1/cancellations", json={"app_id": 1}, headers=_bearer(key)),
        )
        seen.add(
            "bad realtime token request",
            await http.post("/v1/realtime/token", content=b"[", headers=_bearer(key)),
        )
        seen.add(
            "bad checkpoint",
            await http.post(f"/v1/checkpoint/{run_id}/steps", content=b"{", headers=_bearer(key)),
        )


async def _dashboard(
    server: Server, keys: Secrets, account: str, event_id: str, run_ids: list[str], seen: Seen
) -> None:
    token = keys.dashboard_token
    async with httpx.AsyncClient(base_url=f"{server.url}/dashboard") as dash:
        seen.add(
            "wrong token",
            await dash.post("/login", data={"token": token + "0", "next": "/dashboard"}),
        )
        seen.add(
            "wrong bearer", await dash.get("/runs", headers={"Authorization": f"Bearer {token}0"})
        )
        # Not searched: its cookie is the session, given to who showed the token.
        login = await dash.post("/login", data={"token": token, "next": "/dashboard"})
        assert login.status_code == 303, login.text
        seen.add("pick account", await dash.post("/account", data={"account": account}))
        pages = ["/runs", "/runs/table", "/events", "/events/table", "/apps", f"/events/{event_id}"]
        pages += [f"/runs/{run_id}" for run_id in run_ids]
        for page in pages:
            answer = seen.add(page, await dash.get(page))
            assert answer.status_code == 200, (page, answer.text)
        seen.add(
            "send an event",
            await dash.post("/events", data={"name": "vault/probe", "data": '{"a": 1}'}),
        )
        seen.add("rerun", await dash.post(f"/runs/{run_ids[0]}/rerun"))
        for url in server.metrics_urls:
            seen.add("metrics", await dash.get(url, headers={"Authorization": f"Bearer {token}"}))


async def _exported(receiver: OtlpReceiver, run_ids: list[str]) -> None:
    """Wait for the runs' spans to be exported (each process exports in batches)."""

    async def all_there() -> bool:
        return all(any(r.encode() in raw for raw in receiver.raw) for r in run_ids)

    await eventually(all_there, timeout=30, what="the runs' spans to be exported")


def _leaks(keys: Secrets, where: str, text: str | bytes) -> list[str]:
    data = text.encode() if isinstance(text, str) else text
    return [f"{what} in {where}" for what, value in keys.forms().items() if value.encode() in data]


async def _check_nothing_leaks(
    server: Server, keys: Secrets, receiver: OtlpReceiver, seen: Seen
) -> None:
    logs = sorted(server.log_dir.glob("*.log"))
    assert logs and all(p.stat().st_size > 0 for p in logs), logs
    leaks = [leak for p in logs for leak in _leaks(keys, p.name, p.read_bytes())]
    assert receiver.raw, "no spans were exported"
    leaks += [leak for raw in receiver.raw for leak in _leaks(keys, "an exported span", raw)]
    leaks += [
        leak for what, text in seen.answers for leak in _leaks(keys, f"the answer to {what}", text)
    ]
    assert leaks == []


@pytest.fixture
async def otlp() -> AsyncIterator[OtlpReceiver]:
    receiver = OtlpReceiver()
    task = await receiver.server.start()
    yield receiver
    receiver.server.should_exit = True
    await task


def _otlp_env(receiver: OtlpReceiver) -> dict[str, str]:
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver.port}",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "HEADRACE_LOG_FORMAT": "json",
        "HEADRACE_LOG_LEVEL": "debug",
    }


async def test_no_secret_reaches_a_log_span_metric_page_or_answer_in_dev(
    otlp: OtlpReceiver, tmp_path: Path
) -> None:
    keys = Secrets.of("default")
    port = free_port()
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    dev = _start_dev(port, keys, log_dir / "dev.log", _otlp_env(otlp))
    server = Server(f"http://127.0.0.1:{port}", log_dir, [f"http://127.0.0.1:{port}/metrics"])
    seen = Seen()
    try:
        await _wait_healthy(server.url, dev)
        event_id, run_ids = await _account_workload(server, keys, "default", seen)
        await _reads_and_bad_requests(server, keys, "default", event_id, run_ids[0], seen)
        await _dashboard(server, keys, "default", event_id, run_ids, seen)
        await _exported(otlp, run_ids)
    finally:
        dev.terminate()
        # Off the event loop: the OTLP receiver serves in it, and `headrace dev` exports its
        # last spans as it stops (a blocked loop left it retrying them for 20 s, unchecked).
        await asyncio.to_thread(dev.wait, 30)
    await _check_nothing_leaks(server, keys, otlp, seen)


def _start_dev(
    port: int, keys: Secrets, log_path: Path, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    """`headrace dev` as its user starts it, with every secret it takes."""
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "headrace",
                "dev",
                "--in-memory",
                "--port",
                str(port),
                "--event-key",
                keys.event_keys["default"],
                "--signing-key",
                keys.signing_keys["default"],
                "--dashboard-token",
                keys.dashboard_token,
                "--retry-interval",
                str(TEST_RETRY_INTERVAL_S),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
        )


async def _wait_healthy(url: str, process: subprocess.Popen[bytes]) -> None:
    async def healthy() -> bool:
        assert process.poll() is None, "headrace dev exited"
        try:
            async with httpx.AsyncClient() as http:
                return (await http.get(f"{url}/health")).status_code == 200
        except httpx.HTTPError:
            return False

    await eventually(healthy, timeout=30, what="headrace dev to serve")


@pytest.mark.kafka
@pytest.mark.cassandra
async def test_no_secret_reaches_a_log_span_metric_page_or_answer_in_distributed_mode(
    otlp: OtlpReceiver,
    distributed_settings: Settings,
    drop_keyspace: Callable[[str], None],
    tmp_path: Path,
) -> None:
    from headrace.testing.cluster import start_cluster

    keys = Secrets.of("acme", "globex")
    name = f"secrets_{uuid.uuid4().hex[:8]}"
    connection = dataclasses.replace(
        distributed_settings.cluster, keyspace=name, topic_prefix=f"{name}."
    )
    settings = dataclasses.replace(distributed_settings, cluster=connection)
    env = {
        **_otlp_env(otlp),
        "HEADRACE_EVENT_KEYS": ",".join(f"{k}={a}" for a, k in keys.event_keys.items()),
        "HEADRACE_SIGNING_KEYS": ",".join(f"{a}={k}" for a, k in keys.signing_keys.items()),
        "HEADRACE_DASHBOARD_TOKEN": keys.dashboard_token,
    }
    counts = {"ingest": 1, "runner": 1, "scheduler": 1, "executor": 1}
    log_dir = tmp_path / "logs"
    cluster, engine = await start_cluster(settings, log_dir, counts=counts, env=env)
    urls = [f"http://127.0.0.1:{p.port}/metrics" for p in cluster.procs]
    server = Server(engine.url, log_dir, urls)
    seen = Seen()
    try:
        for account in ("acme", "globex"):
            event_id, run_ids = await _account_workload(server, keys, account, seen)
            await _reads_and_bad_requests(server, keys, account, event_id, run_ids[0], seen)
        await _dashboard(server, keys, "globex", event_id, run_ids, seen)
        await _exported(otlp, run_ids)
    finally:
        await engine.stop()
        drop_keyspace(name)
    await _check_nothing_leaks(server, keys, otlp, seen)
