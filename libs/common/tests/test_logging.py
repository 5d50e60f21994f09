"""JSON log lines never carry a credential that came in a URL."""

from __future__ import annotations

import json
import logging

from parley_common.observability.logging import JsonFormatter


def _line(msg: str, *args: object, **extra: object) -> dict[str, object]:
    record = logging.LogRecord("uvicorn.error", logging.INFO, "", 0, msg, args, None)
    record.__dict__.update(extra)
    parsed: dict[str, object] = json.loads(JsonFormatter("gateway").format(record))
    return parsed


def test_a_websocket_token_in_a_server_message_is_masked() -> None:
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl"
    line = _line('%s - "WebSocket %s" [accepted]', "127.0.0.1:5", f"/ws/voice/x?token={token}")
    assert token not in json.dumps(line)
    assert "/ws/voice/x?token=***" in str(line["msg"])


def test_credentials_in_extra_fields_are_masked_and_the_rest_kept() -> None:
    line = _line("calling", url="https://api.example/v1?api_key=sk-123&model=m&key=k9")
    assert line["url"] == "https://api.example/v1?api_key=***&model=m&key=***"
    assert _line("turn %d took %s ms", 3, "12")["msg"] == "turn 3 took 12 ms"
