"""One client connection bridged to the bus: audio and intents up, events and audio down.

The gateway is the one place that knows what the user has actually heard, so it decides
barge-in (speech while the assistant is audible), tells everyone to cancel the turn, and
reports how much of the answer reached the user.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect
from nats.aio.subscription import Subscription
from pydantic import ValidationError
from starlette.websockets import WebSocketState

from parley_common.bus import MessageMeta, Received
from parley_common.bus.headers import AUDIO_END, AUDIO_RATE, PUSH_TO_TALK, TEXT_END, TEXT_START
from parley_common.contracts import subjects
from parley_common.contracts.bus import (
    Heard,
    Interrupt,
    InterruptReason,
    ReplyDelta,
    ReplyDone,
    Role,
    ServiceError,
    SpeechStarted,
    TextInput,
    TurnLatency,
    UserText,
    interrupt_adapter,
    reply_adapter,
    speech_adapter,
    status_adapter,
    transcript_adapter,
)
from parley_common.contracts.events import LatencyRecorded
from parley_common.contracts.subjects import SessionChannel
from parley_common.contracts.ws import (
    CLOSE_GOING_AWAY,
    AudioStartData,
    AudioStartMsg,
    AudioStopMsg,
    ErrorData,
    InterruptedData,
    InterruptMsg,
    MetricsData,
    Ping,
    PongData,
    ReadyData,
    ResponseData,
    S2Event,
    ServerEvent,
    SpeechData,
    TextMessage,
    TranscriptData,
    TurnData,
    client_message_adapter,
)
from parley_common.observability.logging import session_context
from parley_common.observability.metrics import latency_histogram
from parley_gateway.realtime.audio_clock import AudioClock
from parley_gateway.realtime.playout import Playout, TurnAudio
from parley_gateway.routes.deps import Gateway
from parley_gateway.sessions.store import SessionRecord

log = logging.getLogger(__name__)

SEND_TIMEOUT_S = 5.0

VOICE_TO_VOICE_SECONDS = latency_histogram(
    "parley_voice_to_voice_seconds", "End of user speech to first answer audio sent"
)
INTERRUPT_SECONDS = latency_histogram(
    "parley_interrupt_seconds", "User speech onset to the old turn's audio stopped"
)


class SessionBridge:
    """Relays one WebSocket to the session's subjects until either side ends."""

    def __init__(self, gateway: Gateway, record: SessionRecord, websocket: WebSocket) -> None:
        self.gateway = gateway
        self.bus = gateway.bus
        self.record = record
        self.config = record.config
        self.ws = websocket
        self.sid = record.id
        self.clock = AudioClock()
        self.playout = Playout(
            self._send_audio,
            self._audio_started,
            self._first_audio_sent,
            self._audio_ended,
            lead_ms=gateway.settings.audio_lead_ms,
        )
        self._send_lock = asyncio.Lock()
        self._audio_seq = 0
        self._seq = 0
        self._audio_subject = subjects.session(self.sid, SessionChannel.AUDIO_IN)
        # The assistant's current turn: from its first message until its audio has played.
        self._turn: int | None = None
        self._reply_text: dict[int, str] = {}
        self._interrupted: set[int] = set()
        self._speech_onset: float | None = None
        self._speech_end: float | None = None
        self._turn_speech_end: dict[int, float] = {}
        self._barge_in: asyncio.Task[None] | None = None
        self._latency: dict[int, dict[str, float]] = {}
        self._reports: asyncio.Queue[tuple[int, dict[str, float]]] = asyncio.Queue()

    def _subject(self, channel: SessionChannel) -> str:
        return subjects.session(self.sid, channel)

    def _meta(self, turn_id: int = 0) -> MessageMeta:
        self._seq += 1
        return MessageMeta(session_id=self.sid, turn_id=turn_id, seq=self._seq)

    async def run(self) -> None:
        """Serve the connection until the client leaves."""
        with session_context(self.sid):
            subs = await self._subscribe()
            await self._event(
                "ready",
                ReadyData(
                    session_id=self.sid,
                    config=self.config,
                    output_sample_rate=self.config.output_sample_rate,
                ),
            )
            try:
                async with asyncio.TaskGroup() as tg:
                    playout = tg.create_task(self.playout.run())
                    reporter = tg.create_task(self._report_forever())
                    try:
                        await self._receive_forever()
                    finally:
                        playout.cancel()
                        reporter.cancel()
                        if self._barge_in is not None:
                            self._barge_in.cancel()
            except* WebSocketDisconnect:
                log.info("client disconnected")
            finally:
                for sub in subs:
                    with contextlib.suppress(Exception):
                        await sub.unsubscribe()

    async def _subscribe(self) -> list[Subscription]:
        handlers = {
            SessionChannel.SPEECH: self._on_speech,
            SessionChannel.TRANSCRIPT: self._on_transcript,
            SessionChannel.REPLY: self._on_reply,
            SessionChannel.AUDIO_OUT: self._on_audio_out,
            SessionChannel.INTERRUPT: self._on_interrupt,
            SessionChannel.STATUS: self._on_status,
        }
        subs = [await self.bus.subscribe(self._subject(ch), h) for ch, h in handlers.items()]
        await self.bus.nc.flush()
        return subs

    # -- client -> bus ----------------------------------------------------------------------
    async def _receive_forever(self) -> None:
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(message.get("code", 1000))
            if (data := message.get("bytes")) is not None:
                self.clock.received(len(data))
                self._audio_seq += 1
                meta = MessageMeta(session_id=self.sid, seq=self._audio_seq)
                await self.bus.publish(self._audio_subject, data, meta)
            elif (text := message.get("text")) is not None:
                await self._on_client_text(text)

    async def _on_client_text(self, text: str) -> None:
        try:
            msg = client_message_adapter.validate_json(text)
        except ValidationError as exc:
            # A bad message is answered, not fatal: the call goes on.
            first = exc.errors()[0] if exc.errors() else {"msg": "invalid message"}
            await self._error("invalid_message", f"{first.get('msg')} at {first.get('loc')}")
            return
        if isinstance(msg, Ping):
            await self._event("pong", PongData(ts=msg.ts, server_ts=time.time()))
        elif isinstance(msg, TextMessage):
            await self.bus.publish(
                self._subject(SessionChannel.CONTROL), TextInput(text=msg.text), self._meta()
            )
        elif isinstance(msg, AudioStartMsg | AudioStopMsg):
            # In the audio stream itself, so that it stays in order with the frames.
            action = "start" if isinstance(msg, AudioStartMsg) else "stop"
            self._audio_seq += 1
            marker = MessageMeta(self.sid, seq=self._audio_seq, extra={PUSH_TO_TALK: action})
            await self.bus.publish(self._audio_subject, b"", marker)
        elif isinstance(msg, InterruptMsg) and self._turn is not None:
            await self._interrupt(self._turn, InterruptReason.CLIENT, time.perf_counter())

    # -- bus -> client ----------------------------------------------------------------------
    async def _on_speech(self, msg: Received) -> None:
        event = msg.decode(speech_adapter)
        wall = self.clock.wall_time(event.at_ms) or time.perf_counter()
        if isinstance(event, SpeechStarted):
            self._speech_onset = wall
            await self._event("speech_started", SpeechData(at_ms=event.at_ms))
            self._maybe_barge_in(wall)
        else:
            self._speech_end = wall
            if self._barge_in is not None:
                self._barge_in.cancel()
                self._barge_in = None
            await self._event("speech_stopped", SpeechData(at_ms=event.at_ms))

    def _assistant_audible(self) -> bool:
        return self._turn is not None and (
            self._turn not in self.playout.turns
            or not self.playout.turns[self._turn].finished
            or self.playout.is_playing()
        )

    def _maybe_barge_in(self, onset: float) -> None:
        threshold = self.config.interrupt_sensitivity.barge_in_ms
        if threshold is None or not self._assistant_audible():
            return
        if self._barge_in is not None:
            self._barge_in.cancel()
        turn_id = self._turn
        assert turn_id is not None

        async def confirm() -> None:
            # Speech must last the sensitivity's minimum to count: a cough is not a turn.
            remaining = threshold / 1000 - (time.perf_counter() - onset)
            if remaining > 0:
                await asyncio.sleep(remaining)
            if self._turn == turn_id and self._assistant_audible():
                await self._interrupt(turn_id, InterruptReason.BARGE_IN, onset)

        self._barge_in = asyncio.create_task(confirm())

    async def _interrupt(self, turn_id: int, reason: InterruptReason, onset: float) -> None:
        await self.bus.publish(
            self._subject(SessionChannel.INTERRUPT),
            Interrupt(turn_id=turn_id, reason=reason),
            self._meta(turn_id),
        )
        await self._cut(turn_id)
        interrupt_ms = (time.perf_counter() - onset) * 1000
        INTERRUPT_SECONDS.observe(interrupt_ms / 1000)
        await self._record_latency(turn_id, interrupt_ms=interrupt_ms)

    async def _cut(self, turn_id: int) -> None:
        """Stop turn ``turn_id`` here: drop its audio, tell the client, report what it heard."""
        if turn_id in self._interrupted:
            return
        self._interrupted.add(turn_id)
        if self._turn == turn_id:
            self._turn = None
        audio = self.playout.drop(turn_id)
        heard_ms, heard_chars = audio.heard(self.playout.played_ms()) if audio else (0.0, 0.0)
        text = self._reply_text.pop(turn_id, "")
        heard_text = _cut_at_word(text, int(heard_chars))
        await self._event("interrupted", InterruptedData(turn_id=turn_id, heard_text=heard_text))
        await self.bus.publish(
            self._subject(SessionChannel.INTERRUPT),
            Heard(turn_id=turn_id, audio_ms=int(heard_ms), chars=len(heard_text)),
            self._meta(turn_id),
        )

    async def _on_interrupt(self, msg: Received) -> None:
        event = msg.decode(interrupt_adapter)
        if isinstance(event, Interrupt):
            await self._cut(event.turn_id)  # a no-op for the interrupts this bridge sent

    async def _on_transcript(self, msg: Received) -> None:
        t = msg.decode(transcript_adapter)
        await self._event(
            "transcript",
            TranscriptData(
                role=Role.USER,
                text=t.text,
                is_final=t.is_final,
                partial=not t.is_final,
                confidence=t.confidence,
                language=t.language,
            ),
        )
        if t.is_final:
            await self._s2(
                S2Event(type="transcription_complete", text=t.text, confidence=t.confidence)
            )

    async def _on_reply(self, msg: Received) -> None:
        turn_id = msg.meta.turn_id
        event = msg.decode(reply_adapter)
        if isinstance(event, UserText):
            self._turn = turn_id
            self._reply_text[turn_id] = ""
            if self._speech_end is not None and not event.typed:
                self._turn_speech_end[turn_id] = self._speech_end
            if event.typed:
                await self._event(
                    "transcript",
                    TranscriptData(
                        role=Role.USER,
                        text=event.text,
                        is_final=True,
                        partial=False,
                        turn_id=turn_id,
                    ),
                )
            return
        if turn_id in self._interrupted:
            return
        if isinstance(event, ReplyDelta):
            self._reply_text[turn_id] = self._reply_text.get(turn_id, "") + event.text
            await self._event("response", ResponseData(turn_id=turn_id, text=event.text))
        elif isinstance(event, ReplyDone):
            await self._event("response", ResponseData(turn_id=turn_id, text=event.text, done=True))
            await self._event(
                "transcript",
                TranscriptData(
                    role=Role.ASSISTANT,
                    text=event.text,
                    is_final=True,
                    partial=False,
                    turn_id=turn_id,
                    interrupted=event.interrupted,
                ),
            )
            await self._s2(S2Event(type="response_generated", text=event.text))
            if not event.text and self._turn == turn_id:
                self._turn = None  # nothing to say: the turn is over

    async def _on_audio_out(self, msg: Received) -> None:
        turn_id = msg.meta.turn_id
        if turn_id in self._interrupted:
            return
        extra = msg.meta.extra
        rate = int(extra.get(AUDIO_RATE, self.config.output_sample_rate))
        if extra.get(AUDIO_END):
            self.playout.end(turn_id, rate)
        elif msg.data:
            self.playout.add(
                turn_id, msg.data, rate, int(extra.get(TEXT_START, 0)), int(extra.get(TEXT_END, 0))
            )

    async def _on_status(self, msg: Received) -> None:
        event = msg.decode(status_adapter)
        if isinstance(event, ServiceError):
            await self._error(f"{event.service}_{event.code}", event.message, processing=True)
        else:
            stages = event.model_dump(exclude_none=True, exclude={"type", "turn_id"})
            await self._metrics(event.turn_id, stages)

    # -- playout callbacks ------------------------------------------------------------------
    async def _audio_started(self, turn: TurnAudio) -> None:
        await self._event(
            "audio_start", AudioStartData(turn_id=turn.turn_id, sample_rate=turn.rate)
        )

    async def _first_audio_sent(self, turn: TurnAudio) -> None:
        speech_end = self._turn_speech_end.pop(turn.turn_id, None)
        if speech_end is not None and turn.first_sent_at is not None:
            v2v_ms = (turn.first_sent_at - speech_end) * 1000
            VOICE_TO_VOICE_SECONDS.observe(v2v_ms / 1000)
            await self._record_latency(turn.turn_id, voice_to_voice_ms=v2v_ms)

    async def _audio_ended(self, turn: TurnAudio) -> None:
        await self._event("audio_end", TurnData(turn_id=turn.turn_id))
        await self._s2(S2Event(type="voice_processing_complete"))

    async def _send_audio(self, frame: bytes) -> None:
        await self._send({"type": "websocket.send", "bytes": frame})

    # -- helpers -----------------------------------------------------------------------------
    async def _record_latency(self, turn_id: int, **stage: float) -> None:
        # Reported from a task of its own: the JetStream ack must not delay audio.
        self._reports.put_nowait((turn_id, stage))

    async def _report_forever(self) -> None:
        while True:
            turn_id, stage = await self._reports.get()
            await self._metrics(turn_id, stage)
            fields = {"turn_id": turn_id, **stage}
            await self.bus.publish(
                self._subject(SessionChannel.STATUS),
                TurnLatency.model_validate(fields),
                self._meta(turn_id),
            )
            event = LatencyRecorded.model_validate(
                {"session_id": self.sid, "at": datetime.now(UTC), **fields}
            )
            await self.bus.js_publish(
                subjects.event("latency.recorded"), event, self._meta(turn_id)
            )

    async def _metrics(self, turn_id: int, stages: dict[str, float]) -> None:
        merged = self._latency.setdefault(turn_id, {})
        if all(merged.get(k) == v for k, v in stages.items()):
            return  # our own latency coming back over the bus
        merged.update(stages)
        await self._event("metrics", MetricsData(turn_id=turn_id, **merged))

    async def _error(self, code: str, message: str, processing: bool = False) -> None:
        await self._event("error", ErrorData(code=code, message=message))
        if not processing:
            return  # S2's event is about failed voice processing, not about bad input
        await self._s2(
            S2Event(type="voice_processing_error", error=message, timestamp=datetime.now(UTC))
        )

    async def _event(self, kind: str, data: object) -> None:
        event = ServerEvent.model_validate({"type": kind, "data": data})
        await self._send({"type": "websocket.send", "text": event.model_dump_json()})

    async def _s2(self, event: S2Event) -> None:
        await self._send({"type": "websocket.send", "text": json.dumps(event.dump())})

    async def _send(self, message: dict[str, Any]) -> None:
        """One message to the client; bus events that race the client's departure are
        dropped, since there is nobody left to tell."""
        async with self._send_lock:
            if self.ws.application_state is not WebSocketState.CONNECTED:
                return
            try:
                # A client that stops reading must not stall the session: it is dropped.
                await asyncio.wait_for(self.ws.send(message), SEND_TIMEOUT_S)
            except (WebSocketDisconnect, RuntimeError, OSError):
                log.debug("send after the client left")
            except TimeoutError:
                log.warning("client not reading; closing")
                with contextlib.suppress(Exception):
                    await self.ws.close(CLOSE_GOING_AWAY, "client too slow")


def _cut_at_word(text: str, chars: int) -> str:
    """The first ``chars`` characters of ``text``, ending at a word boundary."""
    if chars >= len(text):
        return text
    cut = text[:chars]
    if chars < len(text) and not text[chars].isspace():
        cut = cut.rsplit(" ", 1)[0] if " " in cut else ""
    return cut.rstrip()
