"""WebSocket protocol between a client and the gateway.

Binary frames: client -> server is PCM16 LE mono 16 kHz (20 ms = 640 bytes recommended);
server -> client is PCM16 LE mono at the session's output rate, belonging to the turn of the
last ``audio_start``. Text frames are JSON, one message each.

Server events have the S1 shape ``{"type": ..., "data": {...}}``; S2's flat events
(``transcription_complete`` ...) are sent as well, so clients of either system keep working.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, TypeAdapter

from parley_common.contracts.bus import ActionKind, Emotion, LatencyStages, Role
from parley_common.contracts.session import SessionConfig, Text


# -- client -> server --------------------------------------------------------------------------
class _ClientMsg(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Ping(_ClientMsg):
    """Keepalive and round-trip probe; ``ts`` is echoed back in ``pong``."""

    type: Literal["ping"]
    ts: float | None = None


class AudioStartMsg(_ClientMsg):
    """S2 push-to-talk: the user pressed the talk button."""

    type: Literal["audio_start"]


class AudioStopMsg(_ClientMsg):
    """S2 push-to-talk: the user released it; the turn ends now, without waiting for silence."""

    type: Literal["audio_stop"]


class TextMessage(_ClientMsg):
    """A typed message in the voice session (S2 calls the field ``content``)."""

    type: Literal["text_message"]
    text: Text = Field(
        min_length=1, max_length=8000, validation_alias=AliasChoices("text", "content")
    )


class InterruptMsg(_ClientMsg):
    """The user asked the assistant to stop talking (e.g. a stop button)."""

    type: Literal["interrupt"]


ClientMessage = Annotated[
    Ping | AudioStartMsg | AudioStopMsg | TextMessage | InterruptMsg,
    Field(discriminator="type"),
]
client_message_adapter: TypeAdapter[ClientMessage] = TypeAdapter(ClientMessage)


# -- server -> client --------------------------------------------------------------------------
class _Data(BaseModel):
    model_config = ConfigDict(frozen=True)


class ReadyData(_Data):
    session_id: str
    config: SessionConfig
    input_sample_rate: int = 16000
    output_sample_rate: int


class PongData(_Data):
    ts: float | None
    server_ts: float


class SpeechData(_Data):
    at_ms: int


class TranscriptData(_Data):
    role: Role
    text: str
    is_final: bool
    partial: bool
    confidence: float | None = None
    language: str | None = None
    turn_id: int | None = None
    interrupted: bool = False
    emotion: Emotion | None = None  # a user's final, when the session detects emotion


class ResponseData(_Data):
    turn_id: int
    text: str
    done: bool = False


class AudioStartData(_Data):
    turn_id: int
    sample_rate: int
    encoding: Literal["pcm_s16le"] = "pcm_s16le"


class TurnData(_Data):
    turn_id: int


class InterruptedData(_Data):
    turn_id: int
    heard_text: str | None = None


class MetricsData(LatencyStages):
    turn_id: int


class ErrorData(_Data):
    code: str
    message: str
    # A warning is news about a turn that goes on (e.g. it was cut at the length limit).
    severity: Literal["error", "warning"] = "error"
    provider: str | None = None  # the provider that failed, when one did


class ActionData(_Data):
    """The assistant (a tool its model called) acts on the call: ``switch_to_text`` asks the
    client to continue in text; ``end_call`` is followed by the session's end once the
    turn's answer has played (the socket closes with 4410)."""

    turn_id: int
    action: ActionKind


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True)


class ReadyEvent(_Event):
    type: Literal["ready"] = "ready"
    data: ReadyData


class PongEvent(_Event):
    type: Literal["pong"] = "pong"
    data: PongData


class SpeechStartedEvent(_Event):
    type: Literal["speech_started"] = "speech_started"
    data: SpeechData


class SpeechStoppedEvent(_Event):
    type: Literal["speech_stopped"] = "speech_stopped"
    data: SpeechData


class TranscriptEvent(_Event):
    type: Literal["transcript"] = "transcript"
    data: TranscriptData


class ResponseEvent(_Event):
    type: Literal["response"] = "response"
    data: ResponseData


class AudioStartEvent(_Event):
    type: Literal["audio_start"] = "audio_start"
    data: AudioStartData


class AudioEndEvent(_Event):
    type: Literal["audio_end"] = "audio_end"
    data: TurnData


class InterruptedEvent(_Event):
    type: Literal["interrupted"] = "interrupted"
    data: InterruptedData


class AudioPauseEvent(_Event):
    """The user spoke over turn ``turn_id``: stop playing it and drop what is buffered; the
    server sends the rest again from where playback stopped if it resumes."""

    type: Literal["audio_pause"] = "audio_pause"
    data: TurnData


class AudioResumeEvent(_Event):
    """The overlap was a backchannel or noise: turn ``turn_id``'s audio follows again."""

    type: Literal["audio_resume"] = "audio_resume"
    data: TurnData


class MetricsEvent(_Event):
    type: Literal["metrics"] = "metrics"
    data: MetricsData


class ErrorEvent(_Event):
    type: Literal["error"] = "error"
    data: ErrorData


class ActionEvent(_Event):
    type: Literal["action"] = "action"
    data: ActionData


# A native server event: ``type`` names it and decides the one model of its ``data``.
ServerEvent = Annotated[
    ReadyEvent
    | PongEvent
    | SpeechStartedEvent
    | SpeechStoppedEvent
    | TranscriptEvent
    | ResponseEvent
    | AudioStartEvent
    | AudioEndEvent
    | InterruptedEvent
    | AudioPauseEvent
    | AudioResumeEvent
    | MetricsEvent
    | ErrorEvent
    | ActionEvent,
    Field(discriminator="type"),
]
server_event_adapter: TypeAdapter[ServerEvent] = TypeAdapter(ServerEvent)


class S2Event(BaseModel):
    """S2's flat events, sent next to the native ones."""

    model_config = ConfigDict(frozen=True)

    type: Literal[
        "transcription_complete",
        "response_generated",
        "voice_processing_complete",
        "voice_processing_error",
    ]
    text: str | None = None
    confidence: float | None = None
    error: str | None = None
    timestamp: datetime | None = None

    def dump(self) -> dict[str, Any]:
        """The wire form, leaving out fields this event does not carry."""
        return self.model_dump(mode="json", exclude_none=True)


# Close codes of the gateway's WebSocket (4000-4999 is the application range).
CLOSE_UNAUTHENTICATED = 4401  # no token, or one Parley does not accept
CLOSE_FORBIDDEN = 4403  # a valid token that may not do this
CLOSE_SESSION_NOT_FOUND = 4404
CLOSE_RATE_LIMITED = 4429  # too many sessions or connections; the reason says when to retry
CLOSE_SESSION_ENDED = 4410
CLOSE_REPLACED = 4409  # the same session connected again (a client reconnecting)
CLOSE_GOING_AWAY = 1001
