"""The bridge's native events, told as OpenAI's: what the conversation makes of each."""

from __future__ import annotations

import base64
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from parley_common.contracts.bus import Role
from parley_common.contracts.ws import ServerEvent
from parley_gateway.realtime.openai import wire
from parley_gateway.realtime.openai.conversation import Conversation

log = logging.getLogger(__name__)

Send = Callable[[wire.ServerEvent], Awaitable[None]]


class NativeEvents:
    """Translates one bridge's events for the conversation of its client."""

    def __init__(self, conversation: Conversation, send: Send) -> None:
        self.conversation = conversation
        self.send = send
        self._audio_turn: int | None = None  # the turn of the last audio_start
        c = conversation
        self._handlers: dict[str, Callable[[Any], Awaitable[None]]] = {
            "speech_started": lambda e: c.speech_started(e.data.at_ms),
            "speech_stopped": lambda e: c.speech_stopped(e.data.at_ms),
            "transcript": self._transcript,
            "response": self._response,
            "audio_start": self._audio_start,
            "audio_end": lambda e: c.audio_end(e.data.turn_id),
            "interrupted": lambda e: c.interrupted(e.data.turn_id),
        }

    async def event(self, event: ServerEvent) -> None:
        """A native event (those with no OpenAI counterpart, like metrics, are dropped)."""
        handler = self._handlers.get(event.type)
        if handler is not None:
            await handler(event)

    async def audio(self, data: bytes) -> None:
        """Audio of the turn of the last ``audio_start``, already in the output format."""
        await self.conversation.audio_delta(self._audio_turn, base64.b64encode(data).decode())

    async def error(
        self, code: str, message: str, processing: bool, severity: Literal["error", "warning"]
    ) -> None:
        """A native error: OpenAI's ``error`` event; a failed LLM or TTS fails the response.
        Warnings (news about a turn that goes on) have no OpenAI event and are logged."""
        if severity == "warning":
            log.info("warning not told to the realtime client", extra={"code": code})
            return
        kind = "server_error" if processing else "invalid_request_error"
        await self.send(
            wire.ErrorEvent(error=wire.ErrorBody(type=kind, code=code, message=message))
        )
        if processing and code.startswith(("llm_", "tts_")):
            await self.conversation.failed(code, message)

    async def _transcript(self, event: Any) -> None:
        data = event.data
        if data.role is Role.USER and data.turn_id is None:  # typed text is an item already
            await self.conversation.user_transcript(data.text, data.is_final)

    async def _response(self, event: Any) -> None:
        data = event.data
        if data.done:
            await self.conversation.reply_done(data.turn_id, data.text)
        elif data.text:
            await self.conversation.reply_delta(data.turn_id, data.text)

    async def _audio_start(self, event: Any) -> None:
        self._audio_turn = event.data.turn_id
