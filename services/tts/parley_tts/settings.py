"""Configuration of the tts service (environment variables prefixed ``TTS_``) and the
defaults of its cloud providers (each vendor's own prefix, e.g. ``OPENAI_TTS_MODEL``)."""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from parley_common.settings import ServiceSettings


class TtsSettings(ServiceSettings):
    """``TTS_HTTP_PORT`` and the service's own options."""

    model_config = SettingsConfigDict(env_prefix="TTS_", env_file=".env", extra="ignore")


def _env(name: str) -> AliasChoices:
    return AliasChoices(name)


class CloudTtsSettings(BaseSettings):
    """Defaults of the cloud TTS adapters; a session's ``tts_model`` and ``voice`` override
    the model and voice. Keys and endpoints are read by ``parley_common.providers``."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    openai_model: str = Field(default="tts-1", validation_alias=_env("OPENAI_TTS_MODEL"))
    openai_voice: str = Field(default="alloy", validation_alias=_env("OPENAI_TTS_VOICE"))
    elevenlabs_model: str = Field(
        default="eleven_flash_v2_5", validation_alias=_env("ELEVENLABS_TTS_MODEL")
    )
    # "George", one of ElevenLabs' default voices.
    elevenlabs_voice: str = Field(
        default="JBFqnCBsd6RMkjVDRZzb", validation_alias=_env("ELEVENLABS_TTS_VOICE")
    )
    elevenlabs_voices_ttl_s: float = Field(
        default=300.0, gt=0, validation_alias=_env("ELEVENLABS_VOICES_TTL_S")
    )
    # An Aura model names its voice too; a session's voice (an Aura model id) picks another.
    deepgram_model: str = Field(
        default="aura-asteria-en", validation_alias=_env("DEEPGRAM_TTS_MODEL")
    )
    playht_model: str = Field(default="PlayHT2.0-turbo", validation_alias=_env("PLAYHT_TTS_MODEL"))
    playht_voice: str = Field(
        default=(
            "s3://voice-cloning-zero-shot/d9ff78ba-d016-47f6-b0ef-dd630f59414e/female-cs/"
            "manifest.json"
        ),
        validation_alias=_env("PLAYHT_TTS_VOICE"),
    )
    playht_voices_ttl_s: float = Field(
        default=300.0, gt=0, validation_alias=_env("PLAYHT_VOICES_TTL_S")
    )
    # How long a provider may take to answer, connect, or send the next audio bytes.
    timeout_s: float = Field(default=10.0, gt=0, validation_alias=_env("TTS_PROVIDER_TIMEOUT_S"))
    # Retries of a failed synthesis before its first audio (429 within the wait bound, 5xx,
    # connection lost); later failures are the fallback chain's to handle.
    retries: int = Field(default=1, ge=0, le=5, validation_alias=_env("TTS_PROVIDER_RETRIES"))
    retry_max_wait_s: float = Field(
        default=2.0, ge=0, validation_alias=_env("TTS_PROVIDER_RETRY_MAX_WAIT_S")
    )
