"""One client connection bridged to the bus: audio and intents up, events and audio down."""

from __future__ import annotations

import logging
import time

from fastapi import WebSocket, WebSocketDisconnect
from pydantic import ValidationError

from parley_common.bus import MessageMeta
from parley_common.contracts import subjects
from parley_common.contracts.bus import PushToTalk, TextInput
from parley_common.contracts.subjects import SessionChannel
from parley_common.contracts.ws import (
    AudioStartMsg,
    AudioStopMsg,
    ErrorData,
    InterruptMsg,
    Ping,
    PongData,
    ReadyData,
    ServerEvent,
    TextMessage,
    client_message_adapter,
)
from parley_common.observability.logging import session_context
from parley_gateway.routes.deps import Gateway
from parley_gateway.sessions.store import SessionRecord

log = logging.getLogger(__name__)


class SessionBridge:
    """Relays one WebSocket to the session's subjects until either side ends."""

    def __init__(self, gateway: Gateway, record: SessionRecord, websocket: WebSocket) -> None:
        self.gateway = gateway
        self.record = record
        self.ws = websocket
        self.sid = record.id
        self._audio_seq = 0
        self._audio_subject = subjects.session(self.sid, SessionChannel.AUDIO_IN)
        self._control_subject = subjects.session(self.sid, SessionChannel.CONTROL)

    async def run(self) -> None:
        """Serve the connection until the client leaves."""
        with session_context(self.sid):
            await self._send(
                ServerEvent(
                    type="ready",
                    data=ReadyData(
                        session_id=self.sid,
                        config=self.record.config,
                        output_sample_rate=self.record.config.output_sample_rate,
                    ),
                )
            )
            try:
                await self._receive_forever()
            except WebSocketDisconnect:
                log.info("client disconnected")

    async def _receive_forever(self) -> None:
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(message.get("code", 1000))
            if (data := message.get("bytes")) is not None:
                await self._on_audio(data)
            elif (text := message.get("text")) is not None:
                await self._on_text(text)

    async def _on_audio(self, pcm: bytes) -> None:
        self._audio_seq += 1
        meta = MessageMeta(session_id=self.sid, seq=self._audio_seq)
        await self.gateway.bus.publish(self._audio_subject, pcm, meta)

    async def _on_text(self, text: str) -> None:
        try:
            msg = client_message_adapter.validate_json(text)
        except ValidationError as exc:
            # A bad message is answered, not fatal: the call goes on.
            first = exc.errors()[0] if exc.errors() else {"msg": "invalid message"}
            await self._error("invalid_message", f"{first.get('msg')} at {first.get('loc')}")
            return
        meta = MessageMeta(session_id=self.sid)
        if isinstance(msg, Ping):
            await self._send(
                ServerEvent(type="pong", data=PongData(ts=msg.ts, server_ts=time.time()))
            )
            # S2 clients look for a flat {"type": "pong"}; the native event carries it too.
        elif isinstance(msg, TextMessage):
            await self.gateway.bus.publish(self._control_subject, TextInput(text=msg.text), meta)
        elif isinstance(msg, AudioStartMsg):
            await self.gateway.bus.publish(self._control_subject, PushToTalk(action="start"), meta)
        elif isinstance(msg, AudioStopMsg):
            await self.gateway.bus.publish(self._control_subject, PushToTalk(action="stop"), meta)
        elif isinstance(msg, InterruptMsg):
            pass  # handled by the turn tracker once replies flow (conversation issue)

    async def _error(self, code: str, message: str) -> None:
        await self._send(ServerEvent(type="error", data=ErrorData(code=code, message=message)))

    async def _send(self, event: ServerEvent) -> None:
        await self.ws.send_text(event.model_dump_json())
