"""OpenAI Realtime's wire events (GA protocol), as the ``openai`` SDK's types define them.

Client events are validated leniently, as OpenAI's server does with fields it does not use
(unknown fields are ignored); the fields Parley acts on are checked strictly. Server events
are built from models here and nowhere else, so their shapes are written once.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter


def new_id(prefix: str) -> str:
    """An id in OpenAI's style: ``event_…``, ``item_…``, ``resp_…``, ``sess_…``."""
    return f"{prefix}_{secrets.token_hex(10)}"


# -- conversation items ----------------------------------------------------------------------
PartType = Literal["input_text", "input_audio", "output_text", "output_audio"]


class ItemContent(BaseModel):
    """One content part of an item; Parley keeps text and transcripts, never the audio."""

    model_config = ConfigDict(extra="forbid")

    type: PartType
    text: str | None = None
    transcript: str | None = None


class Item(BaseModel):
    """A message of the conversation as the client sees it."""

    model_config = ConfigDict(extra="forbid")

    id: str
    object: Literal["realtime.item"] = "realtime.item"
    type: Literal["message"] = "message"
    status: Literal["completed", "incomplete", "in_progress"] = "completed"
    role: Literal["user", "assistant"]
    content: list[ItemContent] = Field(default_factory=list)


# -- client -> server ------------------------------------------------------------------------
class _ClientEvent(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    event_id: str | None = None


class SessionUpdate(_ClientEvent):
    """``session.update``; the session object is read by ``options.SessionUpdateBody``."""

    type: Literal["session.update"]
    session: dict[str, Any]


class AudioAppend(_ClientEvent):
    """``input_audio_buffer.append``: base64 audio in the session's input format."""

    type: Literal["input_audio_buffer.append"]
    audio: str


class AudioCommit(_ClientEvent):
    """``input_audio_buffer.commit``."""

    type: Literal["input_audio_buffer.commit"]


class AudioClear(_ClientEvent):
    """``input_audio_buffer.clear``."""

    type: Literal["input_audio_buffer.clear"]


class InputContent(BaseModel):
    """A content part of an item the client creates."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    type: str
    text: str | None = None
    audio: str | None = None


class InputItem(BaseModel):
    """An item the client creates; only user messages can enter Parley's memory."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str | None = Field(default=None, min_length=1, max_length=64)
    type: str = "message"
    role: str | None = None
    content: tuple[InputContent, ...] = ()


class ItemCreate(_ClientEvent):
    """``conversation.item.create``."""

    type: Literal["conversation.item.create"]
    item: InputItem
    previous_item_id: str | None = None


class ItemRetrieve(_ClientEvent):
    """``conversation.item.retrieve``."""

    type: Literal["conversation.item.retrieve"]
    item_id: str


class ItemTruncate(_ClientEvent):
    """``conversation.item.truncate``: the client played ``audio_end_ms`` of the item."""

    type: Literal["conversation.item.truncate"]
    item_id: str
    content_index: int = Field(ge=0)
    audio_end_ms: int = Field(ge=0)


class ItemDelete(_ClientEvent):
    """``conversation.item.delete``."""

    type: Literal["conversation.item.delete"]
    item_id: str


class ResponseParams(BaseModel):
    """What ``response.create`` may ask of one response (the rest is ignored)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    conversation: str | None = None
    input: list[Any] | None = None
    output_modalities: list[Literal["text", "audio"]] | None = Field(
        default=None, min_length=1, max_length=1
    )
    metadata: dict[str, str] | None = None


class ResponseCreate(_ClientEvent):
    """``response.create``."""

    type: Literal["response.create"]
    response: ResponseParams | None = None


class ResponseCancel(_ClientEvent):
    """``response.cancel``."""

    type: Literal["response.cancel"]
    response_id: str | None = None


class OutputAudioClear(_ClientEvent):
    """``output_audio_buffer.clear``: WebRTC and SIP only in OpenAI's API."""

    type: Literal["output_audio_buffer.clear"]


ClientEvent = Annotated[
    SessionUpdate
    | AudioAppend
    | AudioCommit
    | AudioClear
    | ItemCreate
    | ItemRetrieve
    | ItemTruncate
    | ItemDelete
    | ResponseCreate
    | ResponseCancel
    | OutputAudioClear,
    Field(discriminator="type"),
]
client_event_adapter: TypeAdapter[ClientEvent] = TypeAdapter(ClientEvent)


# -- server -> client ------------------------------------------------------------------------
class ServerEvent(BaseModel):
    """What every server event carries."""

    model_config = ConfigDict(frozen=True)

    event_id: str = Field(default_factory=lambda: new_id("event"))


class ErrorBody(BaseModel):
    """OpenAI's error object: ``type`` is the class (``invalid_request_error``,
    ``server_error``), ``code`` Parley's stable code, ``event_id`` the client event's."""

    model_config = ConfigDict(frozen=True)

    type: str
    code: str | None = None
    message: str
    param: str | None = None
    event_id: str | None = None


class ErrorEvent(ServerEvent):
    type: Literal["error"] = "error"
    error: ErrorBody


class SessionCreated(ServerEvent):
    type: Literal["session.created"] = "session.created"
    session: dict[str, Any]


class SessionUpdated(ServerEvent):
    type: Literal["session.updated"] = "session.updated"
    session: dict[str, Any]


class SpeechStarted(ServerEvent):
    type: Literal["input_audio_buffer.speech_started"] = "input_audio_buffer.speech_started"
    audio_start_ms: int
    item_id: str


class SpeechStopped(ServerEvent):
    type: Literal["input_audio_buffer.speech_stopped"] = "input_audio_buffer.speech_stopped"
    audio_end_ms: int
    item_id: str


class AudioCommitted(ServerEvent):
    type: Literal["input_audio_buffer.committed"] = "input_audio_buffer.committed"
    item_id: str
    previous_item_id: str | None = None


class AudioCleared(ServerEvent):
    type: Literal["input_audio_buffer.cleared"] = "input_audio_buffer.cleared"


class ItemAdded(ServerEvent):
    type: Literal["conversation.item.added"] = "conversation.item.added"
    item: Item
    previous_item_id: str | None = None


class ItemDone(ServerEvent):
    type: Literal["conversation.item.done"] = "conversation.item.done"
    item: Item
    previous_item_id: str | None = None


class ItemRetrieved(ServerEvent):
    type: Literal["conversation.item.retrieved"] = "conversation.item.retrieved"
    item: Item


class ItemTruncated(ServerEvent):
    type: Literal["conversation.item.truncated"] = "conversation.item.truncated"
    item_id: str
    content_index: int
    audio_end_ms: int


class ItemDeleted(ServerEvent):
    type: Literal["conversation.item.deleted"] = "conversation.item.deleted"
    item_id: str


class TranscriptionDelta(ServerEvent):
    type: Literal["conversation.item.input_audio_transcription.delta"] = (
        "conversation.item.input_audio_transcription.delta"
    )
    item_id: str
    content_index: int = 0
    delta: str


class DurationUsage(BaseModel):
    model_config = ConfigDict(frozen=True)

    type: Literal["duration"] = "duration"
    seconds: float


class TranscriptionCompleted(ServerEvent):
    type: Literal["conversation.item.input_audio_transcription.completed"] = (
        "conversation.item.input_audio_transcription.completed"
    )
    item_id: str
    content_index: int = 0
    transcript: str
    usage: DurationUsage


class Usage(BaseModel):
    """A response's token usage, as the dialogue worker reported it."""

    model_config = ConfigDict(frozen=True)

    total_tokens: int
    input_tokens: int
    output_tokens: int


class StatusDetails(BaseModel):
    model_config = ConfigDict(frozen=True)

    type: Literal["completed", "cancelled", "incomplete", "failed"]
    reason: Literal["turn_detected", "client_cancelled"] | None = None
    error: dict[str, str] | None = None


class Response(BaseModel):
    """A response as ``response.created`` / ``response.done`` show it."""

    model_config = ConfigDict(frozen=True)

    id: str
    object: Literal["realtime.response"] = "realtime.response"
    status: Literal["in_progress", "completed", "cancelled", "failed", "incomplete"]
    status_details: StatusDetails | None = None
    output: list[Item] = Field(default_factory=list)
    output_modalities: list[Literal["text", "audio"]]
    conversation_id: str
    metadata: dict[str, str] | None = None
    usage: Usage | None = None


class ResponseCreated(ServerEvent):
    type: Literal["response.created"] = "response.created"
    response: Response


class ResponseDone(ServerEvent):
    type: Literal["response.done"] = "response.done"
    response: Response


class OutputItemAdded(ServerEvent):
    type: Literal["response.output_item.added"] = "response.output_item.added"
    response_id: str
    output_index: int = 0
    item: Item


class OutputItemDone(ServerEvent):
    type: Literal["response.output_item.done"] = "response.output_item.done"
    response_id: str
    output_index: int = 0
    item: Item


class Part(BaseModel):
    model_config = ConfigDict(frozen=True)

    type: Literal["audio", "text"]
    transcript: str | None = None
    text: str | None = None


class _PartEvent(ServerEvent):
    """An event about one content part of a response's output item."""

    response_id: str
    item_id: str
    output_index: int = 0
    content_index: int = 0


class ContentPartAdded(_PartEvent):
    type: Literal["response.content_part.added"] = "response.content_part.added"
    part: Part


class ContentPartDone(_PartEvent):
    type: Literal["response.content_part.done"] = "response.content_part.done"
    part: Part


class OutputAudioDelta(_PartEvent):
    type: Literal["response.output_audio.delta"] = "response.output_audio.delta"
    delta: str  # base64


class OutputAudioDone(_PartEvent):
    type: Literal["response.output_audio.done"] = "response.output_audio.done"


class OutputTranscriptDelta(_PartEvent):
    type: Literal["response.output_audio_transcript.delta"] = (
        "response.output_audio_transcript.delta"
    )
    delta: str


class OutputTranscriptDone(_PartEvent):
    type: Literal["response.output_audio_transcript.done"] = "response.output_audio_transcript.done"
    transcript: str


class OutputTextDelta(_PartEvent):
    type: Literal["response.output_text.delta"] = "response.output_text.delta"
    delta: str


class OutputTextDone(_PartEvent):
    type: Literal["response.output_text.done"] = "response.output_text.done"
    text: str


class RateLimitsUpdated(ServerEvent):
    """Parley limits sessions, not a response's requests or tokens: the list is empty."""

    type: Literal["rate_limits.updated"] = "rate_limits.updated"
    rate_limits: list[dict[str, Any]] = Field(default_factory=list)
