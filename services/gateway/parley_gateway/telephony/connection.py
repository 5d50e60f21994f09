"""A provider's media stream seen by the ``SessionBridge`` as a client connection.

The bridge talks to it as to any client: it receives the caller's audio as PCM16 16 kHz
frames (G.711 decoded, echo-gated, resampled), keypad input as typed messages, and sends
audio out through a ``MarkedPlayout`` (G.711, a mark after every chunk). Of the native
events only ``interrupted`` means something on a phone: it becomes ``clear``. The rest
(transcripts, metrics, errors) has nobody to show it to and is dropped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Literal

from fastapi import WebSocket, WebSocketDisconnect
from pydantic import ValidationError

from parley_common.audio.g711 import decode_g711, encode_g711
from parley_common.audio.resampling import StreamResampler
from parley_common.bus.audio import INPUT_SAMPLE_RATE
from parley_common.contracts.ws import (
    ClientMessage,
    InterruptedEvent,
    S2Event,
    ServerEvent,
    TextMessage,
)
from parley_gateway.realtime.audio_in import AudioInPublisher, AudioInput, PcmInput
from parley_gateway.realtime.client import ClientConnection
from parley_gateway.realtime.playout import AudioOutput, TurnCallback
from parley_gateway.telephony.echo import EchoGate
from parley_gateway.telephony.events import (
    PHONE_RATE,
    CallerAudio,
    Dialect,
    Keypress,
    MarkPlayed,
    StreamStarted,
    StreamStopped,
)
from parley_gateway.telephony.marked_playout import MarkedPlayout
from parley_gateway.telephony.settings import TelephonySettings

log = logging.getLogger(__name__)

# Keys pressed are one message: ended by "#", or by this long without another key.
KEYPAD_PAUSE_S = 2.0


class Keypad:
    """The caller's DTMF digits, gathered into one entry."""

    def __init__(self, pause_s: float = KEYPAD_PAUSE_S) -> None:
        self.pause_s = pause_s
        self._digits = ""
        self._last = 0.0

    def press(self, digit: str, now: float | None = None) -> str | None:
        """Add a key; returns the whole entry when ``#`` ends it."""
        self._last = time.monotonic() if now is None else now
        if digit == "#":
            entry, self._digits = self._digits, ""
            return entry or None
        self._digits += digit
        return None

    def due(self, now: float | None = None) -> str | None:
        """The entry, once the caller has stopped pressing keys for ``pause_s``."""
        now = time.monotonic() if now is None else now
        if not self._digits or now - self._last < self.pause_s:
            return None
        entry, self._digits = self._digits, ""
        return entry


def keypad_message(entry: str) -> TextMessage:
    """Keys pressed, as the typed user message the assistant reads."""
    return TextMessage.model_validate({"type": "text_message", "text": f"(keypad: {entry})"})


class PhoneConnection(ClientConnection):
    """One call's media stream, after its ``start``, as a ``ClientConnection``."""

    def __init__(
        self,
        websocket: WebSocket,
        on_activity: Callable[[], None],
        dialect: Dialect,
        started: StreamStarted,
        settings: TelephonySettings,
    ) -> None:
        super().__init__(websocket, on_activity)
        self.dialect = dialect
        self.stream_id = started.stream_id
        self.law = started.law
        self.lead_ms = settings.audio_lead_ms
        self.echo = EchoGate(settings.echo_margin_db) if settings.echo_suppression else None
        self.keypad = Keypad()
        self.playout: MarkedPlayout | None = None
        self._upsample = StreamResampler(PHONE_RATE, INPUT_SAMPLE_RATE)

    def output(
        self, on_start: TurnCallback, on_first_frame: TurnCallback, on_end: TurnCallback
    ) -> MarkedPlayout:
        """The call's audio output, with the bridge's playout callbacks."""
        played = self.echo.played if self.echo is not None else None
        self.playout = MarkedPlayout(
            self.audio, self._mark, on_start, on_first_frame, on_end, self.lead_ms, played
        )
        return self.playout

    async def receive(self) -> bytes | ClientMessage | ValidationError:
        """The caller's next audio frame (PCM16 16 kHz) or keypad entry. Marks are taken
        on the way; ``stop`` or a closed socket raise WebSocketDisconnect."""
        while True:
            # Media arrives every 20 ms, so a finished keypad entry waits at most that.
            if (entry := self.keypad.due()) is not None:
                return keypad_message(entry)
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(message.get("code", 1000))
            text = message.get("text")
            if text is None:
                continue  # neither provider sends binary frames
            try:
                event = self.dialect.parse(text)
            except ValueError as exc:
                log.warning("phone frame dropped", extra={"error": str(exc)})
                continue
            match event:
                case CallerAudio(audio=audio):
                    self._on_activity()
                    return self._caller_pcm(audio)
                case MarkPlayed(name=name) if self.playout is not None:
                    self.playout.marked(name)
                case Keypress(digit=digit):
                    self._on_activity()
                    if (entry := self.keypad.press(digit)) is not None:
                        return keypad_message(entry)
                case StreamStopped():
                    raise WebSocketDisconnect(1000)

    def _caller_pcm(self, audio: bytes) -> bytes:
        pcm = decode_g711(audio, self.law)
        if self.echo is not None:
            pcm = self.echo.filter(pcm)
        return self._upsample.process(pcm)

    async def event(self, event: ServerEvent) -> None:
        """``interrupted`` clears what the provider has not played yet; the rest is for
        screens, and a phone has none."""
        if isinstance(event, InterruptedEvent):
            await self._text(self.dialect.clear(self.stream_id))

    async def s2(self, event: S2Event) -> None:
        """S2's events are for S2's clients only."""

    async def audio(self, frame: bytes) -> None:
        """Play PCM16 8 kHz audio to the caller."""
        await self._text(self.dialect.media(self.stream_id, encode_g711(frame, self.law)))

    async def error(
        self,
        code: str,
        message: str,
        *,
        processing: bool = False,
        severity: Literal["error", "warning"] = "error",
        provider: str | None = None,
    ) -> None:
        """Nobody on the call can read an error: it is logged."""
        log.warning(
            "phone call error",
            extra={"code": code, "severity": severity, "provider": provider},
        )

    async def _mark(self, name: str) -> None:
        await self._text(self.dialect.mark(self.stream_id, name))

    async def _text(self, text: str) -> None:
        await self._send({"type": "websocket.send", "text": text})


class PhoneTransport:
    """The bridge's view of a call (a ``BridgeTransport``): the connection, its caller
    audio as PCM frames and its marked output."""

    def __init__(self, connection: PhoneConnection, max_frame_bytes: int) -> None:
        self.connection = connection
        self.max_frame_bytes = max_frame_bytes

    @property
    def client(self) -> ClientConnection:
        """The call's connection."""
        return self.connection

    def parts(
        self,
        publisher: AudioInPublisher,
        on_start: TurnCallback,
        on_first_frame: TurnCallback,
        on_end: TurnCallback,
    ) -> tuple[AudioInput, AudioOutput]:
        """Caller audio published as it arrives; the assistant's through marks."""
        audio_in = PcmInput(publisher, self.connection, self.max_frame_bytes)
        return audio_in, self.connection.output(on_start, on_first_frame, on_end)
