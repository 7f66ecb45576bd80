"""Jinja filters: times, durations and JSON as people read them."""

from __future__ import annotations

import datetime
import json
import re
from typing import Any

from markupsafe import Markup, escape

# Strings (keys when a colon follows), numbers, and the literals of pretty-printed JSON.
_TOKEN = re.compile(
    r'(?P<string>"(?:\\.|[^"\\])*")(?P<colon>\s*:)?'
    r"|(?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)"
    r"|(?P<literal>\btrue\b|\bfalse\b|\bnull\b)"
)


def time_of(ms: int | None) -> str:
    if not ms:
        return "—"
    moment = datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{ms % 1000:03d}"


def clock_of(ms: int | None) -> str:
    if not ms:
        return "—"
    moment = datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC)
    return moment.strftime("%H:%M:%S")


def duration(ms: int | None) -> str:
    if ms is None:
        return "—"
    if ms < 1000:
        return f"{ms} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} m {secs} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} m"
    return f"{hours // 24} d {hours % 24} h"


def pretty_json(value: Any) -> Markup:
    """Indented JSON with its tokens in spans for colour; escaped, so safe to show."""
    text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    out: list[str] = []
    last = 0
    for match in _TOKEN.finditer(text):
        out.append(str(escape(text[last : match.start()])))
        if match.group("string") is not None:
            css = "j-key" if match.group("colon") else "j-str"
            out.append(f'<span class="{css}">{escape(match.group("string"))}</span>')
            out.append(str(escape(match.group("colon") or "")))
        elif match.group("number") is not None:
            out.append(f'<span class="j-num">{match.group("number")}</span>')
        else:
            out.append(f'<span class="j-lit">{match.group("literal")}</span>')
        last = match.end()
    out.append(str(escape(text[last:])))
    return Markup("".join(out))


FILTERS = {"time": time_of, "clock": clock_of, "duration": duration, "json": pretty_json}
