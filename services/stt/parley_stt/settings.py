"""Configuration of the stt service (environment variables prefixed ``STT_``), and of its
cloud providers (each vendor's own prefix, e.g. ``OPENAI_STT_MODEL``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from parley_common.settings import ServiceSettings


class SttSettings(ServiceSettings):
    """``STT_HTTP_PORT`` and the service's own options."""

    model_config = SettingsConfigDict(env_prefix="STT_", env_file=".env", extra="ignore")


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
