"""Reading Parley's JSON log lines: a human rendering, and the error a line reports.

Services log one JSON object per line (``parley_common.observability.logging``); a process
that dies before its logging is configured prints a plain Python traceback instead. Both
kinds are handled here, so that the launcher and ``parley logs`` agree on what a line says.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from parley_launcher.console import Palette

# Fields every line has (or that are shown in their own place); the rest are shown as k=v,
# except uvicorn's copy of the message with terminal colours in it.
_FRAMED = ("ts", "level", "service", "logger", "msg", "exc", "color_message")
_ERROR_LEVELS = ("error", "critical")
# The last line of a Python traceback, e.g. "ModuleNotFoundError: No module named 'x'".
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)(: .*)?$")
_LEVEL_TONE = {"debug": "dim", "info": "", "warning": "yellow", "error": "red", "critical": "red"}


def parse(line: str) -> dict[str, Any] | None:
    """The JSON object of a log line, or None for a line that is not one."""
    text = line.strip()
    if not text.startswith("{"):
        return None
    try:
        entry = json.loads(text)
    except ValueError:
        return None
    return entry if isinstance(entry, dict) else None


def _clock(ts: object) -> str:
    # Shown in local time: the person reading it compares it with their own clock.
    try:
        return datetime.fromisoformat(str(ts)).astimezone().strftime("%H:%M:%S.%f")[:-3]
    except ValueError:
        return str(ts)


def _value(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return json.dumps(text) if (" " in text or not text) else text


def render(line: str, palette: Palette) -> str:
    """One log line as a person reads it: time, service, level, message, extra fields, and
    the traceback (if any) indented below. A line that is not JSON is returned unchanged."""
    entry = parse(line)
    if entry is None:
        return line.rstrip("\n")
    level = str(entry.get("level", "info"))
    fields = " ".join(
        f"{key}={_value(value)}" for key, value in entry.items() if key not in _FRAMED
    )
    head = " ".join(
        part
        for part in (
            palette.paint(_clock(entry.get("ts", "")), "dim"),
            f"{entry.get('service', '?'):<9}",
            palette.paint(f"{level.upper():<7}", _LEVEL_TONE.get(level, "")),
            str(entry.get("msg", "")),
            palette.paint(fields, "dim") if fields else "",
        )
        if part
    )
    exc = entry.get("exc")
    if exc:
        head += "\n" + "\n".join(f"    {row}" for row in str(exc).splitlines())
    return head


def error_summary(line: str) -> str | None:
    """What went wrong, in one line, if this log line reports an error: an error-level JSON
    entry (its message, error field and exception), or the last line of a plain traceback."""
    entry = parse(line)
    if entry is None:
        text = line.strip()
        return text if _EXCEPTION_LINE.match(text) or text.startswith("Fatal Python") else None
    if entry.get("level") not in _ERROR_LEVELS:
        return None
    parts = [str(entry.get("msg", ""))]
    if "error" in entry:
        parts.append(str(entry["error"]))
    exc = str(entry.get("exc", "")).strip()
    if exc:
        parts.append(exc.splitlines()[-1])
    return ": ".join(part for part in parts if part)


def timestamp(line: str) -> str | None:
    """The ``ts`` of a JSON log line (ISO 8601, UTC, so it sorts as text)."""
    entry = parse(line)
    return str(entry["ts"]) if entry is not None and "ts" in entry else None
