"""Structured JSON logs: one object per line, with the session id whenever one is in scope."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

session_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "parley_session_id", default=None
)

# Credentials that travel in URLs (a WebSocket's ``?token=``) reach log lines through
# servers' own messages (uvicorn logs each WebSocket's path and query): masked in every line.
_CREDENTIAL_IN_URL = re.compile(r"((?:access_)?token|api_key|key|secret)=[^&\s\"']+", re.I)


def redact(text: str) -> str:
    """``text`` with the values of credential query parameters replaced by ``***``."""
    return _CREDENTIAL_IN_URL.sub(r"\1=***", text)


# Attributes every LogRecord has; anything else was passed in ``extra`` and is logged as a field.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """Formats a record as a single JSON object."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        session_id = getattr(record, "session_id", None) or session_id_var.get()
        if session_id:
            entry["session_id"] = session_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in entry:
                entry[key] = redact(value) if isinstance(value, str) else value
        if record.exc_info:
            entry["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)


def configure_logging(service: str, level: str = "INFO") -> None:
    """Send every logger's records to stderr as JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("uvicorn.access", "nats"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


@contextmanager
def session_context(session_id: str) -> Iterator[None]:
    """Tag every log line inside the block with ``session_id``."""
    token = session_id_var.set(session_id)
    try:
        yield
    finally:
        session_id_var.reset(token)
