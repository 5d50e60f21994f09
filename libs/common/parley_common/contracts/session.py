"""Session configuration: what a client chooses when it starts a conversation."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    AliasChoices,
    AliasGenerator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)
from pydantic.alias_generators import to_camel

from parley_common.languages import LANGUAGE_TAG_PATTERN, check_language

# PostgreSQL text cannot hold NUL: refused where it is sent (422), not where it is stored.
NO_NUL = r"^[^\x00]*$"
Text = Annotated[str, StringConstraints(pattern=NO_NUL)]


class ResponseStyle(StrEnum):
    """How long the assistant's answers are."""

    CONCISE = "concise"
    CONVERSATIONAL = "conversational"
    DETAILED = "detailed"

    @property
    def max_tokens(self) -> int:
        """The LLM token budget of one answer in this style."""
        return _MAX_TOKENS[self]


_MAX_TOKENS = {
    ResponseStyle.CONCISE: 150,
    ResponseStyle.CONVERSATIONAL: 500,
    ResponseStyle.DETAILED: 1000,
}


class InterruptSensitivity(StrEnum):
    """How quickly a turn ends on silence and how easily the user barges in."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"

    @property
    def silence_ms(self) -> int:
        """Silence that ends the user's turn."""
        return _SILENCE_MS[self]

    @property
    def barge_in_ms(self) -> int | None:
        """Speech that must last this long to interrupt the assistant; None = never."""
        return _BARGE_IN_MS[self]


_SILENCE_MS = {
    InterruptSensitivity.LOW: 2000,
    InterruptSensitivity.MEDIUM: 1000,
    InterruptSensitivity.HIGH: 500,
}
# Low sensitivity lets the assistant finish: S1 documents "AI finishes responses before
# accepting interrupts".
_BARGE_IN_MS: dict[InterruptSensitivity, int | None] = {
    InterruptSensitivity.LOW: None,
    InterruptSensitivity.MEDIUM: 200,
    InterruptSensitivity.HIGH: 100,
}


class SttProvider(StrEnum):
    """Speech-to-text adapters a session can pick. ``whisper`` is OpenAI's hosted Whisper (S1)."""

    LOCAL = "local"
    WHISPER = "whisper"
    OPENAI = "openai"
    GROQ = "groq"
    DEEPGRAM = "deepgram"
    ASSEMBLYAI = "assemblyai"
    SCRIPTED = "scripted"


class LlmProvider(StrEnum):
    """Dialogue model adapters a session can pick."""

    LOCAL = "local"
    OPENAI = "openai"
    GROQ = "groq"
    ANTHROPIC = "anthropic"
    OPENAI_COMPATIBLE = "openai_compatible"
    SCRIPTED = "scripted"


class TtsProvider(StrEnum):
    """Text-to-speech adapters a session can pick."""

    LOCAL = "local"
    OPENAI = "openai"
    ELEVENLABS = "elevenlabs"
    DEEPGRAM = "deepgram"
    PLAYHT = "playht"
    SCRIPTED = "scripted"


OutputSampleRate = Literal[8000, 16000, 22050, 24000, 44100, 48000]


class EchoCancellation(StrEnum):
    """Who removes the assistant's voice from the user's microphone audio.

    ``client``: the client does (a browser's getUserMedia; the call page says so). ``server``:
    the gateway runs WebRTC's AEC3 on the uplink, the audio it played out as reference.
    ``auto``: the server for clients streaming PCM over a WebSocket, none where the transport
    brings its own (phone calls have their echo gate). ``off``: nobody.
    """

    AUTO = "auto"
    SERVER = "server"
    CLIENT = "client"
    OFF = "off"


def _either_spelling(name: str) -> AliasChoices:
    return AliasChoices(name, to_camel(name))


class SessionConfig(BaseModel):
    """Per-session choices. Accepts snake_case (``/api/v1``) and camelCase (S1) names."""

    # Read in either spelling, written (and documented) in snake_case: the OpenAPI schema
    # is then what the v1 API really returns; S1's routes camelCase their own output.
    model_config = ConfigDict(
        extra="forbid",
        alias_generator=AliasGenerator(validation_alias=_either_spelling),
        frozen=True,
    )

    stt_provider: SttProvider = SttProvider.LOCAL
    llm_provider: LlmProvider = LlmProvider.LOCAL
    tts_provider: TtsProvider = TtsProvider.LOCAL
    # None = the provider's configured default model.
    stt_model: Text | None = Field(default=None, min_length=1, max_length=200)
    llm_model: Text | None = Field(default=None, min_length=1, max_length=200)
    tts_model: Text | None = Field(default=None, min_length=1, max_length=200)
    # Tried in order when the stage's provider fails or misses its first-result deadline;
    # empty = the service's <STAGE>_FALLBACK default.
    stt_fallback: tuple[SttProvider, ...] = Field(default=(), max_length=4)
    llm_fallback: tuple[LlmProvider, ...] = Field(default=(), max_length=4)
    tts_fallback: tuple[TtsProvider, ...] = Field(default=(), max_length=4)
    voice: Text | None = Field(default=None, max_length=200)
    # Speaking rate, 1.0 = the voice's own; passed to providers that have it (S2's tts_speed).
    speed: float = Field(default=1.0, ge=0.5, le=2.0)
    # None asks the STT provider to detect the language.
    language: Text | None = Field(
        default="en",
        min_length=2,
        max_length=16,
        json_schema_extra={"pattern": LANGUAGE_TAG_PATTERN},
    )
    response_style: ResponseStyle = ResponseStyle.CONVERSATIONAL
    interrupt_sensitivity: InterruptSensitivity = InterruptSensitivity.MEDIUM
    # Semantic end of turn: a local model judges, when the user falls silent, whether they
    # have finished (a finished utterance ends after ~200 ms of silence, an unfinished one
    # may pause longer). False: the sensitivity's silence alone ends a turn.
    semantic_turn: bool = True
    # Speculative answer: when the user falls silent the answer and its first audio are made
    # at once, held by the gateway until the turn ends, and dropped if the user goes on.
    # Off by default for now: with the local models on 2 cores it measured slower (see
    # docs/benchmarks.md, "Speculative answer").
    speculative_answer: bool = False
    # Label each user turn's tone (text sentiment plus the voice's prosody): on the final
    # transcript, the stored transcript and the call page, and told to the assistant.
    detect_emotion: bool = False
    system_prompt: Text | None = Field(default=None, max_length=8000)
    # Answer from the chatbot's knowledge base: each user turn retrieves the closest passages
    # of its documents into the prompt (the chatbot's voice config may turn it on).
    use_rag: bool = False
    # An enum in the schema, so clients (and generated code) know the rates that work.
    output_sample_rate: OutputSampleRate = 24000
    echo_cancellation: EchoCancellation = EchoCancellation.AUTO
    # Speech over the assistant: "pause" its audio and resume after a backchannel or noise,
    # or "stop" the turn at once as soon as the speech lasts the sensitivity's minimum.
    barge_in: Literal["pause", "stop"] = "pause"
    # Seconds of silence after the assistant's turn before it asks, once, whether the user
    # is still there; None = never.
    idle_prompt_s: float | None = Field(default=None, ge=2.0, le=600.0)

    # One of the nine languages (a region tag such as es-MX included): a 422 names them.
    _supported_language = field_validator("language")(check_language)


class SessionStatus(StrEnum):
    """Lifecycle of a session row; only ACTIVE -> ENDED is legal."""

    ACTIVE = "active"
    ENDED = "ended"


_CHATBOT_ALIASES = AliasChoices("chatbot_id", "chatbotId", "assistant_id", "assistantId")


class CreateSessionRequest(SessionConfig):
    """Body of ``POST /api/v1/sessions`` and S1's ``POST /api/voice/start``."""

    user_id: Text = Field(default="anonymous", min_length=1, max_length=200)
    chatbot_id: Text | None = Field(default=None, max_length=200, validation_alias=_CHATBOT_ALIASES)

    def session_config(self) -> SessionConfig:
        """The configuration part of the request, without the identities."""
        return SessionConfig.model_validate(self.model_dump(exclude={"user_id", "chatbot_id"}))
