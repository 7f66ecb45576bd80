"""Take the dashboard screenshots in docs/ (runs list and a run's timeline).

Starts the example app (examples/demo/app.py) and `headrace dev` on free ports with a fresh state
directory, sends the tour's events (examples/demo/tour.py) plus a payment that will sleep for an
hour (so the list shows a live run), then photographs the pages in headless Chromium:

    .venv/bin/python -m docs.screenshots      (from the repository root)

Needs Debian's chromium (/usr/bin/chromium) and the `test` extra (Playwright).
"""

from __future__ import annotations

import asyncio
import datetime
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
from examples.demo.tour import tour
from playwright.async_api import async_playwright

from headrace.testing.sdk_app import free_port

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
VIEWPORT = {"width": 1280, "height": 860}


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT
    )


async def _photograph(url: str) -> None:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path="/usr/bin/chromium")
        page = await browser.new_page(viewport=VIEWPORT)
        await page.goto(f"{url}/dashboard/runs")
        await page.wait_for_selector("tr.run-row")
        await page.screenshot(path=DOCS / "dashboard-runs.png")

        await page.goto(f"{url}/dashboard/runs?fn=headrace-demo-payment-flow&status=completed")
        await page.locator("tr.run-row a").first.click()
        await page.locator("details.step[data-step='wait-for-approval'] summary").click()
        await page.screenshot(path=DOCS / "dashboard-timeline.png", full_page=True)
        await browser.close()


async def main() -> None:
    app_port, port = free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "HEADRACE_URL": url}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        processes = [
            _spawn(
                [sys.executable, "-m", "examples.demo.app", "--port", str(app_port)],
                env,
                work / "app.log",
            ),
            _spawn(
                [
                    *(sys.executable, "-m", "headrace", "dev", "--port", str(port)),
                    *("--state-dir", str(work / "state"), "--poll-interval", "2"),
                    *("-u", f"http://127.0.0.1:{app_port}/api/inngest"),
                ],
                env,
                work / "dev.log",
            ),
        ]
        try:
            await tour(url, echo=False)
            later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)
            async with httpx.AsyncClient() as client:
                await client.post(
                    f"{url}/e/demo-key",
                    json={
                        "name": "payments/requested",
                        "data": {"payment_id": "pay-43", "charge_at": later.isoformat()},
                    },
                )
            await asyncio.sleep(1)
            await _photograph(url)
        finally:
            for process in processes:
                process.terminate()
                process.wait(timeout=30)
    print(f"wrote {DOCS / 'dashboard-runs.png'} and {DOCS / 'dashboard-timeline.png'}")


if __name__ == "__main__":
    asyncio.run(main())
