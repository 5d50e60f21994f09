"""The client side of a session's WebSocket: what Parley sends (typed native events, S2's
flat events, audio frames), each send bounded in time, and what it receives."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import WebSocket, WebSocketDisconnect
from pydantic import ValidationError
from starlette.websockets import WebSocketState

from parley_common.contracts.ws import (
    CLOSE_GOING_AWAY,
    ClientMessage,
    ErrorData,
    ErrorEvent,
    Ping,
    S2Event,
    ServerEvent,
    client_message_adapter,
)

log = logging.getLogger(__name__)

SEND_TIMEOUT_S = 5.0


def _nothing() -> None:
    return None


class ClientConnection:
    """One WebSocket seen as Parley's protocol. Sends are serialised; a client that stops
    reading for ``SEND_TIMEOUT_S`` is closed rather than allowed to stall the session.

    ``on_activity`` is called when the client shows someone is using the session: when it
    connects, and for every audio frame and every valid message except a keepalive ping
    (a tab left open does not keep a session from idling out). It must not block.
    """

    def __init__(self, websocket: WebSocket, on_activity: Callable[[], None] | None = None) -> None:
        self.ws = websocket
        self._send_lock = asyncio.Lock()
        self._on_activity = on_activity or _nothing
        self._on_activity()

    async def receive(self) -> bytes | ClientMessage | ValidationError:
        """The next client message: audio bytes, a parsed control message, or why a text
        message was invalid. Raises WebSocketDisconnect when the client leaves."""
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(message.get("code", 1000))
            if (data := message.get("bytes")) is not None:
                self._on_activity()
                return bytes(data)
            if (text := message.get("text")) is not None:
                try:
                    parsed = client_message_adapter.validate_json(text)
                except ValidationError as exc:
                    return exc
                if not isinstance(parsed, Ping):
                    self._on_activity()
                return parsed

    async def event(self, event: ServerEvent) -> None:
        """Send one native event."""
        await self._send({"type": "websocket.send", "text": event.model_dump_json()})

    async def s2(self, event: S2Event) -> None:
        """Send one of S2's flat events."""
        await self._send({"type": "websocket.send", "text": json.dumps(event.dump())})

    async def audio(self, frame: bytes) -> None:
        """Send a frame of the assistant's audio."""
        await self._send({"type": "websocket.send", "bytes": frame})

    async def error(
        self,
        code: str,
        message: str,
        *,
        processing: bool = False,
        severity: Literal["error", "warning"] = "error",
        provider: str | None = None,
    ) -> None:
        """An ``error`` event; for failed voice processing also S2's
        ``voice_processing_error`` (not for bad input, nor for warnings)."""
        data = ErrorData(code=code, message=message, severity=severity, provider=provider)
        await self.event(ErrorEvent(data=data))
        if processing and severity == "error":
            await self.s2(
                S2Event(type="voice_processing_error", error=message, timestamp=datetime.now(UTC))
            )

    async def _send(self, message: dict[str, Any]) -> None:
        # Bus events that race the client's departure are dropped: nobody is left to tell.
        async with self._send_lock:
            if self.ws.application_state is not WebSocketState.CONNECTED:
                return
            try:
                # A timeout scope rather than wait_for, which in 3.11 wraps every send (one
                # per audio frame) in a task of its own.
                async with asyncio.timeout(SEND_TIMEOUT_S):
                    await self.ws.send(message)
            except (WebSocketDisconnect, RuntimeError, OSError):
                log.debug("send after the client left")
            except TimeoutError:
                log.warning("client not reading; closing")
                with contextlib.suppress(Exception):
                    await self.ws.close(CLOSE_GOING_AWAY, "client too slow")


def describe(exc: ValidationError) -> str:
    """A short reason why a client message was refused (never its content)."""
    first = exc.errors()[0] if exc.errors() else {"msg": "invalid message"}
    return f"{first.get('msg')} at {first.get('loc')}"
