"""A function stored with a URL no request can go to (synced before sync refused such URLs)
fails its run at once with the reason: no retries, no dead letter, no run left open."""

from __future__ import annotations

from typing import Any

import inngest

from headrace.testing.dev import EngineHandle, eventually
from headrace.testing.sdk_app import ServedApp, make_client


async def _sync_app(dev: EngineHandle, app_id: str) -> None:
    """Sync an app of one function, `<app_id>-fn`, triggered by `t/<app_id>`; the app stops
    serving once synced."""
    client = make_client(dev.url, app_id)

    @client.create_function(fn_id="fn", trigger=inngest.TriggerEvent(event=f"t/{app_id}"))
    async def fn(ctx: inngest.Context) -> Any:
        return "never"

    with ServedApp(client, [fn]) as app:
        await dev.sync(app.url, app_id)


async def test_a_run_of_a_function_at_an_uncallable_url_fails_at_once(dev: EngineHandle) -> None:
    await _sync_app(dev, "uncallable-app")
    stored = await dev.stores.get_function(dev.account, "uncallable-app-fn")
    assert stored is not None
    stored.config["steps"]["step"]["runtime"]["url"] = "http://127.0.0.1:99999/api/inngest"
    await dev.stores.put_function(stored)
    # The runner starts runs from the functions it loaded, and loads them again when a sync
    # of the account says they changed: a sync of another app makes it read this one as stored.
    await _sync_app(dev, "uncallable-other")

    [event_id] = await dev.send({"name": "t/uncallable-app"})
    run = await dev.finished(await dev.run_of_event(event_id))
    assert run.status == "failed"
    assert "cannot be called" in run.output["message"]
    assert "port 99999, out of the range 1 to 65535" in run.output["message"]

    async def ended_history() -> list[str] | None:
        # The history follows the run's write (the outbox writes it next).
        kinds = [h.kind for h in await dev.history(run.run_id)]
        return kinds if kinds[-1:] == ["run.failed"] else None

    kinds = await eventually(ended_history, what="the run's history to end")
    assert "run.errored" not in kinds and "step.errored" not in kinds
