"""Messages that travel on the per-session real-time subjects (core NATS).

Audio never appears here: it is raw PCM16 in the payload of ``audio.in`` / ``audio.out`` with
its metadata in headers (see ``parley_common.bus.headers``). Each subject carries one union
below, discriminated by ``type``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from parley_common.contracts.session import SessionConfig


class _Msg(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Role(StrEnum):
    """Who said a turn."""

    USER = "user"
    ASSISTANT = "assistant"
    SYSTEM = "system"


# -- speech: VAD events from the STT worker ---------------------------------------------------
class SpeechStarted(_Msg):
    """The user started speaking; ``at_ms`` is the offset in the session's input audio."""

    type: Literal["speech_started"] = "speech_started"
    at_ms: int


class SpeechStopped(_Msg):
    """The user stopped speaking (start of the silence that may end the turn)."""

    type: Literal["speech_stopped"] = "speech_stopped"
    at_ms: int
    duration_ms: int


SpeechMessage = Annotated[SpeechStarted | SpeechStopped, Field(discriminator="type")]


# -- transcript --------------------------------------------------------------------------------
class Word(_Msg):
    """One recognised word with its timing in seconds from the start of the utterance."""

    word: str
    start: float
    end: float
    confidence: float | None = None


class Transcript(_Msg):
    """A partial or final transcript of the user's current utterance."""

    type: Literal["transcript"] = "transcript"
    text: str
    is_final: bool
    confidence: float | None = None
    language: str | None = None
    words: tuple[Word, ...] = ()
    audio_ms: int = 0
    # Set on a final that was produced speculatively before the silence window elapsed and
    # then confirmed: downstream may already have started on it.
    speculative: bool = False


TranscriptMessage = Annotated[Transcript, Field(discriminator="type")]


# -- reply: the assistant's text for a turn ----------------------------------------------------
class ReplyDelta(_Msg):
    """A piece of the assistant's answer, in order (``seq`` header)."""

    type: Literal["reply.delta"] = "reply.delta"
    text: str


class ReplyDone(_Msg):
    """The answer of a turn is complete (or was cut short)."""

    type: Literal["reply.done"] = "reply.done"
    text: str
    interrupted: bool = False
    finish_reason: str = "stop"


class UserText(_Msg):
    """The user's words of a turn as the dialogue took them (typed or transcribed)."""

    type: Literal["user.text"] = "user.text"
    text: str
    typed: bool


ReplyMessage = Annotated[ReplyDelta | ReplyDone | UserText, Field(discriminator="type")]


# -- interrupt: broadcast cancel of a turn -----------------------------------------------------
class InterruptReason(StrEnum):
    """Why a turn was cancelled."""

    BARGE_IN = "barge_in"
    USER_TEXT = "user_text"
    CLIENT = "client"
    SESSION_END = "session_end"


class Interrupt(_Msg):
    """Cancel turn ``turn_id`` everywhere (LLM, TTS, gateway, client)."""

    type: Literal["interrupt"] = "interrupt"
    turn_id: int
    reason: InterruptReason


class Heard(_Msg):
    """How much of an interrupted turn reached the user's ears, reported by the gateway."""

    type: Literal["heard"] = "heard"
    turn_id: int
    audio_ms: int
    chars: int


InterruptMessage = Annotated[Interrupt | Heard, Field(discriminator="type")]


# -- control: client intents relayed by the gateway -------------------------------------------
class TextInput(_Msg):
    """A message typed by the user, answered like a spoken one."""

    type: Literal["text_input"] = "text_input"
    text: str = Field(min_length=1, max_length=8000)


class PushToTalk(_Msg):
    """Push-to-talk: ``start`` opens an utterance, ``stop`` ends the turn now."""

    type: Literal["push_to_talk"] = "push_to_talk"
    action: Literal["start", "stop"]


class SessionEnd(_Msg):
    """The session ended; workers release it."""

    type: Literal["session.end"] = "session.end"


ControlMessage = Annotated[TextInput | PushToTalk | SessionEnd, Field(discriminator="type")]


# -- metrics: per-turn latency ----------------------------------------------------------------
class TurnLatency(_Msg):
    """Latency of one turn's stages in milliseconds; None where a stage did not happen."""

    type: Literal["turn.latency"] = "turn.latency"
    turn_id: int
    stt_final_ms: float | None = None
    llm_first_token_ms: float | None = None
    tts_first_byte_ms: float | None = None
    voice_to_voice_ms: float | None = None
    interrupt_ms: float | None = None


MetricsMessage = Annotated[TurnLatency, Field(discriminator="type")]


# -- worker assignment ------------------------------------------------------------------------
class SessionAssign(_Msg):
    """Request to a service's queue group: one worker takes this session."""

    type: Literal["session.assign"] = "session.assign"
    session_id: str
    user_id: str
    config: SessionConfig


class AssignAck(_Msg):
    """A worker's answer to ``SessionAssign``."""

    type: Literal["session.assigned"] = "session.assigned"
    session_id: str
    worker_id: str
    ok: bool = True
    error: str | None = None


class WorkerHeartbeat(_Msg):
    """Periodic proof of life of a worker, listing the sessions it holds."""

    type: Literal["worker.heartbeat"] = "worker.heartbeat"
    service: str
    worker_id: str
    sessions: tuple[str, ...] = ()


speech_adapter: TypeAdapter[SpeechStarted | SpeechStopped] = TypeAdapter(SpeechMessage)
transcript_adapter: TypeAdapter[Transcript] = TypeAdapter(TranscriptMessage)
reply_adapter: TypeAdapter[ReplyDelta | ReplyDone | UserText] = TypeAdapter(ReplyMessage)
interrupt_adapter: TypeAdapter[Interrupt | Heard] = TypeAdapter(InterruptMessage)
control_adapter: TypeAdapter[TextInput | PushToTalk | SessionEnd] = TypeAdapter(ControlMessage)
metrics_adapter: TypeAdapter[TurnLatency] = TypeAdapter(MetricsMessage)
