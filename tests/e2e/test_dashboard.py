"""The dashboard in headless Chromium (Debian's `chromium`, driven by Playwright), in both modes:
find a finished run, open its timeline, read a step's output, cancel a sleeping run, rerun and
replay a failed one. Distributed mode's dashboard asks for a token; the tests log in with it."""

from __future__ import annotations

import collections
import datetime
from collections.abc import AsyncIterator

import httpx
import inngest
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from headrace.testing.cluster import TEST_DASHBOARD_TOKEN
from headrace.testing.dev import DevHandle, eventually
from headrace.testing.sdk_app import ServedApp, make_client

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
# As long as `eventually` waits for a run in the other e2e tests.
SLOW_MS = 20_000


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM)
        yield launched
        await launched.close()


@pytest.fixture
async def page(browser: Browser, dev: DevHandle) -> AsyncIterator[Page]:
    context = await browser.new_context(base_url=dev.url)
    opened = await context.new_page()
    if dev.mode == "distributed":
        await opened.goto("/dashboard/runs")
        await expect(opened.locator("h1")).to_have_text("Log in")
        await opened.fill("input[name=token]", TEST_DASHBOARD_TOKEN)
        await opened.click("button.primary")
        await expect(opened.locator("h1")).to_have_text("Runs")
    yield opened
    await context.close()


async def test_find_a_finished_run_and_read_a_step_output(dev: DevHandle, page: Page) -> None:
    client = make_client(dev.url, "dash-read-app")

    @client.create_function(fn_id="greet", trigger=inngest.TriggerEvent(event="dash/greet"))
    async def greet(ctx: inngest.Context) -> str:
        async def hello() -> dict[str, str]:
            return {"greeting": f"hello {ctx.event.data['name']}"}

        said = await ctx.step.run("hello", hello)
        await ctx.step.run("shout", lambda: said["greeting"].upper())
        return "done"

    with ServedApp(client, [greet]) as app:
        await dev.sync(app.url, "dash-read-app")
        [event_id] = await dev.send({"name": "dash/greet", "data": {"name": "Ada"}})
        run = await dev.finished(await dev.run_of_event(event_id))

    await page.goto("/dashboard/runs?fn=dash-read-app-greet&status=completed")
    row = page.locator(f"tr.run-row[data-run='{run.run_id}']")
    await expect(row.locator(".status")).to_have_text("completed")
    await row.locator("a").click()

    await expect(page.locator("h1")).to_contain_text("dash-read-app-greet")
    steps = page.locator("details.step")
    await expect(steps).to_have_count(2)
    await expect(steps.nth(0)).to_have_attribute("data-step", "hello")
    await steps.nth(0).locator("summary").click()
    output = steps.nth(0).locator("pre.step-output")
    await expect(output).to_contain_text('"greeting": "hello Ada"')
    await expect(page.locator("#run-output")).to_have_text('"done"')


async def test_cancel_a_sleeping_run(dev: DevHandle, page: Page) -> None:
    client = make_client(dev.url, "dash-cancel-app")

    @client.create_function(fn_id="nap", trigger=inngest.TriggerEvent(event="dash/nap"))
    async def nap(ctx: inngest.Context) -> str:
        await ctx.step.sleep("long-nap", datetime.timedelta(hours=2))
        return "woke"

    with ServedApp(client, [nap]) as app:
        await dev.sync(app.url, "dash-cancel-app")
        [event_id] = await dev.send({"name": "dash/nap"})
        run_id = await dev.run_of_event(event_id)
        # The runner links the run to its event before the executor stores it.
        await eventually(lambda: dev.stores.get_run(run_id), what=f"run {run_id} stored")

        await page.goto(f"/dashboard/runs/{run_id}")
        sleep_row = page.locator("details.step[data-step='long-nap']")
        await expect(sleep_row.locator(".tag")).to_have_text("sleep", timeout=SLOW_MS)
        await page.click("button[data-action=cancel]")

        await expect(page.locator("h1 .status")).to_have_text("cancelled", timeout=SLOW_MS)
        run = await dev.finished(run_id)
    assert run.status == "cancelled"


async def test_rerun_and_replay_a_failed_run(dev: DevHandle, page: Page) -> None:
    calls: collections.Counter[str] = collections.Counter()
    client = make_client(dev.url, "dash-rerun-app")

    @client.create_function(
        fn_id="charge", retries=0, trigger=inngest.TriggerEvent(event="dash/charge")
    )
    async def charge(ctx: inngest.Context) -> str:
        async def reserve() -> str:
            calls["reserve"] += 1
            return "reserved"

        async def pay() -> str:
            calls["pay"] += 1
            if calls["pay"] == 1:
                raise RuntimeError("card declined")
            return "paid"

        await ctx.step.run("reserve", reserve)
        return await ctx.step.run("pay", pay)

    with ServedApp(client, [charge]) as app:
        await dev.sync(app.url, "dash-rerun-app")
        [event_id] = await dev.send({"name": "dash/charge"})
        original = await dev.finished(await dev.run_of_event(event_id))
        assert original.status == "failed"

        await page.goto(f"/dashboard/runs/{original.run_id}")
        await expect(page.locator("details.step[data-step='pay'] .dot")).to_have_class(
            "dot s-failed"
        )
        await page.click("button[data-action=replay]")
        await expect(page.locator(".meta")).to_contain_text(f"Replay of {original.run_id}")
        await expect(page.locator("h1 .status")).to_have_text("completed", timeout=SLOW_MS)
        await expect(page.locator("details.step[data-step='reserve'] .tag")).to_have_text(
            "memoized"
        )
        assert calls == {"reserve": 1, "pay": 2}

        await page.goto(f"/dashboard/runs/{original.run_id}")
        await page.click("button[data-action=rerun]")
        await expect(page.locator(".meta")).to_contain_text(f"Rerun of {original.run_id}")
        await expect(page.locator("h1 .status")).to_have_text("completed", timeout=SLOW_MS)
        assert calls == {"reserve": 2, "pay": 3}


async def test_the_dashboard_asks_for_the_token_in_distributed_mode(dev: DevHandle) -> None:
    async def get(path: str, **headers: str) -> httpx.Response:
        async with httpx.AsyncClient(base_url=dev.url) as client:
            return await client.get(path, headers=headers)

    anonymous = await get("/dashboard/runs")
    if dev.mode == "dev":
        assert anonymous.status_code == 200
        return
    assert anonymous.status_code == 303
    assert anonymous.headers["location"].startswith("/dashboard/login")
    assert (await get("/dashboard/runs", authorization="Bearer wrong")).status_code == 303
    allowed = await get("/dashboard/runs", authorization=f"Bearer {TEST_DASHBOARD_TOKEN}")
    assert allowed.status_code == 200
    assert "<h1>Runs</h1>" in allowed.text


async def test_invoke_a_function_and_send_a_test_event(dev: DevHandle, page: Page) -> None:
    client = make_client(dev.url, "dash-invoke-app")

    @client.create_function(fn_id="echo", trigger=inngest.TriggerEvent(event="dash/echo"))
    async def echo(ctx: inngest.Context) -> str:
        return f"echo {ctx.event.data.get('word')}"

    with ServedApp(client, [echo]) as app:
        await dev.sync(app.url, "dash-invoke-app")
        await page.goto("/dashboard/apps")
        invoke = page.locator("form[action$='/functions/dash-invoke-app-echo/invoke']")
        await invoke.locator("xpath=ancestor::details").locator("summary").click()
        await invoke.locator("textarea").fill('{"word": "invoked"}')
        await invoke.locator("button").click()
        await expect(page.locator(".flash.ok")).to_have_text("dash-invoke-app-echo invoked")
        await expect(page.locator("#event-runs .status")).to_have_text("completed", timeout=SLOW_MS)

        await page.goto("/dashboard/events")
        await page.locator(".compose summary").click()
        await page.fill(".compose input[name=name]", "dash/echo")
        await page.fill("textarea[name=data]", '{"word": "sent"}')
        await page.click(".compose button.primary")
        await expect(page.locator(".flash.ok")).to_have_text("event sent")
        await expect(page.locator("#event-runs .status")).to_have_text("completed", timeout=SLOW_MS)
        await page.locator("#event-runs a").click()
        await expect(page.locator("#run-output")).to_have_text('"echo sent"')

        await page.goto("/dashboard/events")
        await page.locator(".compose summary").click()
        await page.fill(".compose input[name=name]", "dash/echo")
        await page.fill("textarea[name=data]", "[1, 2]")
        await page.click(".compose button.primary")
        await expect(page.locator(".flash.bad")).to_have_text(
            "the event data must be a JSON object"
        )
