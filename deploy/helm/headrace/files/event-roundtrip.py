"""`helm test`: send an event to the ingest's Event API and read it back from the REST API.

Standard library only, so it runs on the headrace image's Python without its packages. Reads:
INGEST_URL, HEADRACE_EVENT_KEYS (KEY=ACCOUNT,...; the first key is used), HEADRACE_SIGNING_KEY
and HEADRACE_SIGNING_KEYS (to read as that key's account), TIMEOUT_SECONDS.
"""

import json
import os
import sys
import time
import urllib.error
import urllib.request


def pairs(value):
    return dict(item.strip().split("=", 1) for item in value.split(",") if "=" in item)


def call(url, body=None, headers=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers=headers or {})
    if data is not None:
        request.add_header("content-type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def main():
    base = os.environ["INGEST_URL"].rstrip("/")
    event_keys = pairs(os.environ.get("HEADRACE_EVENT_KEYS", ""))
    if not event_keys:
        sys.exit("no event key: set secrets.eventKeys so the Event API accepts events")
    key, account = next(iter(event_keys.items()))
    signing = pairs(os.environ.get("HEADRACE_SIGNING_KEYS", "")).get(account) or os.environ.get(
        "HEADRACE_SIGNING_KEY"
    )
    auth = {"authorization": f"Bearer {signing}"} if signing else {}
    marker = f"{time.time_ns()}"
    try:
        sent = call(f"{base}/e/{key}", {"name": "headrace/helm.test", "data": {"marker": marker}})
    except urllib.error.HTTPError as error:
        sys.exit(f"sending an event to {base}: HTTP {error.code} {error.read()!r}")
    event_id = sent["ids"][0]
    print(f"sent event {event_id} to {base}")
    deadline = time.monotonic() + float(os.environ.get("TIMEOUT_SECONDS", "60"))
    while True:
        try:
            event = call(f"{base}/v1/events/{event_id}", headers=auth)["data"]
            break
        except urllib.error.HTTPError as error:
            # 404 until the event is stored; anything else is an answer.
            if error.code != 404 or time.monotonic() > deadline:
                sys.exit(f"reading event {event_id} back: HTTP {error.code} {error.read()!r}")
        time.sleep(1)
    if event.get("name") != "headrace/helm.test" or event.get("data", {}).get("marker") != marker:
        sys.exit(f"event {event_id} read back differs: {event}")
    print(f"read event {event_id} back")


main()
