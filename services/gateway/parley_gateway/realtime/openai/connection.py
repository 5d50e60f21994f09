"""One OpenAI Realtime connection: the client side of a ``SessionBridge``.

To the bridge it is a ``ClientConnection`` (and its ``BridgeTransport``): ``receive`` reads
OpenAI's client events, answers the ones that are the connection's own (``session.update``,
``conversation.item.retrieve``...) and hands the bridge what the native protocol has a
message for (appended audio, a commit, a typed message, a cancel); the native events the
bridge sends are told to the client as OpenAI's (``conversation``). A bad event is answered
with OpenAI's ``error`` event and the connection goes on.

The Parley session starts with the first event that needs the pipeline (audio, a commit, a
user item), so that the options of the ``session.update`` sent first are the session's.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from fastapi import WebSocket, WebSocketDisconnect
from pydantic import ValidationError

from parley_common.bus import MessageMeta, Received
from parley_common.contracts import subjects
from parley_common.contracts.bus import Heard
from parley_common.contracts.events import UsageRecorded
from parley_common.contracts.subjects import SessionChannel
from parley_common.contracts.ws import (
    AudioStopMsg,
    ClientMessage,
    InterruptMsg,
    ServerEvent,
    TextMessage,
)
from parley_common.errors import BadInputError, ConflictError, ParleyError
from parley_common.tokens import Principal
from parley_gateway.realtime.audio_in import AudioInPublisher
from parley_gateway.realtime.bridge import cut_at_word
from parley_gateway.realtime.client import ClientConnection
from parley_gateway.realtime.openai import wire
from parley_gateway.realtime.openai.audio import RealtimeAudioIn, RealtimeAudioOut, duration_ms
from parley_gateway.realtime.openai.conversation import Conversation
from parley_gateway.realtime.openai.items import user_message_kind
from parley_gateway.realtime.openai.native import NativeEvents
from parley_gateway.realtime.openai.options import RealtimeOptions, parse_update
from parley_gateway.realtime.openai.refusals import decode_base64, error_event, invalid, param_of
from parley_gateway.realtime.playout import TurnCallback
from parley_gateway.routes.deps import Gateway
from parley_gateway.routes.voices import voices_of
from parley_gateway.sessions.store import SessionRecord

# OpenAI refuses to commit less than this.
MIN_COMMIT_MS = 100
# After a refused start the session is not tried again before this, or a session.update.
START_RETRY_S = 1.0
Deferred = Callable[[], Awaitable[None]]
Outcome = bytes | ClientMessage | None


class SessionNeeded(Exception):
    """An event needs the Parley session, which has not started yet."""


class RealtimeClient(ClientConnection):
    """An OpenAI Realtime client, seen by the bridge as its client connection."""

    def __init__(
        self,
        websocket: WebSocket,
        gateway: Gateway,
        principal: Principal,
        options: RealtimeOptions,
    ) -> None:
        super().__init__(websocket)
        self.gateway = gateway
        self.principal = principal
        self.options = options
        self.conversation = Conversation(
            self.send_event,
            modality=lambda: self.options.modality,
            transcribing=lambda: self.options.transcription is not None,
            manual=lambda: self.options.manual,
        )
        self.record: SessionRecord | None = None
        self.audio_in: RealtimeAudioIn | None = None
        self.audio_out: RealtimeAudioOut | None = None
        self._pending: str | None = None  # the event that started the session
        self._after: list[Deferred] = []  # to run once the bridge has handled the last outcome
        self._offered: dict[str, set[str]] = {}  # voices per TTS provider
        # Why the session could not start, and until when that stands (None: until the
        # client changes its options): a refused start is not retried on every append.
        self._refused: tuple[ParleyError, float | None] | None = None
        self._handlers: dict[str, Callable[[Any], Awaitable[Outcome]]] = {
            "session.update": self._session_update,
            "input_audio_buffer.append": self._append,
            "input_audio_buffer.commit": self._commit,
            "input_audio_buffer.clear": self._clear,
            "conversation.item.create": self._item_create,
            "conversation.item.retrieve": self._item_retrieve,
            "conversation.item.truncate": self._item_truncate,
            "conversation.item.delete": self._item_delete,
            "response.create": self._response_create,
            "response.cancel": self._response_cancel,
            "output_audio_buffer.clear": self._output_clear,
        }
        self.native = NativeEvents(self.conversation, self.send_event)

    # -- the bridge's transport ----------------------------------------------------------
    @property
    def client(self) -> ClientConnection:
        """This connection."""
        return self

    def parts(
        self,
        publisher: AudioInPublisher,
        on_start: TurnCallback,
        on_first_frame: TurnCallback,
        on_end: TurnCallback,
    ) -> tuple[RealtimeAudioIn, RealtimeAudioOut]:
        """The input buffer and the output of this connection."""
        assert self.record is not None
        options = self.options
        self.audio_in = RealtimeAudioIn(
            publisher, options.input_format, options.manual, self.refuse
        )
        self.audio_out = RealtimeAudioOut(
            self.native.audio,
            on_start,
            on_first_frame,
            on_end,
            lead_ms=self.gateway.settings.audio_lead_ms,
            fmt=options.output_format,
            source_rate=self.record.config.output_sample_rate,
            wants_audio=self.conversation.wants_audio,
        )
        return self.audio_in, self.audio_out

    # -- lifetime ------------------------------------------------------------------------
    async def until_session_needed(self) -> None:
        """Serve events until one needs the Parley session; it is handled once it started."""
        while True:
            raw = await self._next_text()
            try:
                await self._dispatch(raw)
            except SessionNeeded:
                self._pending = raw
                return

    async def started(self, record: SessionRecord) -> None:
        """The Parley session started: from now on the client's use keeps it alive."""
        self.record = record
        self.options.output_sample_rate = record.config.output_sample_rate
        self._on_activity = self.gateway.activity.noter(record.id)
        self._on_activity()
        await self.send_event(wire.SessionUpdated(session=self.options.view(record.id)))

    def start_refused(self, exc: ParleyError) -> None:
        """The session could not start: the event that needed it is dropped, and the events
        that need the session are refused for the same reason until the client changes its
        options (or, for a retryable refusal, a little later)."""
        self._pending = None
        wait = getattr(exc, "retry_after_s", START_RETRY_S)
        self._refused = (exc, time.monotonic() + wait if exc.retryable else None)

    async def on_usage(self, msg: Received) -> None:
        """A durable usage event; the dialogue worker's token counts of this session's turns
        go into ``response.done``."""
        if self.record is None or msg.meta.session_id != self.record.id:
            return
        usage = UsageRecorded.model_validate_json(msg.data)
        if usage.service == "llm":
            self.conversation.usage(msg.meta.turn_id, usage.unit, usage.quantity)

    # -- receiving -----------------------------------------------------------------------
    async def receive(self) -> bytes | ClientMessage:
        """The next thing the bridge must act on; everything else is answered here."""
        while True:
            after, self._after = self._after, []
            for action in after:
                try:
                    await action()
                except ParleyError as exc:  # e.g. the item was forgotten meanwhile
                    await self.refuse(exc)
            raw, self._pending = self._pending, None
            outcome = await self._dispatch(raw if raw is not None else await self._next_text())
            if outcome is not None:
                return outcome

    async def _next_text(self) -> str:
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(message.get("code", 1000))
            if (text := message.get("text")) is not None:
                return str(text)
            await self.refuse(
                BadInputError("send JSON text events; audio goes base64 in input_audio_buffer")
            )

    async def _dispatch(self, raw: str) -> Outcome:
        event_id: str | None = None
        try:
            data = json.loads(raw)
            if isinstance(data, dict) and isinstance(data.get("event_id"), str):
                event_id = data["event_id"]
            event = wire.client_event_adapter.validate_python(data)
        except json.JSONDecodeError:
            await self.refuse(BadInputError("the event is not JSON", code="invalid_json"))
            return None
        except ValidationError as exc:
            await self.refuse(invalid(exc), event_id, param_of(exc))
            return None
        self._on_activity()
        try:
            return await self._handlers[event.type](event)
        except ParleyError as exc:
            await self.refuse(exc, event_id)
            return None

    def _need_session(self) -> SessionRecord:
        if self.record is not None:
            return self.record
        if self._refused is not None:
            exc, until = self._refused
            if until is None or time.monotonic() < until:
                raise exc
        raise SessionNeeded

    # -- client events -------------------------------------------------------------------
    async def _session_update(self, event: wire.SessionUpdate) -> Outcome:
        body = parse_update(event.session)
        new = self.options.updated(body)
        voice_may_change = new.requested_voice is not None and (
            body.audio is not None or body.parley is not None
        )
        if voice_may_change:
            new.resolve_voice(await self._voices_of(new.config.tts_provider.value))
        if self.record is not None:
            new.check_unchanged(self.options)
        self.options = new
        self._refused = None
        if self.audio_in is not None and self.audio_out is not None:
            self.audio_in.configure(new.input_format, new.manual)
            self.audio_out.configure(new.output_format)
        session_id = self.record.id if self.record else None
        await self.send_event(wire.SessionUpdated(session=new.view(session_id)))
        return None

    async def _voices_of(self, provider: str) -> set[str]:
        if provider not in self._offered:
            view = await voices_of(self.gateway, provider, self.principal)
            self._offered[provider] = {v.id for v in view.voices}
        return self._offered[provider]

    async def _append(self, event: wire.AudioAppend) -> Outcome:
        audio = decode_base64(event.audio, "audio")
        self._need_session()
        return audio or None

    async def _commit(self, event: wire.AudioCommit) -> Outcome:
        if self.audio_in is not None and not self.options.manual:
            return AudioStopMsg(type="audio_stop")  # the turn being spoken ends now
        buffered = self.audio_in.buffered_ms if self.audio_in is not None else 0.0
        if buffered < MIN_COMMIT_MS:
            raise BadInputError(
                f"the input audio buffer holds {buffered:.0f} ms; commit at least"
                f" {MIN_COMMIT_MS} ms",
                code="input_audio_buffer_commit_empty",
            )
        await self.conversation.committed_audio(buffered / 1000)
        return AudioStopMsg(type="audio_stop")

    async def _clear(self, event: wire.AudioClear) -> Outcome:
        if self.audio_in is not None:
            self.audio_in.clear()
        await self.conversation.cleared()
        return None

    async def _item_create(self, event: wire.ItemCreate) -> Outcome:
        item = event.item
        kind = user_message_kind(item)
        last = self.conversation.items.last_id
        if event.previous_item_id not in (None, last):
            raise BadInputError(
                "Parley adds items at the end of the conversation only", code="item_position"
            )
        self._need_session()
        item_id = self.conversation.items.free_id(item.id)
        if kind == "audio":
            assert self.audio_in is not None
            audio = b"".join(
                decode_base64(p.audio or "", "item.content.audio") for p in item.content
            )
            pcm = self.audio_in.utterance(audio, self.options.input_format)
            await self.conversation.audio_item(item_id, duration_ms(pcm) / 1000)
            await self.audio_in.recording(pcm)
            return None
        text = "\n".join(p.text or "" for p in item.content).strip()
        try:
            message = TextMessage(type="text_message", text=text)
        except ValidationError as exc:
            raise invalid(exc, "item.content.text") from exc
        await self.conversation.text_item(item_id, text)
        return message

    async def _item_retrieve(self, event: wire.ItemRetrieve) -> Outcome:
        item = self.conversation.items.get(event.item_id)
        await self.send_event(wire.ItemRetrieved(item=item.model_copy(deep=True)))
        return None

    async def _item_truncate(self, event: wire.ItemTruncate) -> Outcome:
        item = self.conversation.items.get(event.item_id)
        turn_id = self.conversation.items.turn_of(item.id)
        spoken = item.content[0].type == "output_audio" if item.content else False
        if turn_id is None or not spoken or event.content_index != 0:
            raise BadInputError(
                "only the audio (content 0) of an assistant message can be truncated",
                code="item_truncate_invalid",
            )

        async def truncate() -> None:
            audio = self.audio_out.turn(turn_id) if self.audio_out else None
            heard_ms, chars = 0.0, 0.0
            if audio is not None and audio.timeline_start_ms is not None:
                heard_ms, chars = audio.heard(audio.timeline_start_ms + event.audio_end_ms)
            heard = cut_at_word(self.conversation.items.spoken(item.id), int(chars))
            await self._publish_heard(turn_id, int(heard_ms), len(heard))
            await self.conversation.truncated(
                item.id, heard, event.content_index, event.audio_end_ms
            )

        if self.conversation.is_active(item.id):
            # The client stopped playing: the answer stops, then the memory keeps what the
            # client says was heard (after the bridge's own, larger, report).
            self._after.append(truncate)
            return InterruptMsg(type="interrupt")
        await truncate()
        return None

    async def _item_delete(self, event: wire.ItemDelete) -> Outcome:
        item = self.conversation.items.get(event.item_id)
        if self.conversation.is_active(item.id):
            raise ConflictError(
                "the item is being generated; cancel the response first", code="item_in_progress"
            )
        turn_id = self.conversation.items.turn_of(item.id)
        if turn_id is None:
            raise BadInputError(
                "Parley's memory cannot forget a user message; assistant messages can be deleted",
                code="item_delete_unsupported",
            )
        await self._publish_heard(turn_id, 0, 0)  # nothing of it stays in the memory
        await self.conversation.remove(item.id)
        return None

    async def _response_create(self, event: wire.ResponseCreate) -> Outcome:
        params = event.response or wire.ResponseParams()
        if params.conversation == "none" or params.input:
            raise BadInputError(
                "responses outside the conversation (conversation: none, input) are not supported",
                code="response_unsupported",
            )
        modality = params.output_modalities[0] if params.output_modalities else None
        self.conversation.request(modality, params.metadata)
        return None

    async def _response_cancel(self, event: wire.ResponseCancel) -> Outcome:
        self.conversation.cancel(event.response_id)
        return InterruptMsg(type="interrupt")

    async def _output_clear(self, event: wire.OutputAudioClear) -> Outcome:
        raise BadInputError(
            "output_audio_buffer.clear is for WebRTC and SIP; over a WebSocket stop playback"
            " and send conversation.item.truncate",
            code="unsupported_event",
        )

    async def _publish_heard(self, turn_id: int, audio_ms: int, chars: int) -> None:
        record = self._need_session()
        await self.gateway.bus.publish(
            subjects.session(record.id, SessionChannel.INTERRUPT),
            Heard(turn_id=turn_id, audio_ms=audio_ms, chars=chars),
            MessageMeta(session_id=record.id, turn_id=turn_id),
        )

    # -- native events, as OpenAI's ------------------------------------------------------
    async def event(self, event: ServerEvent) -> None:
        """A native event from the bridge, told as OpenAI's events."""
        await self.native.event(event)

    async def s2(self, event: Any) -> None:
        """S2's flat events have no place here."""

    async def error(
        self,
        code: str,
        message: str,
        *,
        processing: bool = False,
        severity: Literal["error", "warning"] = "error",
        provider: str | None = None,
    ) -> None:
        """A native error, told as OpenAI's."""
        await self.native.error(code, message, processing, severity)

    async def refuse(
        self, exc: ParleyError, event_id: str | None = None, param: str | None = None
    ) -> None:
        """Tell the client its event was refused; the connection goes on."""
        await self._send({"type": "websocket.send", "text": error_event(exc, event_id, param)})

    async def send_event(self, event: wire.ServerEvent) -> None:
        """Send one OpenAI server event."""
        await self._send({"type": "websocket.send", "text": event.model_dump_json()})
