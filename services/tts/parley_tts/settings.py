"""Configuration of the tts service (environment variables prefixed ``TTS_``)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from parley_common.settings import ServiceSettings


class TtsSettings(ServiceSettings):
    """``TTS_HTTP_PORT`` and the service's own options."""

    model_config = SettingsConfigDict(env_prefix="TTS_", env_file=".env", extra="ignore")
