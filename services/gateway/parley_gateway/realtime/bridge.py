"""One client connection bridged to the bus: audio and intents up, events and audio down.

The gateway is the one place that knows what the user has actually heard, so it decides
barge-in (``barge_in.py``), tells everyone to cancel the turn, and reports how much of the
answer reached the user. The client protocol is in ``client.py``, the user's audio in
``audio_in.py``, pacing in ``playout.py`` (S2's whole answer files in ``answer_files.py``),
latency in ``latency.py``; this module wires them to the session's subjects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

from fastapi import WebSocket, WebSocketDisconnect
from nats.aio.subscription import Subscription
from opentelemetry.trace import Span
from pydantic import ValidationError

from parley_common.bus import MessageMeta, Received
from parley_common.bus.audio import AudioOutMeta, PushToTalk
from parley_common.contracts import subjects
from parley_common.contracts.bus import (
    AssistantAction,
    Heard,
    IdlePrompt,
    Interrupt,
    InterruptReason,
    OverlapDismissed,
    OverlapStarted,
    ReplyDelta,
    ReplyDone,
    Role,
    ServiceError,
    SpeechStarted,
    TextInput,
    UserText,
    interrupt_adapter,
    reply_adapter,
    speech_adapter,
    status_adapter,
    transcript_adapter,
)
from parley_common.contracts.subjects import SessionChannel
from parley_common.contracts.ws import (
    AudioEndEvent,
    AudioStartData,
    AudioStartEvent,
    AudioStartMsg,
    AudioStopMsg,
    InterruptedData,
    InterruptedEvent,
    InterruptMsg,
    Ping,
    PongData,
    PongEvent,
    ReadyData,
    ReadyEvent,
    ResponseData,
    ResponseEvent,
    S2Event,
    SpeechData,
    SpeechStartedEvent,
    SpeechStoppedEvent,
    TextMessage,
    TranscriptData,
    TranscriptEvent,
    TurnData,
)
from parley_common.observability import tracing
from parley_common.observability.logging import session_context
from parley_common.reporting import DurableReporter
from parley_gateway.realtime.answer_files import AnswerFiles
from parley_gateway.realtime.assistant_actions import AssistantActions
from parley_gateway.realtime.audio_clock import AudioClock
from parley_gateway.realtime.audio_in import AudioInPublisher, AudioInput, PcmInput, RecordingInput
from parley_gateway.realtime.barge_in import BargeInPolicy
from parley_gateway.realtime.client import ClientConnection, describe
from parley_gateway.realtime.echo import SendPause, ServerEcho, echo_for
from parley_gateway.realtime.idle import IdlePrompter
from parley_gateway.realtime.latency import TurnLatencies
from parley_gateway.realtime.pausing import judging_for
from parley_gateway.realtime.playout import AudioOutput, Playout, TurnAudio, TurnCallback
from parley_gateway.realtime.speculation import SpeculativeHold
from parley_gateway.routes.deps import Gateway
from parley_gateway.sessions.store import SessionRecord
from parley_gateway.sessions.turn_result import AnswerFormat

log = logging.getLogger(__name__)

# Per-turn state is kept for the few most recent turns only: a call of any length holds a
# bounded state, and messages about older turns are late and dropped.
RECENT_TURNS = 8


@dataclass
class _TurnState:
    reply_text: str = ""
    speech_end: float | None = None  # when the user's speech that started it ended
    interrupted: bool = False
    traceparent: str = ""  # the turn's root span
    playout: Span | None = None  # gateway.playout: first audio to its end or its cut

    def end_playout(self) -> None:
        if self.playout is not None:
            self.playout.end()
            self.playout = None


class BridgeTransport(Protocol):
    """A protocol of its own on the bridge (OpenAI's Realtime API): its client side, which
    translates the native events, and its audio parts, given the bridge's playout callbacks."""

    @property
    def client(self) -> ClientConnection:
        """The connection the bridge receives from and sends events to."""

    def parts(
        self,
        publisher: AudioInPublisher,
        on_start: TurnCallback,
        on_first_frame: TurnCallback,
        on_end: TurnCallback,
    ) -> tuple[AudioInput, AudioOutput]:
        """The input and output audio of the connection."""


class SessionBridge:
    """Relays one WebSocket to the session's subjects until either side ends.

    ``answers`` None is the native protocol: PCM frames both ways. With an ``AnswerFormat``
    it is S2's: every binary message from the client is a whole recording, and every answer
    goes back as one file in that format; the events are the same. A ``transport`` brings
    another protocol's client side and audio parts.
    """

    def __init__(
        self,
        gateway: Gateway,
        record: SessionRecord,
        websocket: WebSocket,
        answers: AnswerFormat | None = None,
        transport: BridgeTransport | None = None,
        chunk_ms: int | None = None,
    ) -> None:
        self.gateway = gateway
        self.bus = gateway.bus
        self.config = record.config
        self.sid = record.id
        self.client = (
            transport.client
            if transport is not None
            else ClientConnection(websocket, gateway.activity.noter(record.id))
        )
        self.clock = AudioClock(gateway.audio_positions.get(record.id))
        publisher = AudioInPublisher(self.bus, self.sid, self.clock)
        self.playout: AudioOutput
        self.input: AudioInput
        # Server-side echo cancellation, for PCM clients only (a transport has its own).
        self.echo: ServerEcho | None = None
        if transport is not None:
            self.input, self.playout = transport.parts(
                publisher, self._audio_started, self._first_audio_sent, self._audio_ended
            )
        elif answers is None:
            self.echo = echo_for(self.config)
            send = self.client.audio if self.echo is None else self.echo.tee(self.client.audio)
            self.playout = Playout(
                send,
                self._audio_started,
                self._first_audio_sent,
                self._audio_ended,
                lead_ms=gateway.settings.audio_lead_ms,
                frame_ms=chunk_ms or gateway.settings.audio_chunk_ms,
            )
            self.input = PcmInput(
                publisher, self.client, gateway.settings.max_ws_message_bytes, self.echo
            )
        else:
            self.playout = AnswerFiles(
                self.client.audio, self._first_audio_sent, self._audio_ended, answers
            )
            self.input = RecordingInput(publisher, self.client)
        self.reporter = DurableReporter(self.bus, "gateway")
        self.latency = TurnLatencies(self.sid, self.client.event, self.reporter)
        self.actions = AssistantActions(gateway, self.sid, self.client.event)
        self.speculation = SpeculativeHold()  # a speculative answer, until its turn commits
        self._seq = 0
        # The assistant's current turn: from its first message until its audio has played.
        self._turn: int | None = None
        self._turns: OrderedDict[int, _TurnState] = OrderedDict()
        self._speech_end: float | None = None
        self._barge_in: BargeInPolicy | None = None
        self.idle = IdlePrompter(self.config.idle_prompt_s, self._ask_if_idle)

    @property
    def tracked_turns(self) -> int:
        """Turns this bridge holds state for (bounded by RECENT_TURNS)."""
        return len(self._turns)

    def _subject(self, channel: SessionChannel) -> str:
        return subjects.session(self.sid, channel)

    def _meta(self, turn_id: int = 0) -> MessageMeta:
        self._seq += 1
        state = self._turns.get(turn_id) if turn_id else None
        traceparent = state.traceparent if state else ""
        return MessageMeta(
            session_id=self.sid, turn_id=turn_id, seq=self._seq, traceparent=traceparent
        )

    def _state(self, turn_id: int) -> _TurnState:
        """The state of ``turn_id``, created when new; the oldest turns are forgotten."""
        state = self._turns.get(turn_id)
        if state is None:
            state = self._turns[turn_id] = _TurnState()
            while len(self._turns) > RECENT_TURNS:
                self._turns.popitem(last=False)[1].end_playout()
        return state

    def _dropped(self, turn_id: int) -> bool:
        """Whether messages about ``turn_id`` are to be ignored: it was interrupted here."""
        state = self._turns.get(turn_id)
        return state is not None and state.interrupted

    async def run(self) -> None:
        """Serve the connection until the client leaves."""
        with session_context(self.sid):
            subs = await self._subscribe()
            ready = ReadyData(
                session_id=self.sid,
                config=self.config,
                output_sample_rate=self.config.output_sample_rate,
            )
            await self.client.event(ReadyEvent(data=ready))
            try:
                async with asyncio.TaskGroup() as tg:
                    pauses: SendPause = self.client.event
                    if self.echo is not None:
                        pauses = self.echo.on_pause(pauses)  # a pause flushes the client
                    judging = judging_for(
                        self.config,
                        self.gateway.settings,
                        self.playout,
                        pauses,
                        self._tell_dialogue,
                    )
                    self._barge_in = BargeInPolicy(
                        self.config.interrupt_sensitivity,
                        self._audible_turn,
                        self._barge,
                        tg,
                        judging,
                    )
                    background = [
                        tg.create_task(self.playout.run()),
                        tg.create_task(self.input.run()),
                        tg.create_task(self.reporter.run()),
                    ]
                    try:
                        await self._receive_forever()
                    finally:
                        self._barge_in.cancel()
                        self.idle.cancel()
                        for task in background:
                            task.cancel()
            except* WebSocketDisconnect:
                log.info("client disconnected")
            finally:
                self.gateway.audio_positions.set(self.sid, self.clock.sample)
                for sub in subs:
                    with contextlib.suppress(Exception):
                        await sub.unsubscribe()

    async def _subscribe(self) -> list[Subscription]:
        # STATUS carries what the workers report; the gateway's own measurements go to the
        # client and to JetStream directly, so it never hears its own echo.
        handlers = {
            SessionChannel.SPEECH: self._on_speech,
            SessionChannel.TRANSCRIPT: self._on_transcript,
            SessionChannel.REPLY: self._on_reply,
            SessionChannel.AUDIO_OUT: self._on_audio_out,
            SessionChannel.INTERRUPT: self._on_interrupt,
            SessionChannel.STATUS: self._on_status,
        }
        subs = [await self.bus.subscribe(self._subject(ch), h) for ch, h in handlers.items()]
        await self.bus.flush()
        return subs

    # -- client -> bus ----------------------------------------------------------------------
    async def _receive_forever(self) -> None:
        while True:
            message = await self.client.receive()
            if isinstance(message, bytes):
                await self.input.audio(message)
            elif isinstance(message, ValidationError):
                # A bad message is answered, not fatal: the call goes on.
                await self.client.error("invalid_message", describe(message))
            else:
                await self._on_client_message(message)

    async def _on_client_message(
        self, msg: Ping | TextMessage | AudioStartMsg | AudioStopMsg | InterruptMsg
    ) -> None:
        if isinstance(msg, Ping):
            await self.client.event(PongEvent(data=PongData(ts=msg.ts, server_ts=time.time())))
        elif isinstance(msg, TextMessage):
            self.idle.user_active()
            await self.bus.publish(
                self._subject(SessionChannel.CONTROL), TextInput(text=msg.text), self._meta()
            )
        elif isinstance(msg, AudioStartMsg | AudioStopMsg):
            action: PushToTalk = "start" if isinstance(msg, AudioStartMsg) else "stop"
            await self.input.push_to_talk(action)
        elif self._turn is not None:
            await self._interrupt(self._turn, InterruptReason.CLIENT, time.perf_counter())

    # -- barge-in ---------------------------------------------------------------------------
    def _audible_turn(self) -> int | None:
        """The assistant's turn while any of it may still be heard."""
        turn_id = self._turn
        if turn_id is None:
            return None
        audio = self.playout.turns.get(turn_id)
        if audio is None or not audio.finished or self.playout.is_playing():
            return turn_id
        return None

    async def _barge(self, turn_id: int, onset: float) -> None:
        if not self._dropped(turn_id):  # a judged overlap's turn may have been cut meanwhile
            await self._interrupt(turn_id, InterruptReason.BARGE_IN, onset)

    async def _tell_dialogue(self, event: OverlapStarted | OverlapDismissed) -> None:
        await self.bus.publish(
            self._subject(SessionChannel.INTERRUPT), event, self._meta(event.turn_id)
        )

    async def _interrupt(self, turn_id: int, reason: InterruptReason, onset: float) -> None:
        state = self._turns.get(turn_id)
        if state is not None and state.playout is not None:
            state.playout.add_event(reason.value)  # "barge_in" or "client"
        await self.bus.publish(
            self._subject(SessionChannel.INTERRUPT),
            Interrupt(turn_id=turn_id, reason=reason),
            self._meta(turn_id),
        )
        await self._cut(turn_id)
        await self.latency.interrupt(turn_id, (time.perf_counter() - onset) * 1000)

    async def _cut(self, turn_id: int) -> None:
        """Stop turn ``turn_id`` here: drop its audio, tell the client, report what it heard."""
        state = self._state(turn_id)
        if state.interrupted:
            return
        state.interrupted = True
        if state.playout is not None:
            state.playout.set_attribute("parley.cancelled", True)
        state.end_playout()
        if self._turn == turn_id:
            self._turn = None
        audio = self.playout.drop(turn_id)
        if self.echo is not None:
            self.echo.flush()  # the client drops its unplayed audio on "interrupted"
        heard_ms, heard_chars = audio.heard(self.playout.played_ms()) if audio else (0.0, 0.0)
        heard_text = cut_at_word(state.reply_text, int(heard_chars))
        state.reply_text = ""
        await self.client.event(
            InterruptedEvent(data=InterruptedData(turn_id=turn_id, heard_text=heard_text))
        )
        await self.bus.publish(
            self._subject(SessionChannel.INTERRUPT),
            Heard(turn_id=turn_id, audio_ms=int(heard_ms), chars=len(heard_text)),
            self._meta(turn_id),
        )

    # -- bus -> client ----------------------------------------------------------------------
    async def _on_speech(self, msg: Received) -> None:
        event = msg.decode(speech_adapter)
        wall = self.clock.wall_time(event.at_ms) or time.perf_counter()
        assert self._barge_in is not None
        if isinstance(event, SpeechStarted):
            await self.client.event(SpeechStartedEvent(data=SpeechData(at_ms=event.at_ms)))
            self._barge_in.speech_started(wall)
            self.idle.user_active()
        else:
            self._speech_end = wall
            self._barge_in.speech_stopped(event.duration_ms)
            await self.client.event(SpeechStoppedEvent(data=SpeechData(at_ms=event.at_ms)))

    async def _on_interrupt(self, msg: Received) -> None:
        event = msg.decode(interrupt_adapter)
        if isinstance(event, Interrupt) and not self.speculation.dropped(event):
            await self._cut(event.turn_id)  # a no-op for the interrupts this bridge sent

    async def _on_transcript(self, msg: Received) -> None:
        t = msg.decode(transcript_adapter)
        if self._barge_in is not None:
            self._barge_in.heard(t)
        if not t.text.strip():
            return  # a pause with no words: for the barge-in verdict, nothing to show
        data = TranscriptData(
            role=Role.USER,
            text=t.text,
            is_final=t.is_final,
            partial=not t.is_final,
            confidence=t.confidence,
            language=t.language,
            emotion=t.emotion,
        )
        await self.client.event(TranscriptEvent(data=data))
        if t.is_final:
            await self.client.s2(
                S2Event(type="transcription_complete", text=t.text, confidence=t.confidence)
            )

    async def _on_reply(self, msg: Received) -> None:
        turn_id = msg.meta.turn_id
        event = msg.decode(reply_adapter)
        if await self.speculation.reply(msg, event, self._on_reply):
            return  # held until its turn commits (then played through here)
        if isinstance(event, UserText):
            await self._turn_started(turn_id, event)
            return
        state = self._state(turn_id)
        if state.interrupted:
            return
        if isinstance(event, ReplyDelta):
            state.reply_text += event.text
            await self.client.event(
                ResponseEvent(data=ResponseData(turn_id=turn_id, text=event.text))
            )
        elif isinstance(event, ReplyDone):
            await self._reply_done(turn_id, event)

    async def _turn_started(self, turn_id: int, event: UserText) -> None:
        state = self._state(turn_id)
        self._turn = turn_id
        if not event.typed:
            state.speech_end = self._speech_end
            return
        data = TranscriptData(
            role=Role.USER, text=event.text, is_final=True, partial=False, turn_id=turn_id
        )
        await self.client.event(TranscriptEvent(data=data))

    async def _reply_done(self, turn_id: int, event: ReplyDone) -> None:
        done = ResponseData(turn_id=turn_id, text=event.text, done=True)
        await self.client.event(ResponseEvent(data=done))
        transcript = TranscriptData(
            role=Role.ASSISTANT,
            text=event.text,
            is_final=True,
            partial=False,
            turn_id=turn_id,
            interrupted=event.interrupted,
        )
        await self.client.event(TranscriptEvent(data=transcript))
        await self.client.s2(S2Event(type="response_generated", text=event.text))
        if not event.text and self._turn == turn_id:
            self._turn = None  # nothing to say: the turn is over

    async def _on_audio_out(self, msg: Received) -> None:
        turn_id = msg.meta.turn_id
        if self._dropped(turn_id) or self.speculation.held(msg, self._on_audio_out):
            return
        try:
            audio = AudioOutMeta.parse(msg.meta.extra)
        except ValueError as exc:
            log.warning("bad audio chunk dropped", extra={"error": str(exc)})
            return
        state = self._state(turn_id)
        state.traceparent = state.traceparent or msg.meta.traceparent
        if state.playout is None and msg.data:
            state.playout = tracing.start_child(
                "gateway.playout", state.traceparent, "gateway", **{"parley.turn_id": turn_id}
            )
        if audio.end:
            self.playout.end(turn_id, audio.rate)
        elif msg.data:
            self.playout.add(turn_id, msg.data, audio.rate, audio.text_start, audio.text_end)

    async def _on_status(self, msg: Received) -> None:
        if self.speculation.held(msg, self._on_status):
            return  # a speculative turn's reports count once it commits
        event = msg.decode(status_adapter)
        if isinstance(event, ServiceError):
            await self.client.error(
                f"{event.service}_{event.code}",
                event.message,
                processing=True,
                severity=event.severity,
                provider=event.provider,
            )
        elif isinstance(event, AssistantAction):
            await self.actions.requested(event)
        else:
            await self.latency.reported(event.turn_id, event.stages)

    # -- playout callbacks ------------------------------------------------------------------
    async def _audio_started(self, turn: TurnAudio) -> None:
        self.idle.cancel()  # the assistant speaks again: not silent
        if self._turn is None or turn.turn_id > self._turn:
            self._turn = turn.turn_id  # a turn no user turn began (the idle prompt) is heard
        data = AudioStartData(turn_id=turn.turn_id, sample_rate=turn.rate)
        await self.client.event(AudioStartEvent(data=data))

    async def _first_audio_sent(self, turn: TurnAudio) -> None:
        state = self._turns.get(turn.turn_id)
        if state is None or state.speech_end is None or turn.first_sent_at is None:
            return
        await self.latency.voice_to_voice(
            turn.turn_id, (turn.first_sent_at - state.speech_end) * 1000
        )

    async def _audio_ended(self, turn: TurnAudio) -> None:
        state = self._turns.get(turn.turn_id)
        if state is not None:
            state.end_playout()
        await self.client.event(AudioEndEvent(data=TurnData(turn_id=turn.turn_id)))
        await self.client.s2(S2Event(type="voice_processing_complete"))
        await self.actions.played(turn.turn_id)
        self.idle.assistant_done()

    async def _ask_if_idle(self) -> None:
        await self.bus.publish(self._subject(SessionChannel.CONTROL), IdlePrompt(), self._meta())


def cut_at_word(text: str, chars: int) -> str:
    """The first ``chars`` characters of ``text``, ending at a word boundary."""
    if chars >= len(text):
        return text
    cut = text[:chars]
    if chars < len(text) and not text[chars].isspace():
        cut = cut.rsplit(" ", 1)[0] if " " in cut else ""
    return cut.rstrip()
