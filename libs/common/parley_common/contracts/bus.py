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


class EmotionLabel(StrEnum):
    """The tone of a user's turn."""

    NEUTRAL = "neutral"
    HAPPY = "happy"
    EXCITED = "excited"
    FRUSTRATED = "frustrated"
    ANGRY = "angry"
    SAD = "sad"


class Emotion(_Msg):
    """How a user's turn sounded (session option ``detect_emotion``): the words' sentiment
    and the voice's prosody placed in valence (-1 negative .. 1 positive) and arousal
    (-1 subdued .. 1 animated, next to how this user usually sounds); ``scores`` sum to 1."""

    label: EmotionLabel
    scores: dict[EmotionLabel, float]
    valence: float = Field(ge=-1, le=1)
    arousal: float = Field(ge=-1, le=1)


class Transcript(_Msg):
    """A partial or final transcript of the user's current utterance. When the user falls
    silent the STT publishes what it heard so far as a partial, with empty ``text`` when it
    heard no words (a cough, a hum): speech over the assistant is judged on it."""

    type: Literal["transcript"] = "transcript"
    text: str
    is_final: bool
    confidence: float | None = None
    language: str | None = None
    words: tuple[Word, ...] = ()
    audio_ms: int = 0
    # Milliseconds from the end of the turn (silence threshold reached, or push-to-talk
    # released) to this final being published; small when speculation paid off.
    finalize_ms: float | None = None
    # Finals only, when the session detects emotion.
    emotion: Emotion | None = None
    # The utterance's final text so far, made when the user fell silent and published before
    # the turn ends (``is_final`` false, so it is stored and shown only as a partial): the
    # dialogue may start its answer on it. The turn's final follows, or, if the user goes
    # on, ``SpeculationCancelled``.
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
    """The user's words of a turn as the dialogue took them (typed or transcribed): the
    first message of every turn on the reply subject."""

    type: Literal["user.text"] = "user.text"
    text: str
    typed: bool
    # The language the answer is asked in (the user's, as last heard): the TTS picks its voice.
    language: str | None = None
    # Answered from a speculative transcript: the turn is not the user's yet. Its text and
    # audio are made but held by the gateway until ``TurnCommitted``; nothing of it is stored.
    speculative: bool = False


class TurnCommitted(_Msg):
    """The speculative turn (``turn_id`` header) is the user's: the gateway plays what it held."""

    type: Literal["turn.committed"] = "turn.committed"


ReplyMessage = Annotated[
    ReplyDelta | ReplyDone | UserText | TurnCommitted, Field(discriminator="type")
]


# -- interrupt: broadcast cancel of a turn -----------------------------------------------------
class InterruptReason(StrEnum):
    """Why a turn was cancelled."""

    BARGE_IN = "barge_in"
    USER_TEXT = "user_text"
    CLIENT = "client"
    SESSION_END = "session_end"
    SUPERSEDED = "superseded"
    # A speculative answer the user never heard: the user went on speaking.
    SPECULATION = "speculation"


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


class SpeculationCancelled(_Msg):
    """From the STT: the user spoke again after a speculative transcript, so any answer
    started on it is to be dropped (the dialogue then interrupts that turn, reason
    ``speculation``)."""

    type: Literal["speculation.cancelled"] = "speculation.cancelled"


class OverlapStarted(_Msg):
    """From the gateway: the user speaks over turn ``turn_id``, whose audio is paused while
    the gateway judges it; transcripts wait for the verdict (``OverlapDismissed``, or an
    ``Interrupt`` with reason barge_in) before they are answered."""

    type: Literal["overlap.started"] = "overlap.started"
    turn_id: int


class OverlapDismissed(_Msg):
    """From the gateway: the user's speech over turn ``turn_id`` was a backchannel or noise,
    so the turn goes on, and that utterance's transcript (``text``, may be empty) is no
    question."""

    type: Literal["overlap.dismissed"] = "overlap.dismissed"
    turn_id: int
    text: str


InterruptMessage = Annotated[
    Interrupt | Heard | SpeculationCancelled | OverlapStarted | OverlapDismissed,
    Field(discriminator="type"),
]


# -- control: client intents relayed by the gateway -------------------------------------------
class TextInput(_Msg):
    """A message typed by the user, answered like a spoken one."""

    type: Literal["text_input"] = "text_input"
    text: str = Field(min_length=1, max_length=8000)


class SessionEnd(_Msg):
    """The session ended; workers release it."""

    type: Literal["session.end"] = "session.end"


class IdlePrompt(_Msg):
    """From the gateway: the user has been silent for the session's ``idle_prompt_s`` since
    the assistant's turn; the dialogue asks, as a turn of its own, whether they are still
    there."""

    type: Literal["idle.prompt"] = "idle.prompt"


ControlMessage = Annotated[TextInput | SessionEnd | IdlePrompt, Field(discriminator="type")]


# -- status: per-turn latency and service errors -----------------------------------------------
class LatencyStages(BaseModel):
    """Latency of a turn's stages in milliseconds, declared once: the bus, the durable event
    and the client's ``metrics`` event all carry these fields. Each service fills its own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stt_final_ms: float | None = None
    llm_first_token_ms: float | None = None
    tts_first_byte_ms: float | None = None
    voice_to_voice_ms: float | None = None
    interrupt_ms: float | None = None

    def merged(self, other: LatencyStages) -> LatencyStages:
        """These stages with ``other``'s measured ones on top."""
        return self.model_copy(update=other.model_dump(exclude_none=True))


class TurnLatency(_Msg):
    """Latency a worker measured for one turn, reported to the gateway."""

    type: Literal["turn.latency"] = "turn.latency"
    turn_id: int
    stages: LatencyStages


class ServiceError(_Msg):
    """A failure the user should hear about (provider down, bad voice...). A ``warning`` is
    news about a turn that still goes on (e.g. it was cut at the length limit)."""

    type: Literal["service.error"] = "service.error"
    service: str
    code: str
    message: str
    severity: Literal["error", "warning"] = "error"
    provider: str | None = None


# What the assistant may do to the call itself (through the built-in tools of that name).
ActionKind = Literal["end_call", "switch_to_text"]


class AssistantAction(_Msg):
    """A tool the model called asks the gateway to act on the call: hang up once the turn's
    answer has been heard (``end_call``), or tell the client to continue in text."""

    type: Literal["assistant.action"] = "assistant.action"
    turn_id: int
    action: ActionKind


StatusMessage = Annotated[TurnLatency | ServiceError | AssistantAction, Field(discriminator="type")]


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
    draining: bool = False  # takes no new sessions; finishing its turns
    leaving: bool = False  # the last beat: ``sessions`` are to be handed over now
    # Its process's CPU since the previous beat, in % of one core: a placement tie-breaker.
    cpu_percent: float = 0.0


# -- service queries (request/reply to a queue group) -----------------------------------------
class VoiceEntry(_Msg):
    """A voice a TTS provider offers."""

    id: str
    name: str
    language: str | None = None
    gender: str | None = None
    description: str | None = None
    custom: bool = False  # cloned from the caller's samples (listed for its owner only)


class VoicesRequest(_Msg):
    """Which voices does ``provider`` offer?"""

    type: Literal["voices.request"] = "voices.request"
    provider: str


class VoicesReply(_Msg):
    """The voices of a provider, or why they cannot be listed."""

    type: Literal["voices.reply"] = "voices.reply"
    provider: str
    voices: tuple[VoiceEntry, ...] = ()
    error: str | None = None


class ProviderStatus(_Msg):
    """Whether sessions may choose a provider on this deployment, and if not, why."""

    name: str
    available: bool
    reason: str | None = None


class ProvidersReply(_Msg):
    """The providers a service's workers can serve (answer to ``providers`` queries)."""

    type: Literal["providers.reply"] = "providers.reply"
    service: str
    providers: tuple[ProviderStatus, ...] = ()


speech_adapter: TypeAdapter[SpeechStarted | SpeechStopped] = TypeAdapter(SpeechMessage)
transcript_adapter: TypeAdapter[Transcript] = TypeAdapter(TranscriptMessage)
reply_adapter: TypeAdapter[ReplyDelta | ReplyDone | UserText | TurnCommitted] = TypeAdapter(
    ReplyMessage
)
interrupt_adapter: TypeAdapter[
    Interrupt | Heard | SpeculationCancelled | OverlapStarted | OverlapDismissed
] = TypeAdapter(InterruptMessage)
control_adapter: TypeAdapter[TextInput | SessionEnd | IdlePrompt] = TypeAdapter(ControlMessage)
status_adapter: TypeAdapter[TurnLatency | ServiceError | AssistantAction] = TypeAdapter(
    StatusMessage
)
