"""Configuration of the stt service (environment variables prefixed ``STT_``), and of its
cloud providers (each vendor's own prefix, e.g. ``OPENAI_STT_MODEL``)."""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from parley_common.contracts.session import InterruptSensitivity
from parley_common.settings import ServiceSettings


class SttSettings(ServiceSettings):
    """``STT_HTTP_PORT`` and the service's own options."""

    model_config = SettingsConfigDict(env_prefix="STT_", env_file=".env", extra="ignore")


class TurnSettings(BaseSettings):
    """``STT_TURN_*``: how the end-of-turn model's answer sets the silence that ends a turn.

    When the user falls silent the model gives the probability that they have finished: at
    least ``complete_above`` ends the turn after ``complete_silence_ms``; below
    ``incomplete_below`` the turn waits up to the sensitivity's ``max_silence_*_ms``; in
    between (unsure), or without an answer within ``decision_timeout_ms``, the sensitivity's
    own silence applies (high 500 ms, medium 1 s, low 2 s), as it does after less than
    ``min_speech_ms`` of voice (a first word, which the model too readily calls finished).
    """

    model_config = SettingsConfigDict(env_prefix="STT_TURN_", env_file=".env", extra="ignore")

    complete_above: float = Field(default=0.7, gt=0.0, lt=1.0)
    incomplete_below: float = Field(default=0.3, gt=0.0, lt=1.0)
    complete_silence_ms: int = Field(default=200, ge=0, le=10_000)
    min_speech_ms: int = Field(default=160, ge=0, le=10_000)
    max_silence_high_ms: int = Field(default=1500, ge=0, le=30_000)
    max_silence_medium_ms: int = Field(default=2000, ge=0, le=30_000)
    max_silence_low_ms: int = Field(default=3000, ge=0, le=30_000)
    decision_timeout_ms: int = Field(default=500, ge=1, le=10_000)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.incomplete_below > self.complete_above:
            raise ValueError("STT_TURN_INCOMPLETE_BELOW must not exceed STT_TURN_COMPLETE_ABOVE")
        for sensitivity in InterruptSensitivity:
            if self.max_silence_ms(sensitivity) < sensitivity.silence_ms:
                name = f"STT_TURN_MAX_SILENCE_{sensitivity.name}_MS"
                raise ValueError(f"{name} must be at least {sensitivity.silence_ms}")
        return self

    def max_silence_ms(self, sensitivity: InterruptSensitivity) -> int:
        """The longest an incomplete utterance's pause may last at ``sensitivity``."""
        return {
            InterruptSensitivity.HIGH: self.max_silence_high_ms,
            InterruptSensitivity.MEDIUM: self.max_silence_medium_ms,
            InterruptSensitivity.LOW: self.max_silence_low_ms,
        }[sensitivity]


class CloudSttSettings(BaseSettings):
    """The cloud STT adapters' defaults. A session's ``stt_model`` overrides the model; keys
    and endpoints come from ``<VENDOR>_API_KEY`` / ``<VENDOR>_BASE_URL``."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    # OPENAI_STT_MODEL: whisper-1 gives word timings; gpt-4o-transcribe and
    # gpt-4o-mini-transcribe stream their text (pushed as partials) but have no timings.
    openai_stt_model: str = Field(default="whisper-1", min_length=1)
    # OPENAI_STT_STREAM: stream gpt-* transcriptions (text deltas become partials).
    openai_stt_stream: bool = True
    groq_stt_model: str = Field(default="whisper-large-v3", min_length=1)
    deepgram_stt_model: str = Field(default="nova-3", min_length=1)
    # DEEPGRAM_ENDPOINTING_MS: Deepgram's own pause detection, which finalises pieces of an
    # utterance early (Parley still ends the turn and sends Finalize itself).
    deepgram_endpointing_ms: int = Field(default=300, ge=10)
    # ASSEMBLYAI_STT_MODEL: empty = universal-streaming-english for English sessions,
    # universal-streaming-multilingual (with language detection) for any other.
    assemblyai_stt_model: str = ""
    assemblyai_format_turns: bool = True
    # STT_CLOUD_TIMEOUT_S: an HTTP transcription request, or a WebSocket handshake.
    stt_cloud_timeout_s: float = Field(default=15.0, gt=0)
    # STT_CLOUD_RETRIES: the OpenAI/Groq SDKs' retries of 408/409/429/5xx (retry-after obeyed).
    stt_cloud_retries: int = Field(default=2, ge=0, le=5)
    # STT_FINALIZE_TIMEOUT_S: a live stream's final transcript after Finalize/ForceEndpoint.
    stt_finalize_timeout_s: float = Field(default=3.0, gt=0)
    # STT_KEEPALIVE_S: a live stream with no audio for this long sends KeepAlive.
    stt_keepalive_s: float = Field(default=3.0, gt=0)
    # STT_SETTLE_MS: after ForceEndpoint with no turn in progress, how long AssemblyAI may
    # still take to report a turn before the transcript counts as complete.
    stt_settle_ms: int = Field(default=300, ge=0)
