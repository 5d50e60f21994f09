"""A Realtime session's options: OpenAI's ``session`` object and the Parley session behind it.

``session.update`` changes some options at the edge at any time (audio formats, turn
detection on or off, output modality, tools) and some in the pipeline (instructions, voice,
speed, language, turn-taking sensitivity, providers), which are fixed once the Parley session
has started, as every Parley session's options are. ``session.updated`` always shows the
effective values, so a client can see what Parley made of a request: a silence of 700 ms is
the nearest sensitivity's (500 ms), ``create_response`` is always true (Parley answers every
user turn), tools are listed but not called.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from parley_common.contracts.session import InterruptSensitivity, ResponseStyle, SessionConfig
from parley_common.errors import BadInputError, ConflictError
from parley_gateway.realtime.client import describe
from parley_gateway.realtime.openai.codecs import PCM_RATE, AudioFormatType, format_rate
from parley_gateway.realtime.openai.wire import new_id

# The beta protocol's names of the same formats.
_LEGACY_FORMATS = {"pcm16": "audio/pcm", "g711_ulaw": "audio/pcmu", "g711_alaw": "audio/pcma"}
# OpenAI's built-in voices: a client naming one that Parley's TTS does not offer gets the
# provider's default voice rather than a refusal (apps set them without a second thought).
OPENAI_VOICES = frozenset(
    {"alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar"}
    | {"fable", "onyx", "nova"}
)
# What OpenAI's defaults would be for the parameters Parley's VAD does not take.
_DEFAULT_THRESHOLD = 0.5
_DEFAULT_PREFIX_PADDING_MS = 300
_EAGERNESS = {
    "low": InterruptSensitivity.LOW,
    "medium": InterruptSensitivity.MEDIUM,
    "auto": InterruptSensitivity.MEDIUM,
    "high": InterruptSensitivity.HIGH,
}
# The session options the OpenAI fields map to: the ``parley`` extension may not set the
# output rate, which follows the output format.
_GATEWAY_OWNED = frozenset({"output_sample_rate"})


def _format(value: Any) -> Any:
    if isinstance(value, str):
        return {"type": _LEGACY_FORMATS.get(value, value)}
    return value


class AudioFormat(BaseModel):
    """``{"type": "audio/pcm", "rate": 24000}``, ``{"type": "audio/pcmu"}``, ``audio/pcma``."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    type: AudioFormatType = "audio/pcm"
    rate: Literal[24000] | None = None


FormatField = Annotated[AudioFormat, BeforeValidator(_format)]


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class ServerVad(_Lenient):
    type: Literal["server_vad"]
    threshold: float | None = Field(default=None, ge=0, le=1)
    prefix_padding_ms: int | None = Field(default=None, ge=0)
    silence_duration_ms: int | None = Field(default=None, ge=0)
    idle_timeout_ms: int | None = Field(default=None, ge=0)
    create_response: bool | None = None
    interrupt_response: bool | None = None


class SemanticVad(_Lenient):
    type: Literal["semantic_vad"]
    eagerness: Literal["low", "medium", "high", "auto"] | None = None
    create_response: bool | None = None
    interrupt_response: bool | None = None


TurnDetection = Annotated[ServerVad | SemanticVad, Field(discriminator="type")]


class Transcription(_Lenient):
    model: str | None = None
    language: str | None = None
    prompt: str | None = None


class AudioInputUpdate(_Lenient):
    format: FormatField | None = None
    noise_reduction: dict[str, Any] | None = None
    transcription: Transcription | None = None
    turn_detection: TurnDetection | None = None


class VoiceRef(_Lenient):
    id: str


class AudioOutputUpdate(_Lenient):
    format: FormatField | None = None
    voice: str | VoiceRef | None = None
    speed: float | None = None


class AudioUpdate(_Lenient):
    input: AudioInputUpdate | None = None
    output: AudioOutputUpdate | None = None


class SessionUpdateBody(_Lenient):
    """The ``session`` of ``session.update`` (GA); fields present are changed, ``null``
    clears (``turn_detection: null`` is manual commit)."""

    type: Literal["realtime"] = "realtime"
    model: str | None = None
    instructions: str | None = None
    output_modalities: list[Literal["text", "audio"]] | None = Field(
        default=None, min_length=1, max_length=1
    )
    audio: AudioUpdate | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    max_output_tokens: int | Literal["inf"] | None = None
    # Parley's extension: session options by their Parley names (providers, models...).
    parley: dict[str, Any] | None = None


def parse_update(session: dict[str, Any]) -> SessionUpdateBody:
    """The ``session`` object of an update, or a BadInputError naming what is wrong."""
    try:
        return SessionUpdateBody.model_validate(session)
    except ValidationError as exc:
        raise BadInputError(f"session: {describe(exc)}", code="invalid_session") from exc


def _sensitivity(detection: ServerVad | SemanticVad) -> InterruptSensitivity:
    if detection.interrupt_response is False:
        return InterruptSensitivity.LOW  # the one sensitivity that never barges in
    if isinstance(detection, SemanticVad):
        return _EAGERNESS[detection.eagerness or "auto"]
    silence = detection.silence_duration_ms
    if silence is None:
        return InterruptSensitivity.HIGH  # OpenAI's default silence is 500 ms
    if silence <= 750:
        return InterruptSensitivity.HIGH
    return InterruptSensitivity.MEDIUM if silence <= 1500 else InterruptSensitivity.LOW


def _response_style(max_tokens: int | Literal["inf"]) -> ResponseStyle:
    if max_tokens == "inf":
        return ResponseStyle.DETAILED
    return next((s for s in ResponseStyle if max_tokens <= s.max_tokens), ResponseStyle.DETAILED)


@dataclass
class RealtimeOptions:
    """The effective options of one Realtime connection."""

    model: str
    base: SessionConfig  # Parley's defaults with the model's profile on top
    id: str = field(default_factory=lambda: new_id("sess"))
    modality: Literal["audio", "text"] = "audio"
    input_format: AudioFormatType = "audio/pcm"
    output_format: AudioFormatType = "audio/pcm"
    turn_detection: ServerVad | SemanticVad | None = None
    transcription: Transcription | None = None
    noise_reduction: dict[str, Any] | None = None
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: str | dict[str, Any] = "auto"
    chosen: dict[str, Any] = field(default_factory=dict)  # Parley options from OpenAI fields
    parley: dict[str, Any] = field(default_factory=dict)  # the extension's, applied last
    requested_voice: str | None = None
    output_sample_rate: int | None = None  # fixed when the Parley session starts

    @classmethod
    def create(cls, model: str, base: SessionConfig) -> RealtimeOptions:
        """A new connection's options: turn detection as the profile's (semantic or by
        silence alone) at its sensitivity."""
        sensitivity = base.interrupt_sensitivity
        barges_in = sensitivity.barge_in_ms is not None
        detection: ServerVad | SemanticVad = ServerVad(
            type="server_vad",
            silence_duration_ms=sensitivity.silence_ms,
            interrupt_response=barges_in,
        )
        if base.semantic_turn:
            detection = SemanticVad(
                type="semantic_vad", eagerness=sensitivity.value, interrupt_response=barges_in
            )
        return cls(model=model, base=base, turn_detection=detection)

    @property
    def manual(self) -> bool:
        """Whether the client commits the input audio itself (turn detection off)."""
        return self.turn_detection is None

    @property
    def config(self) -> SessionConfig:
        """The Parley session's options."""
        rate = self.output_sample_rate or format_rate(self.output_format)
        values = {**self.base.model_dump(), **self.chosen, **self.parley}
        return SessionConfig.model_validate({**values, "output_sample_rate": rate})

    def updated(self, body: SessionUpdateBody) -> RealtimeOptions:
        """These options with ``body`` applied (self is left as it was); a BadInputError
        for values Parley cannot take."""
        new = copy.deepcopy(self)
        new._apply(body)
        try:
            new.config  # noqa: B018  # validated now, not when the session starts
        except ValidationError as exc:
            raise BadInputError(f"session: {describe(exc)}", code="invalid_session") from exc
        return new

    def check_unchanged(self, started: RealtimeOptions) -> None:
        """A ConflictError if a pipeline option differs from those the session started with."""
        before, after = started.config.model_dump(), self.config.model_dump()
        changed = sorted(k for k, v in after.items() if before[k] != v)
        if changed:
            raise ConflictError(
                f"{', '.join(changed)} cannot change once the conversation has started",
                code="session_option_fixed",
            )

    def _apply(self, body: SessionUpdateBody) -> None:
        given = body.model_fields_set
        if body.model is not None and body.model != self.model:
            raise BadInputError("the model cannot change within a session", code="model_fixed")
        if "instructions" in given:
            self.chosen["system_prompt"] = body.instructions or None
        if body.output_modalities:
            self.modality = body.output_modalities[0]
        if "tools" in given:
            self.tools = body.tools or []
        if "tool_choice" in given:
            self.tool_choice = body.tool_choice or "auto"
        if body.max_output_tokens is not None:
            self.chosen["response_style"] = _response_style(body.max_output_tokens)
        if body.audio is not None:
            self._apply_input(body.audio.input)
            self._apply_output(body.audio.output)
        if body.parley is not None:
            owned = sorted(_GATEWAY_OWNED & body.parley.keys())
            if owned:
                raise BadInputError(
                    f"parley: {', '.join(owned)} follows the audio format", code="invalid_session"
                )
            self.parley = {**self.parley, **body.parley}

    def _apply_input(self, update: AudioInputUpdate | None) -> None:
        if update is None:
            return
        given = update.model_fields_set
        if update.format is not None:
            self.input_format = update.format.type
        if "noise_reduction" in given:
            self.noise_reduction = update.noise_reduction
        if "transcription" in given:
            self.transcription = update.transcription
            language = update.transcription.language if update.transcription else None
            if language:
                self.chosen["language"] = language
        if "turn_detection" in given:
            self.turn_detection = update.turn_detection
            if update.turn_detection is not None:
                self.chosen["interrupt_sensitivity"] = _sensitivity(update.turn_detection)
                # Semantic VAD is Parley's end-of-turn model; server VAD the silence alone.
                self.chosen["semantic_turn"] = isinstance(update.turn_detection, SemanticVad)

    def _apply_output(self, update: AudioOutputUpdate | None) -> None:
        if update is None:
            return
        if update.format is not None:
            self.output_format = update.format.type
        if update.speed is not None:
            self.chosen["speed"] = update.speed
        if update.voice is not None:
            voice = update.voice if isinstance(update.voice, str) else update.voice.id
            self.requested_voice = voice
            self.chosen["voice"] = voice

    def resolve_voice(self, offered: set[str]) -> None:
        """Settle the requested voice against those the session's TTS offers: an OpenAI
        voice it lacks gives way to the provider's default; any other is refused."""
        voice = self.requested_voice
        if voice is None or voice in offered:
            return
        if voice in OPENAI_VOICES:
            self.chosen.pop("voice", None)
            return
        provider = self.config.tts_provider.value
        raise BadInputError(
            f"voice '{voice}' is not offered by the {provider} TTS;"
            f" its voices: {', '.join(sorted(offered)) or 'none'}",
            code="unknown_voice",
        )

    def view(self, session_id: str | None = None) -> dict[str, Any]:
        """The ``session`` object of ``session.created`` / ``session.updated``."""
        config = self.config
        transcription = self.transcription.model_dump() if self.transcription else None
        return {
            "type": "realtime",
            "object": "realtime.session",
            "id": self.id,
            "model": self.model,
            "output_modalities": [self.modality],
            "instructions": config.system_prompt or "",
            "max_output_tokens": config.response_style.max_tokens,
            "audio": {
                "input": {
                    "format": _format_view(self.input_format),
                    "transcription": transcription,
                    "noise_reduction": self.noise_reduction,
                    "turn_detection": self._detection_view(config),
                },
                "output": {
                    "format": _format_view(self.output_format),
                    "voice": config.voice,
                    "speed": config.speed,
                },
            },
            "tools": self.tools,
            "tool_choice": self.tool_choice,
            "parley": {"session_id": session_id, **config.model_dump(mode="json")},
        }

    def _detection_view(self, config: SessionConfig) -> dict[str, Any] | None:
        detection = self.turn_detection
        if detection is None:
            return None
        sensitivity = config.interrupt_sensitivity
        barges_in = sensitivity.barge_in_ms is not None
        common = {"create_response": True, "interrupt_response": barges_in}
        if isinstance(detection, SemanticVad):
            return {"type": "semantic_vad", "eagerness": sensitivity.value, **common}
        return {
            "type": "server_vad",
            "threshold": _or(detection.threshold, _DEFAULT_THRESHOLD),
            "prefix_padding_ms": _or(detection.prefix_padding_ms, _DEFAULT_PREFIX_PADDING_MS),
            "silence_duration_ms": sensitivity.silence_ms,
            "idle_timeout_ms": None,
            **common,
        }


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


def _format_view(fmt: AudioFormatType) -> dict[str, Any]:
    return {"type": fmt, "rate": PCM_RATE} if fmt == "audio/pcm" else {"type": fmt}
